"""The fast LSI search: the evaluator, the lean CMA-ES and the overlapped scheduler give the reference's results."""

import copy
import pickle

import numpy as np
import pytest
import torch
from ribs.emitters.opt import CMAEvolutionStrategy

from coursepkg.lsi import evaluator as evaluator_module
from coursepkg.lsi import measures as lsi_measures
from coursepkg.lsi import search as lsi_search
from coursepkg.lsi.cma_es import LeanCMAEvolutionStrategy
from coursepkg.lsi.evaluator import Evaluator
from coursepkg.lsi.pipeline import EvaluationWorker, InlineWorker, illuminate_overlapped
from coursepkg.mnist import pretrained

pytestmark = pytest.mark.usefixtures("one_thread")

#: OURS at a test's scale: the same emitters, groups, evolution strategy and precision, a smaller grid and batches.
SMALL = lsi_search.replace(lsi_search.OURS, name="small", cells=(40, 20), batch_size=12)


@pytest.fixture(scope="module")
def models():
    return {name: pretrained.load(name) for name in ("generator", "discriminator", "lenet5")}


@pytest.fixture(scope="module")
def latents():
    return np.random.default_rng(0).normal(size=(300, 128)).astype(np.float32)


def test_float32_evaluator_gives_the_answer_keys_numbers(models, latents):
    generator, lenet, discriminator = models["generator"], models["lenet5"], models["discriminator"]
    cases = [
        (Evaluator(generator, lenet, digit=3), lsi_measures.evaluate(latents, generator, lenet, digit=3)),
        (
            Evaluator(generator, lenet, digit=8, discriminator=discriminator),
            lsi_measures.evaluate(latents, generator, lenet, digit=8, discriminator=discriminator),
        ),
        (Evaluator(generator, lenet, digit=None), lsi_measures.evaluate_digits(latents, generator, lenet)),
    ]
    for evaluator, (objectives, found) in cases:
        fast_objectives, fast_found = evaluator(latents)
        assert fast_objectives.dtype == fast_found.dtype == np.float64
        assert fast_found.shape == found.shape and fast_objectives.shape == objectives.shape
        np.testing.assert_allclose(fast_objectives, objectives, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(fast_found, found)  # same images, same pixels over 0.5
    # The models given are copied, not changed.
    for name, model in models.items():
        for key, value in pretrained.load(name).state_dict().items():
            assert torch.equal(model.state_dict()[key], value), (name, key)


def test_bfloat16_evaluator_is_close_to_float32(models, latents):
    generator, lenet = models["generator"], models["lenet5"]
    objectives, found = Evaluator(generator, lenet)(latents)
    low_objectives, low_found = Evaluator(generator, lenet, precision="bfloat16")(latents)
    assert np.abs(low_found[:, 0] - found[:, 0]).max() <= 8  # boldness: a few pixels cross 0.5
    assert np.abs(low_found[:, 1] - found[:, 1]).max() < 0.02  # lightness
    assert np.abs(low_objectives - objectives).mean() < 0.01
    assert np.corrcoef(low_objectives, objectives)[0, 1] > 0.99


def test_packed_bfloat16_layers_draw_what_plain_bfloat16_layers_draw(models, latents):
    # Packing changes where the weights lie in memory, not the products: the same images, bit for bit,
    # in this process and in a worker that received the evaluator pickled. Without oneDNN's bfloat16
    # kernels the layers stay plain.
    evaluator = Evaluator(models["generator"], models["lenet5"], precision="bfloat16")
    packed = [m for m in evaluator.generator.modules() if isinstance(m, evaluator_module._PackedLinear)]
    assert len(packed) == (4 if evaluator_module._can_pack() else 0)
    plain = copy.deepcopy(models["generator"]).eval().bfloat16()
    z = torch.from_numpy(latents).bfloat16()
    with torch.inference_mode():
        expected = torch.tanh(plain.net[:-1](z).float())
        assert torch.equal(evaluator.generator(z), expected)
        assert torch.equal(pickle.loads(pickle.dumps(evaluator)).generator(z[:7]), expected[:7])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digit": 10}, "0 to 9"),
        ({"digit": None, "discriminator": "D"}, "single digit"),
        ({"precision": "float16"}, r"precision must be one of \['auto', 'float32', 'bfloat16'\]"),
    ],
)
def test_evaluator_rejects_bad_settings(models, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Evaluator(models["generator"], models["lenet5"], **kwargs)


@pytest.mark.parametrize(
    ("features", "packs", "expected"),
    [
        (["avx2", "fma"], True, "float32"),  # AVX2 only (e.g. AMD Zen 3): bfloat16 is emulated, 1 GFLOP/s
        (["avx2", "fma", "avx512f"], True, "float32"),  # AVX-512 without its bfloat16 instructions
        (["avx2", "fma", "avx512f", "avx512_bf16"], True, "bfloat16"),  # AMD Zen 4
        (["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"], True, "bfloat16"),  # Xeon with AMX
        (["avx2", "fma", "avx512f", "avx512_bf16"], False, "float32"),  # a PyTorch without oneDNN's kernels
        (None, True, "float32"),  # no /proc/cpuinfo to read
    ],
)
def test_auto_precision_is_bfloat16_only_where_the_cpu_multiplies_it(monkeypatch, features, packs, expected):
    monkeypatch.setattr(evaluator_module, "cpu", lambda: ("a CPU", features))
    monkeypatch.setattr(evaluator_module, "_can_pack", lambda: packs)
    assert evaluator_module.resolve_precision("auto") == expected
    assert [evaluator_module.resolve_precision(fixed) for fixed in ("float32", "bfloat16")] == ["float32", "bfloat16"]


def test_the_search_runs_and_records_the_precision_auto_chose_on_this_cpu(models):
    expected = evaluator_module.resolve_precision("auto")
    evaluator = Evaluator(models["generator"], models["lenet5"], precision="auto")
    assert evaluator.precision == expected
    assert {p.dtype for p in evaluator.generator.parameters()} == {evaluator_module.PRECISIONS[expected]}
    # OURS asks for "auto"; the search's result says which precision ran.
    assert lsi_search.OURS.precision == "auto" and lsi_search.OURS_FLOAT32.precision == "float32"
    result = lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=1, config=SMALL, overlap=False)
    assert result.config.precision == expected and result.summary()["config"]["precision"] == expected


@pytest.mark.skipif(not evaluator_module._can_pack(), reason="this CPU's PyTorch has no oneDNN bfloat16 kernels")
def test_row_convolution_is_the_convolution_and_pooling_in_bfloat16(models):
    # Against the float32 convolution of the same numbers rounded to bfloat16: only the sums' rounding differs.
    evaluator = Evaluator(models["generator"], models["lenet5"], precision="bfloat16")
    rows = [m for m in evaluator.classifier.modules() if isinstance(m, evaluator_module._RowConvolution)]
    assert len(rows) == 2  # both of LeNet-5's convolutions, each with the pooling after it
    reference = evaluator_module._fold_normalisation(copy.deepcopy(models["lenet5"]).eval())
    with torch.inference_mode():
        images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # in [0, 1], as drawn
        for row, (conv, pool) in zip(rows, [reference.convolutions[0:2], reference.convolutions[3:5]]):
            rounded = copy.deepcopy(conv)
            rounded.weight.copy_(conv.weight.bfloat16().float())
            expected = pool(rounded(images.bfloat16().float()))
            got = row(images)
            assert got.shape == expected.shape and got.dtype == torch.float32 and got.is_contiguous()
            assert (got - expected).abs().max() < 0.02 * expected.abs().max()
            images = torch.relu(expected)  # the next convolution's input


def _strategy(kind: type, seed: int = 5) -> CMAEvolutionStrategy:
    strategy = kind(sigma0=0.3, solution_dim=16, batch_size=12, seed=seed, dtype=np.float32)
    strategy.reset(np.zeros(16))
    return strategy


def test_lean_cma_es_follows_pyribs_cma_es():
    """Told the same solutions in the same order, both strategies keep the same distribution."""
    reference, lean = _strategy(CMAEvolutionStrategy), _strategy(LeanCMAEvolutionStrategy)
    rng = np.random.default_rng(1)
    for _ in range(60):
        solutions = reference.ask()
        lean.ask()
        lean._solutions = solutions  # the same population, so that only the updates are compared
        order = np.argsort(np.sum((solutions - 1.0) ** 2, axis=1))  # minimise the distance to (1, ..., 1)
        parents = int(rng.integers(0, 7))  # "filter" selection: 0 to 6 parents
        reference.tell(order, -np.arange(12.0), parents)
        lean.tell(order, -np.arange(12.0), parents)
    for name in ("mean", "ps", "pc"):
        np.testing.assert_allclose(getattr(lean, name), getattr(reference, name), rtol=1e-3, atol=1e-5)
    assert lean.sigma == pytest.approx(reference.sigma, rel=1e-4)
    np.testing.assert_allclose(lean.cov.cov, reference.cov.cov, rtol=1e-3, atol=1e-6)
    assert lean.cov.cov.dtype == np.float64  # as pyribs keeps it, whatever the solutions' dtype
    assert reference.mean.mean() > 0.5  # it did move towards (1, ..., 1)


def test_lean_cma_es_draws_are_seeded_and_its_eigen_gap_stretches():
    first, second = _strategy(LeanCMAEvolutionStrategy), _strategy(LeanCMAEvolutionStrategy)
    np.testing.assert_array_equal(first.ask(), second.ask())  # the same seed, the same draws
    assert not np.array_equal(first.ask(), _strategy(LeanCMAEvolutionStrategy, seed=6).ask())
    lazy = LeanCMAEvolutionStrategy(sigma0=0.3, solution_dim=16, batch_size=12, seed=5, eigen_gap=4)
    assert lazy.lazy_gap_evals == pytest.approx(4 * first.lazy_gap_evals)
    with pytest.raises(ValueError, match="eigen_gap must be at least 1"):
        LeanCMAEvolutionStrategy(sigma0=0.3, solution_dim=16, eigen_gap=0.5)


def test_lean_cma_es_samples_its_distribution():
    lean = _strategy(LeanCMAEvolutionStrategy)
    a = np.random.default_rng(2).normal(size=(16, 16)) / 4
    lean.cov.cov = (a @ a.T + np.eye(16) * 0.1).astype(np.float32)
    lean.current_eval = int(lean.lazy_gap_evals) + 1  # the eigensystem is due
    samples = np.concatenate([lean.ask(2000) for _ in range(10)])
    expected = lean.sigma**2 * lean.cov.cov
    error = np.linalg.norm(np.cov(samples.T) - expected) / np.linalg.norm(expected)
    assert error < 0.05
    assert not lean.ask().flags.writeable  # as pyribs' solutions: the emitter keeps them


def test_lean_cma_es_redraws_samples_outside_its_bounds_and_clips_only_hopeless_ones():
    def bounded(sigma0: float) -> LeanCMAEvolutionStrategy:
        strategy = LeanCMAEvolutionStrategy(
            sigma0=sigma0, solution_dim=16, batch_size=200, seed=5, lower_bounds=-1.0, upper_bounds=1.0
        )
        strategy.reset(np.zeros(16))
        return strategy

    redrawn = bounded(0.5).ask()  # 2 sigma wide: about half the 16-d samples fall outside at first
    assert np.abs(redrawn).max() <= 1 and np.abs(redrawn).max() > 0.9
    assert not np.isin(np.abs(redrawn), 1.0).any()  # redrawn, not clipped
    assert np.std(redrawn) == pytest.approx(0.44, abs=0.02)  # a normal truncated at 2 sigma (0.5 untruncated)
    clipped = bounded(100.0).ask()  # 1 % of a coordinate's draws fall inside: clipped after MAX_REDRAWS
    assert np.abs(clipped).max() == 1 and np.isin(np.abs(clipped), 1.0).mean() > 0.9


def test_latent_bound_reaches_every_emitter_and_is_checked():
    bounded = lsi_search.make_scheduler(lsi_search.replace(SMALL, latent_bound=2.5), seed=0)
    for emitter in bounded.emitters:
        np.testing.assert_array_equal(emitter.lower_bounds, np.full(128, -2.5))
        np.testing.assert_array_equal(emitter.upper_bounds, np.full(128, 2.5))
        assert np.abs(emitter.ask()).max() <= 2.5
    free = lsi_search.make_scheduler(lsi_search.replace(SMALL, latent_bound=None), seed=0)
    assert np.isinf(free.emitters[0].upper_bounds).all()
    with pytest.raises(ValueError, match="latent_bound must be None or above 0"):
        lsi_search.make_scheduler(lsi_search.replace(SMALL, latent_bound=0.0), seed=0)


def _archive(archive) -> dict[str, np.ndarray]:
    data = archive.data()
    order = np.argsort(data["index"])
    return {name: values[order] for name, values in data.items()}


def _same_archive(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(np.array_equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize("rows_here", [0, 17])  # 17 of the first group's 3 x 12 solutions: a cut inside a batch
def test_same_seed_same_archive_with_or_without_the_worker_process(models, rows_here):
    evaluator = Evaluator(models["generator"], models["lenet5"], precision="bfloat16")
    archives = []
    for worker in (EvaluationWorker(evaluator), InlineWorker(evaluator), EvaluationWorker(evaluator)):
        scheduler = lsi_search.make_scheduler(SMALL, seed=7)
        with worker:
            history, timings = illuminate_overlapped(
                scheduler,
                worker,
                iterations=25,
                groups=2,
                rows_here=rows_here,
                evaluate_here=evaluator,
                log_every=5,
            )
        archives.append(_archive(scheduler.result_archive))
        assert [c.iterations for c in history] == [5, 10, 15, 20, 25]
        assert (timings.asked, timings.told) == (25 * 60, 25 * 60)
        assert history[-1].evaluations == 25 * 60
        assert timings.evaluate > 0 and timings.search > 0
        assert (timings.here > 0) == (rows_here > 0)
    assert len(archives[0]["index"]) > 50
    assert _same_archive(archives[0], archives[1]) and _same_archive(archives[0], archives[2])
    other = lsi_search.make_scheduler(SMALL, seed=8)
    illuminate_overlapped(other, InlineWorker(evaluator), iterations=25, groups=2)
    assert not _same_archive(archives[0], _archive(other.result_archive))


def test_one_group_inline_is_the_tutorials_loop(models):
    """groups=1 asks, evaluates, adds and tells in pyribs' Scheduler's order: the same archive."""
    evaluator = Evaluator(models["generator"], models["lenet5"])
    config = lsi_search.replace(SMALL, groups=1, es="cma_es", eigen_gap=1.0, share_here=0.0)
    tutorial = lsi_search.make_scheduler(config, seed=3)
    lsi_search.illuminate(tutorial, evaluator, iterations=12)
    ours = lsi_search.make_scheduler(config, seed=3)
    illuminate_overlapped(ours, InlineWorker(evaluator), iterations=12, groups=1)
    assert _same_archive(_archive(tutorial.result_archive), _archive(ours.result_archive))


class _Recorder:
    """Records what each emitter asked for and what it was told, and every batch sent to the worker."""

    def __init__(self, scheduler, worker):
        self.asked = {id(e): [] for e in scheduler.emitters}
        self.told = {id(e): [] for e in scheduler.emitters}
        self.submitted: list[np.ndarray] = []
        for emitter in scheduler.emitters:
            emitter.ask = self._ask(emitter, emitter.ask)
            emitter.tell = self._tell(emitter, emitter.tell)
        submit = worker.submit
        worker.submit = lambda latents: (self.submitted.append(np.array(latents)), submit(latents))[1]

    def _ask(self, emitter, ask):
        def recorded():
            solutions = ask()
            self.asked[id(emitter)].append(np.array(solutions))
            return solutions

        return recorded

    def _tell(self, emitter, tell):
        def recorded(solution, objective, measures, add_info):
            self.told[id(emitter)].append((np.array(solution), np.array(objective), np.array(measures)))
            return tell(solution, objective, measures, add_info=add_info)

        return recorded


@pytest.mark.parametrize(("groups", "rows_here"), [(1, 0), (2, 0), (3, 0), (5, 0), (1, 30), (2, 12), (2, 20), (3, 5)])
def test_every_solution_is_evaluated_once_and_told_to_the_emitter_that_asked(models, groups, rows_here):
    evaluator = Evaluator(models["generator"], models["lenet5"])
    scheduler = lsi_search.make_scheduler(SMALL, seed=11)
    worker = InlineWorker(evaluator)
    recorder = _Recorder(scheduler, worker)
    here: list[np.ndarray] = []  # what this process evaluated itself

    def evaluate_here(latents):
        here.append(np.array(latents))
        return evaluator(latents)

    iterations = 6
    illuminate_overlapped(
        scheduler,
        worker,
        iterations=iterations,
        groups=groups,
        rows_here=rows_here,
        evaluate_here=evaluate_here,
    )
    assert [len(latents) for latents in here] == [rows_here] * (iterations if rows_here else 0)
    submitted = np.concatenate(recorder.submitted + here)
    assert len(submitted) == iterations * 60 == len(np.unique(submitted, axis=0))  # none lost, none twice
    for emitter in scheduler.emitters:
        asked, told = recorder.asked[id(emitter)], recorder.told[id(emitter)]
        assert len(asked) == len(told) == iterations
        for solutions, (told_solutions, objectives, found) in zip(asked, told):
            np.testing.assert_array_equal(told_solutions, solutions)
            # Evaluated here alone rather than in its group's batch: float32 sums may round differently.
            expected_objectives, expected_found = evaluator(solutions)
            np.testing.assert_allclose(objectives, expected_objectives, atol=1e-4)
            np.testing.assert_allclose(found, expected_found, rtol=1e-4)
    asked_rows = np.concatenate([batch for batches in recorder.asked.values() for batch in batches])
    assert {row.tobytes() for row in asked_rows} == {row.tobytes() for row in submitted}


def test_where_the_cut_falls_does_not_change_the_archive(models):
    # The share this process evaluates (share_here) sets how long a search takes, not what it finds.
    evaluator = Evaluator(models["generator"], models["lenet5"])
    archives = []
    for rows_here in (8, 20, 28):  # of the first group's 3 x 12 solutions
        scheduler = lsi_search.make_scheduler(SMALL, seed=7)
        worker = InlineWorker(evaluator)
        illuminate_overlapped(scheduler, worker, iterations=12, groups=2, rows_here=rows_here, evaluate_here=evaluator)
        archives.append(_archive(scheduler.result_archive))
    assert len(archives[0]["index"]) > 30 and _same_archive(archives[0], archives[1])
    assert _same_archive(archives[0], archives[2])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_solution_is_evaluated_alike_in_any_batch_of_eight_or_more(models, precision):
    # What lets the cut fall anywhere without changing the archive, on this CPU's kernels. (Batches of one
    # to three rows go through other kernels, whose sums round differently.)
    evaluator = Evaluator(models["generator"], models["lenet5"], precision=precision)
    latents = np.random.default_rng(3).normal(size=(180, 128)).astype(np.float32)
    whole = evaluator(latents)
    for cut in (8, 13, 60, 75, 91, 172):
        parts = evaluator(latents[:cut]), evaluator(latents[cut:])
        for got, expected in zip(map(np.concatenate, zip(*parts)), whole):
            np.testing.assert_array_equal(got, expected)


def test_run_lsi_evaluates_its_share_here_in_whole_solutions(models, monkeypatch):
    cuts = []
    overlapped = lsi_search.illuminate_overlapped
    monkeypatch.setattr(
        lsi_search,
        "illuminate_overlapped",
        lambda *args, **kwargs: (cuts.append(kwargs["rows_here"]), overlapped(*args, **kwargs))[1],
    )
    generator, lenet = models["generator"], models["lenet5"]
    result = lsi_search.run_lsi(generator, lenet, iterations=2, config=SMALL, overlap=False)
    assert cuts == [15] and result.timings.here > 0  # a quarter of 5 x 12
    for share in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"share_here must be in \[0, 1\)"):
            lsi_search.run_lsi(generator, lenet, iterations=1, config=lsi_search.replace(SMALL, share_here=share))


def test_overlapped_search_rejects_bad_arguments(models):
    scheduler = lsi_search.make_scheduler(SMALL, seed=0)
    worker = InlineWorker(Evaluator(models["generator"], models["lenet5"]))
    for kwargs, message in (
        ({"iterations": 0}, "at least 1"),
        ({"iterations": 1, "groups": 0}, "groups must be from 1 to the 5 emitters"),
        ({"iterations": 1, "groups": 6}, "groups must be from 1 to the 5 emitters"),
        ({"iterations": 1, "groups": 2, "rows_here": 36, "evaluate_here": worker.evaluate}, "from 0 to 35"),
        ({"iterations": 1, "groups": 2, "rows_here": 1}, "come with evaluate_here"),
    ):
        with pytest.raises(ValueError, match=message):
            illuminate_overlapped(scheduler, worker, **kwargs)


def test_a_failing_evaluation_is_reported_with_its_traceback(models):
    evaluator = Evaluator(models["generator"], models["lenet5"])
    with EvaluationWorker(evaluator) as worker:
        worker.submit(np.zeros((4, 7)))  # the generator wants 128 numbers per latent vector
        with pytest.raises(RuntimeError, match=r"(?s)failed in the worker process.*ValueError: latents must"):
            worker.result()
        worker.submit(np.zeros((4, 128)))  # the worker goes on after a failure
        objectives, found = worker.result()
        assert objectives.shape == (4,) and found.shape == (4, 2)
    assert not worker._process.is_alive()


def test_run_lsi_gives_the_same_archive_with_and_without_overlap(models):
    runs = [
        lsi_search.run_lsi(models["generator"], models["lenet5"], iterations=10, config=SMALL, seed=2, overlap=overlap)
        for overlap in (True, False)
    ]
    assert _same_archive(_archive(runs[0].archive), _archive(runs[1].archive))
    assert runs[0].history[-1].evaluations == runs[0].timings.told == 10 * 60
