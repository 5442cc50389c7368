"""pyribs' CMA-ES with its per-call overheads removed: the same algorithm, for the LSI pipeline.

An LSI search of 4.5 M evaluations asks and tells each of its five CMA-ES
150,000 times. pyribs' :class:`~ribs.emitters.opt.CMAEvolutionStrategy`
(Hansen's ``purecma``) spends most of that time around the mathematics rather
than in it: every ``ask`` and ``tell`` enters and leaves a
:func:`threadpoolctl.threadpool_limits` context, the rank-mu update is an
``einsum`` that does not use BLAS, and the eigendecomposition of the covariance
is LAPACK's ``syevd`` reached through :func:`numpy.linalg.eigh`.

:class:`LeanCMAEvolutionStrategy` keeps pyribs' algorithm, parameters, lazy
eigendecomposition and random draws and changes only that: the caller limits
BLAS to one thread once for the whole search (:mod:`coursepkg.lsi.pipeline`
does), the rank-mu update is a matrix product, and the eigendecomposition is
SciPy's ``syevd`` without its input checks. Its distribution after the same
tells matches pyribs' to rounding (``tests/test_lsi_pipeline.py``).

Used by the LSI chapter's search and its benchmark, as ``es=LeanCMAEvolutionStrategy``
(:data:`coursepkg.lsi.search.OURS`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from ribs.emitters.opt import CMAEvolutionStrategy
from ribs.emitters.opt._cma_es import DecompMatrix

__all__ = ["LeanCMAEvolutionStrategy"]


class _LeanDecompMatrix(DecompMatrix):
    """pyribs' covariance matrix with its lazily updated eigensystem, decomposed by SciPy's ``syevd``."""

    def update_eigensystem(self, current_eval: int, lazy_gap_evals: float) -> None:
        if current_eval <= self.updated_eval + lazy_gap_evals:
            return
        self.cov = np.maximum(self.cov, self.cov.T)  # symmetric, as pyribs makes it
        eigenvalues, eigenbasis = scipy.linalg.eigh(self.cov, driver="evd", check_finite=False)
        self.eigenvalues = np.abs(eigenvalues).astype(self.dtype)
        self.eigenbasis = eigenbasis.astype(self.dtype)
        self.condition_number = self.eigenvalues.max() / self.eigenvalues.min()
        invsqrt = (self.eigenbasis / np.sqrt(self.eigenvalues)) @ self.eigenbasis.T
        self.invsqrt = np.maximum(invsqrt, invsqrt.T)
        self.updated_eval = current_eval


class LeanCMAEvolutionStrategy(CMAEvolutionStrategy):
    """pyribs' CMA-ES (``es="cma_es"``), minus the overheads that dominate at 128 dimensions.

    Takes the arguments of :class:`~ribs.emitters.opt.CMAEvolutionStrategy`, which
    :class:`~ribs.emitters.EvolutionStrategyEmitter` passes when given
    ``es=LeanCMAEvolutionStrategy``. Call it inside
    ``threadpoolctl.threadpool_limits(1, "blas")``: its matrices are too small to
    share between threads, and pyribs' version sets that limit on every call.
    """

    def reset(self, x0: np.ndarray) -> None:
        super().reset(x0)
        self.cov = _LeanDecompMatrix(self.solution_dim, self.dtype)

    def ask(self, batch_size: int | None = None) -> np.ndarray:
        """``(batch_size, solution_dim)`` samples of ``N(mean, sigma^2 C)``, redrawn until inside the bounds."""
        batch_size = self.batch_size if batch_size is None else batch_size
        self.cov.update_eigensystem(self.current_eval, self.lazy_gap_evals)
        transform = self.cov.eigenbasis * np.sqrt(self.cov.eigenvalues)
        solutions = np.empty((batch_size, self.solution_dim), dtype=self.dtype)
        remaining = np.arange(batch_size)
        while len(remaining):
            steps = self._rng.normal(0.0, self.sigma, (len(remaining), self.solution_dim)).astype(self.dtype)
            solutions[remaining] = steps @ transform.T + self.mean
            outside = (solutions[remaining] < self.lower_bounds) | (solutions[remaining] > self.upper_bounds)
            remaining = remaining[outside.any(axis=1)]
        solutions.flags.writeable = False
        self._solutions = solutions
        return solutions

    def tell(self, ranking_indices: np.ndarray, ranking_values: np.ndarray, num_parents: int) -> None:
        """Move the mean, evolution paths, covariance and step size towards the best ``num_parents``."""
        self.current_eval += len(ranking_indices)
        if num_parents == 0:
            return
        parents = self._solutions[ranking_indices[:num_parents]]
        weights, mueff, cc, cs, c1, cmu = self._calc_strat_params(num_parents)
        n = self.solution_dim
        damps = 1 + 2 * max(0, np.sqrt((mueff - 1) / (n + 1)) - 1) + cs

        old_mean = self.mean
        self.mean = weights @ parents
        step = self.mean - old_mean
        self.ps = (1 - cs) * self.ps + (np.sqrt(cs * (2 - cs) * mueff) / self.sigma) * (self.cov.invsqrt @ step)
        generations = self.current_eval / self.batch_size
        hsig = float(np.sum(self.ps**2) / n / (1 - (1 - cs) ** (2 * generations)) < 2 + 4.0 / (n + 1))
        self.pc = (1 - cc) * self.pc + hsig * np.sqrt(cc * (2 - cc) * mueff) * step

        deviations = parents - old_mean
        rank_mu = (deviations * weights[:, None]).T @ deviations  # sum_i w_i y_i y_i^T
        c1a = c1 * (1 - (1 - hsig**2) * cc * (2 - cc))
        # As in pyribs: the rank-one term is c1 * (c1 * pc pc^T), and the covariance is float64 from
        # here on whatever the solutions' dtype (a float32 covariance loses its small eigenvalues).
        self.cov.cov = (
            self.cov.cov * (1 - c1a - cmu * np.sum(weights))
            + c1 * c1 * np.outer(self.pc, self.pc)
            + rank_mu * (cmu / self.sigma**2)
        )
        self.sigma *= np.exp(min(1, cs / damps * (np.sum(self.ps**2) / n - 1) / 2))
