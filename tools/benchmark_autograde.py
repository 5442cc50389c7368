"""How long nbgrader takes to autograde one submission of a lab, and what isolation costs.

Runs, in one scratch course, ``nbgrader autograde`` on the lab's solution
twice: with the course's pipeline (the notebook, then the isolated re-run of its
checks) and, as the baseline, with nbgrader's default pipeline (the notebook
only). Prints seconds per submission, their ratio, and the share of the 60 s
budget a submission may take on 2 CPU cores.

Usage, from the repository root::

    python -m tools.benchmark_autograde [LAB] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 60.0


def _nbgrader(course: Path, *args: str) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, check=True, capture_output=True)


_BASELINE = """
# Benchmark baseline: nbgrader's default autograde pipeline, without IsolatedChecks.
from nbgrader.converters.autograde import Autograde
c.Autograde.autograde_preprocessors = Autograde.class_traits()["autograde_preprocessors"].default()
"""


def _course(tmp: Path, lab: str, *, baseline: bool) -> Path:
    course = tmp / ("baseline" if baseline else "course")
    shutil.copytree(ROOT / "solutions" / lab, course / "solutions" / lab)
    config = (ROOT / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(config + (_BASELINE if baseline else ""))
    _nbgrader(course, "generate_assignment", lab, "--force")
    return course


def _time_autograde(course: Path, lab: str, student: str) -> float:
    folder = course / "submitted" / student / lab
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / lab / f"{lab}.ipynb", folder)
    start = time.perf_counter()
    _nbgrader(course, "autograde", lab, "--student", student, "--create", "--force")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lab", nargs="?", default="lab_2d_gan")
    parser.add_argument("--repeat", type=int, default=3, help="submissions timed per pipeline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        courses = {
            "course pipeline (isolated checks)": _course(Path(tmp), args.lab, baseline=False),
            "baseline (nbgrader default)": _course(Path(tmp), args.lab, baseline=True),
        }
        times: dict[str, list[float]] = {name: [] for name in courses}
        for i in range(args.repeat):  # interleaved, so both see the same machine load
            for name, course in courses.items():
                times[name].append(_time_autograde(course, args.lab, f"student{i}"))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"autograde of one {args.lab} submission, median of {args.repeat}, {os.cpu_count()} CPUs:")
    for name, value in medians.items():
        print(f"  {name:<36} {value:6.1f} s   ({value / BUDGET_S:.0%} of the {BUDGET_S:.0f} s budget)")
    ratio = medians["course pipeline (isolated checks)"] / medians["baseline (nbgrader default)"]
    print(f"  isolation costs x{ratio:.2f} the baseline")


if __name__ == "__main__":
    main()
