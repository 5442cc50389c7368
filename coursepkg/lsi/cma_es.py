"""pyribs' CMA-ES with its per-call overheads removed: the same updates, for the LSI pipeline.

An LSI search of 4.5 M evaluations asks and tells each of its five CMA-ES
150,000 times. pyribs' :class:`~ribs.emitters.opt.CMAEvolutionStrategy`
(Hansen's ``purecma``) spends most of that time around the mathematics rather
than in it: every ``ask`` and ``tell`` enters and leaves a
:func:`threadpoolctl.threadpool_limits` context, the rank-mu update is an
``einsum`` that does not use BLAS, and the eigendecomposition of the covariance
is LAPACK's ``syevd`` reached through :func:`numpy.linalg.eigh`.

:class:`LeanCMAEvolutionStrategy` keeps pyribs' updates and parameters and
changes how they are computed: the caller limits BLAS to one thread once for
the whole search (:mod:`coursepkg.lsi.pipeline` does), the covariance update is
done in place by BLAS (``dger`` for the rank-one term, ``dgemm`` for rank-mu),
and the eigendecomposition is SciPy's ``syevd`` without its input checks. Its
distribution after the same tells matches pyribs' to rounding
(``tests/test_lsi_pipeline.py``). Two choices make it cheaper still and change
its draws (not their distribution): the normal steps come from PyTorch's
generator (vectorised, a third of NumPy's time for 60 x 128 draws), seeded from
pyribs' generator, and ``eigen_gap`` stretches the gap between
eigendecompositions, which at 128 dimensions are most of an ask (the samples
between two decompositions come from the older one; pyribs already waits a few
generations).

Used by the LSI chapter's search and its benchmark, as ``es=LeanCMAEvolutionStrategy``
(:data:`coursepkg.lsi.search.OURS`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from ribs.emitters.opt import CMAEvolutionStrategy
from ribs.emitters.opt._cma_es import DecompMatrix
from scipy.linalg import blas as _blas

__all__ = ["MAX_REDRAWS", "LeanCMAEvolutionStrategy"]

#: Times :meth:`LeanCMAEvolutionStrategy.ask` redraws a sample outside the bounds before clipping it into them.
MAX_REDRAWS = 100


class _LeanDecompMatrix(DecompMatrix):
    """pyribs' covariance matrix with its lazily updated eigensystem, decomposed by SciPy's ``syevd``.

    ``transform`` is ``B diag(sqrt(eigenvalues))``, which maps standard normal steps to ``N(0, C)``.
    """

    def __init__(self, dimension: int, dtype: np.dtype) -> None:
        super().__init__(dimension, dtype)
        self.cov = self.cov.astype(np.float64)  # pyribs' first update makes it float64; here it starts so
        self.transform = self.eigenbasis * np.sqrt(self.eigenvalues)

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
        self.transform = self.eigenbasis * np.sqrt(self.eigenvalues)
        self.updated_eval = current_eval


class LeanCMAEvolutionStrategy(CMAEvolutionStrategy):
    """pyribs' CMA-ES (``es="cma_es"``), minus the overheads that dominate at 128 dimensions.

    Takes the arguments of :class:`~ribs.emitters.opt.CMAEvolutionStrategy`, which
    :class:`~ribs.emitters.EvolutionStrategyEmitter` passes when given
    ``es=LeanCMAEvolutionStrategy``, and one of its own. Call it inside
    ``threadpoolctl.threadpool_limits(1, "blas")``: its matrices are too small to
    share between threads, and pyribs' version sets that limit on every call.

    Args:
        *args, **kwargs: those of :class:`~ribs.emitters.opt.CMAEvolutionStrategy`.
        eigen_gap: evaluations between eigendecompositions of the covariance, as a
            multiple of pyribs' gap (Hansen's ``purecma``: at 128 dimensions and 60
            solutions, one decomposition every third generation; with 4, every
            ninth). 1 decomposes as pyribs does; the
            samples between decompositions come from the last one, so a larger
            gap adapts the sampling distribution later (the LSI chapter measures
            the cells it costs).

    Raises:
        ValueError: for ``eigen_gap`` below 1.
    """

    def __init__(self, *args: object, eigen_gap: float = 1.0, **kwargs: object) -> None:
        if not eigen_gap >= 1:
            raise ValueError(f"eigen_gap must be at least 1 (pyribs' gap), got {eigen_gap}.")
        super().__init__(*args, **kwargs)
        self.lazy_gap_evals *= eigen_gap
        self._steps = torch.Generator().manual_seed(int(self._rng.integers(2**63)))
        self._torch_dtype = torch.float64 if np.dtype(self.dtype) == np.float64 else torch.float32
        self._bounded = bool(np.isfinite(self.lower_bounds).any() or np.isfinite(self.upper_bounds).any())

    def reset(self, x0: np.ndarray) -> None:
        super().reset(x0)
        self.cov = _LeanDecompMatrix(self.solution_dim, self.dtype)

    def ask(self, batch_size: int | None = None) -> np.ndarray:
        """``(batch_size, solution_dim)`` samples of ``N(mean, sigma^2 C)``, redrawn until inside the bounds.

        A sample still outside after :data:`MAX_REDRAWS` redraws is clipped into them (pyribs redraws
        forever, which never ends once ``sigma`` is much wider than the bounds).
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        self.cov.update_eigensystem(self.current_eval, self.lazy_gap_evals)
        solutions = np.empty((batch_size, self.solution_dim), dtype=self.dtype)
        remaining = np.arange(batch_size)
        for _ in range(MAX_REDRAWS + 1):
            shape = (len(remaining), self.solution_dim)
            steps = torch.randn(shape, generator=self._steps, dtype=self._torch_dtype).mul_(float(self.sigma))
            solutions[remaining] = steps.numpy() @ self.cov.transform.T + self.mean
            if not self._bounded:
                break
            outside = (solutions[remaining] < self.lower_bounds) | (solutions[remaining] > self.upper_bounds)
            remaining = remaining[outside.any(axis=1)]
            if not len(remaining):
                break
        else:
            solutions[remaining] = np.clip(solutions[remaining], self.lower_bounds, self.upper_bounds)
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

        deviations = np.asarray(parents - old_mean, dtype=np.float64)
        c1a = c1 * (1 - (1 - hsig**2) * cc * (2 - cc))
        # As in pyribs: the rank-one term is c1 * (c1 * pc pc^T), and the covariance is float64 from
        # here on whatever the solutions' dtype (a float32 covariance loses its small eigenvalues).
        # Updated in place by BLAS: C *= decay; C += c1^2 pc pc^T; C += cmu / sigma^2 sum_i w_i y_i y_i^T.
        cov = self.cov.cov.T  # column-major for BLAS; the same matrix, as it is symmetric
        cov *= 1 - c1a - cmu * np.sum(weights)
        cov = _blas.dger(c1 * c1, self.pc, self.pc, a=cov, overwrite_a=True)
        weighted = deviations * weights[:, None]
        cov = _blas.dgemm(cmu / self.sigma**2, weighted, deviations, trans_a=True, beta=1.0, c=cov, overwrite_c=True)
        self.cov.cov = cov.T
        self.sigma *= np.exp(min(1, cs / damps * (np.sum(self.ps**2) / n - 1) / 2))
