"""python -m coursepkg benchmark modes: the command on a tiny configuration, its table and its errors."""

import json
import math

import pytest

from coursepkg.__main__ import main
from coursepkg.toy2d import benchmark as modes_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


def test_command_prints_the_table_with_published_rows_and_writes_json(capsys, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--variants", "gan,infogan", "--datasets", "ring", "--seeds", "2", "--steps", "3", "--out", str(out)]
    assert main(["benchmark", "modes", *argv]) == 0
    printed = capsys.readouterr().out
    assert "mean ± standard error" in printed
    for text in ("ring  gan", "ring  infogan", "GAN [PacGAN, Table 1]", "98.2", "VEEGAN [VEEGAN, Table 1]", "52.9"):
        assert text in printed
    results = json.loads(out.read_text())
    assert results["provenance"]["command"] == "python -m coursepkg benchmark modes " + " ".join(argv)
    assert results["provenance"]["machine"]["torch_threads"] == 1  # one thread per run
    row = results["rows"][0]
    assert (row["variant"], row["dataset"], row["seeds"], len(row["runs"])) == ("gan", "ring", 2, 2)
    assert 0 <= row["modes"] <= 8 and 0 <= row["high_quality"] <= 1 and row["cpu_seconds"] > 0
    assert row["on_target"] == 0  # three steps are far from enough


def test_runs_are_deterministic_and_one_seed_has_no_standard_error():
    first = modes_benchmark.run_one("pacgan2", "grid", 4, steps=2)
    second = modes_benchmark.run_one("pacgan2", "grid", 4, steps=2)
    assert {k: v for k, v in first.items() if k != "cpu_seconds"} == {
        k: v for k, v in second.items() if k != "cpu_seconds"
    }
    results = modes_benchmark.run_benchmark(["wgan"], ["ring"], seeds=1, steps=2)
    assert math.isnan(results["rows"][0]["modes_se"])
    assert "n/a" in modes_benchmark.format_table(results)


def test_bad_arguments_raise_clear_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "modes", "--variants", "gan,vae"])
    assert exit_info.value.code == 2
    assert "unknown variant ['vae']; choose from gan,dropout,pacgan2,wgan,infogan" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "modes", "--seeds", "0"])
    assert "expected a positive integer, got '0'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown or missing variants/data sets"):
        modes_benchmark.run_benchmark(["gan"], ["moons"])
    with pytest.raises(ValueError, match="must be at least 1"):
        modes_benchmark.run_benchmark(["gan"], ["ring"], seeds=0)
