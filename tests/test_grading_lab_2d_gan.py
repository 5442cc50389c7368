"""The 2D lab's checks in the kernel and in isolation: verdicts, quiet stderr, and cheats."""

from __future__ import annotations

import pytest
import torch

from coursepkg.grading import lab_2d_gan
from coursepkg.grading.checks import CheckFailed, assert_standard_normal
from coursepkg.grading.isolation import requested_checks
from tests.grading_helpers import failing_in_a_kernel, failing_in_isolation, program, run_program
from tests.lab_2d_variants import WRONG

MODULE = "coursepkg.grading.lab_2d_gan"


def test_requested_checks_reads_aliases_and_ignores_other_calls():
    source = (
        "import coursepkg.grading.lab_2d_gan as g\n"
        "from coursepkg.grading import lab_2d_gan\n"
        "g.check('b', globals())\n"
        "lab_2d_gan.check('a', globals())\n"
        "other.check('c', globals())\n"
    )
    assert requested_checks(source) == [(MODULE, "b"), (MODULE, "a")]


def test_check_prints_a_verdict_and_raises_on_failure(lab_2d_notebook, capsys):
    namespace, _ = run_program(program(lab_2d_notebook))
    lab_2d_gan.check("mmd2", namespace)
    assert "✔ mmd2" in capsys.readouterr().out
    namespace["mmd2"] = lambda x, y, *, bandwidth=0.5: 0.0
    with pytest.raises(CheckFailed, match=r"mmd2\(x, y, bandwidth=0.7\) returned 0.000000; expected"):
        lab_2d_gan.check("mmd2", namespace)
    with pytest.raises(KeyError, match="No check named .nope. in the 2D GAN lab"):
        lab_2d_gan.check("nope", namespace)


def test_student_stderr_and_warnings_stay_off_the_test_cell(lab_2d_notebook, capsys):
    namespace, _ = run_program(program(lab_2d_notebook))
    original = namespace["mmd2"]

    def noisy_mmd2(x, y, *, bandwidth=0.5):
        import sys
        import warnings

        print("progress", file=sys.stderr)
        warnings.warn("harmless", stacklevel=2)
        return original(x, y, bandwidth=bandwidth)

    namespace["mmd2"] = noisy_mmd2
    lab_2d_gan.check("mmd2", namespace)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "note: your code warned: UserWarning: harmless" in captured.out


@pytest.mark.parametrize("name", sorted(n for n, v in WRONG.items() if v.kernel_passes))
def test_cheats_pass_in_their_own_kernel_but_fail_in_isolation(lab_2d_notebook, name):
    variant = WRONG[name]
    assert failing_in_a_kernel(program(lab_2d_notebook, variant), lab_2d_notebook) == []  # the kernel is fooled...
    failing = failing_in_isolation(lab_2d_notebook, variant)
    assert set(failing) == set(variant.fails)  # ...the isolated re-run is not
    (messages,) = failing.values()
    assert variant.message in messages[0]


def test_standard_normal_check_rejects_uniform_and_scaled_noise():
    generator = torch.Generator().manual_seed(0)
    assert_standard_normal(torch.randn(2000, generator=generator), "z")
    for bad in (torch.rand(2000, generator=generator), 2 * torch.randn(2000, generator=generator)):
        with pytest.raises(CheckFailed, match="standard normal"):
            assert_standard_normal(bad, "z")
