"""A class of submissions to the Jensen-Shannon lab: honest ones, odd ones, broken files and attacks on the grader.

``tests/test_grading_class.py`` grades them all in one batch (``python -m coursepkg
grade``) and checks each against what it says here: which test cells lose their
points (every other one keeps them), and what its feedback must say. Attacks are
bounded: memory, disk, processes and time stay far below the machine's size, and the
test's limits are set just above what an honest notebook needs.

Sources may name ``{course}`` (the course directory), ``{port}`` (a server the test
listens on, on the host's loopback) and ``{marker}`` (a string unique to the student).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import nbformat

#: The lab's test cells, each worth 2 points.
TESTS = (
    "test_optimal_discriminator",
    "test_value_function",
    "test_kl_divergence",
    "test_js_divergence",
    "test_identity_sides",
)
ALL = frozenset(TESTS)


@dataclass(frozen=True)
class Submission:
    """One student's submission and what grading it must give.

    Attributes:
        answers: answer cells (``grade_id``) whose honest source is replaced.
        added: cells the student inserted: ``(grade_id of the cell it goes before, source)``.
        files: other files handed in beside the notebook (relative path -> bytes).
        edit: a change made to the notebook's JSON before it is written (metadata attacks).
        raw: bytes written instead of a notebook.
        filename: the notebook's file name, if not the lab's.
        lost: test cells that must score 0; every other test cell must get its points.
        feedback: text its feedback must contain.
    """

    answers: dict[str, str] = field(default_factory=dict)
    added: tuple[tuple[str, str], ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    edit: Callable[[dict], None] | None = None
    raw: bytes | None = None
    filename: str | None = None
    lost: frozenset[str] = frozenset()
    feedback: str = ""


BLANK = {
    cell: "raise NotImplementedError()"
    for cell in ("discriminator_solution", "kl_solution", "js_solution", "identity_solution")
}

# ---------------------------------------------------------------- taking the reference back

_FROM_SYS_MODULES = """
import importlib, sys


def kl_divergence(p, q):
    sys.modules.pop("coursepkg.theory.divergences", None)  # undo any block
    return importlib.import_module("coursepkg.theory.divergences").kl_divergence(p, q)


def check_distributions(p, q):
    return None
"""

_FROM_THE_JUDGE = """
from coursepkg.grading import lab_js_divergence as grading

optimal_discriminator = grading.reference.optimal_discriminator
value_function = grading.reference.value_function
"""

_FROM_ITS_FILE = """
import importlib.util, os
import coursepkg

path = os.path.join(coursepkg.__path__[0], "theory", "divergences.py")
spec = importlib.util.spec_from_file_location("stolen", path)
stolen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stolen)


def js_divergence(p, q):
    return stolen.js_divergence(p, q)
"""

_FROM_ITS_SOURCE = """
import os
import coursepkg

source = open(os.path.join(coursepkg.__path__[0], "theory", "divergences.py")).read()
scope = {"__name__": "stolen"}
exec(source, scope)


def identity_sides(p_data, p_g):
    return scope["minimax_identity"](p_data, p_g)
"""

# A wrong KL, and a cell that makes the autograder's probe hand back the observations of a right one,
# recorded beforehand with the course's own package (public, pip-installable): the test fills {recorded}.
_FORGED_PROBE = """
import atexit, base64, io, torch
from coursepkg.grading import observe

recorded = torch.load(io.BytesIO(base64.b64decode("{recorded}")), weights_only=True)
honest = observe.Probe.observe
observe.Probe.observe = lambda self, namespace: recorded if self.name == "kl_divergence" else honest(self, namespace)
atexit.register(lambda: print("forged"))
"""

_WRONG_KL = "def check_distributions(p, q):\n    pass\n\n\ndef kl_divergence(p, q):\n    return 0.0"

_CHECK_REPLACED = """
from coursepkg.grading import lab_js_divergence as grader

grader.check = lambda *args, **kwargs: "ok"
"""

_EXECUTE_RESULT = """
from IPython.display import display
display(2)
2
"""

# ---------------------------------------------------------------- reaching out of the sandbox

_WRITE_EVERYWHERE = """
import glob, os

written = []
targets = [
    "{course}/gradebook.db",
    "{course}/nbgrader_config.py",
    "{course}/solutions/lab_js_divergence/lab_js_divergence.ipynb",
    "{course}/submitted/honest_b/lab_js_divergence/lab_js_divergence.ipynb",
    "{course}/feedback/honest_b/lab_js_divergence/lab_js_divergence.html",
    os.path.join(__import__("coursepkg").__path__[0], "grading", "lab_js_divergence.py"),
    os.path.join(__import__("coursepkg").__path__[0], "theory", "divergences.py"),
]
# And a shadow of the grader in its own folder, which the kernel would import first.
os.makedirs("coursepkg/grading", exist_ok=True)
for name in ("coursepkg/__init__.py", "coursepkg/grading/__init__.py"):
    open(name, "w").close()
targets.append("coursepkg/grading/lab_js_divergence.py")
for path in targets:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("def check(*args, **kwargs):\\n    return 'ok'\\n")
        written.append(path)
    except OSError as error:
        pass
print("written:", written)
"""

# Every file it can read that holds a hidden test, a solution, the gradebook or another student's work.
_READ_EVERYTHING = """
import os

# Built here, so that the code itself (which its feedback shows) does not hold what it looks for.
needles = (b"BEGIN HIDDEN " + b"TESTS", b"SQLite " + b"format 3", b"MARKER-" + b"honest")
found = []
for top in ("/", "/tmp", os.path.expanduser("~")):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    data = f.read(1 << 20)
            except OSError:
                continue
            if any(needle in data for needle in needles):
                found.append(path)
                print(path, data[:4000])
        if len(found) > 20:
            break
print("found", len(found), "files")
"""

_NETWORK = """
import socket, urllib.request

for attempt in (lambda: urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=3).read(),
                lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3)):
    try:
        attempt()
        print("reached the host")
    except OSError as error:
        print("no network:", type(error).__name__)
"""

_KERNEL_HIJACK = """
import glob, os
from jupyter_client import BlockingKernelClient

seen = []
patterns = ["/tmp/**/kernel-*.json", "/run/**/kernel-*.json", "/dev/shm/**"]
for pattern in patterns + [os.path.expanduser("~/**/kernel-*.json")]:
    seen += glob.glob(pattern, recursive=True)
for path in seen:
    if path.endswith(".json"):
        client = BlockingKernelClient(connection_file=path)
        client.load_connection_file()
        client.start_channels()
        client.execute("open('/tmp/hijacked', 'w').write('x')")
print("connection files:", seen)
"""

# ---------------------------------------------------------------- limits

_MEMORY = """
blocks = []
for _ in range(48):
    blocks.append(bytearray(64 << 20))  # 3 GiB in all, touched page by page
"""

_OUTPUT = """
import sys
for _ in range(50):
    sys.stdout.write("x" * (1 << 20))
"""

_BIG_FILE = """
try:
    with open("big.bin", "wb") as f:
        for _ in range(2048):
            f.write(b"x" * (1 << 20))
except OSError as error:
    print("could not write 2 GiB:", error.strerror)
"""

_PROCESSES = """
import subprocess
started = 0
for _ in range(300):
    try:
        subprocess.Popen(["sleep", "600"], start_new_session=True)
        started += 1
    except OSError:
        break
print("left behind", started, "processes")
"""

_ENDLESS = """
while True:
    pass
"""

_EXIT = """
import os
os._exit(1)
"""

_SEGFAULT_KL = """
import ctypes


def check_distributions(p, q):
    return None


def kl_divergence(p, q):
    ctypes.string_at(0)
"""

# ---------------------------------------------------------------- honest, written otherwise

_NUMPY_TYPES = """
import numpy as np


def optimal_discriminator(p_data, p_g):
    p, q = np.asarray(p_data, dtype=np.float64), np.asarray(p_g, dtype=np.float64)
    out = np.full(p.shape, 0.5)
    total = p + q
    np.divide(p, total, out=out, where=total > 0)
    return torch.from_numpy(out)


def value_function(d, p_data, p_g):
    d, p, q = (np.asarray(t, dtype=np.float64) for t in (d, p_data, p_g))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(d), 0.0) + np.where(q > 0, q * np.log1p(-d), 0.0)
    return np.float64(terms.sum())
"""


def _copied_kl() -> str:
    """The reference's KL and its helpers, pasted with a few names changed: work to flag, not to grade down."""
    from coursepkg.theory import divergences

    functions = (divergences._distribution, divergences._pair, divergences._xlogy_ratio, divergences.kl_divergence)
    pasted = "\n\n".join(inspect.getsource(f) for f in functions)
    pasted = pasted.replace("_xlogy_ratio", "_terms").replace("_distribution", "_checked")
    return "import math\n\n" + pasted + "\n\ncheck_distributions = _pair\n"


def _schema_99(notebook: dict) -> None:
    for cell in notebook["cells"]:
        if "nbgrader" in cell["metadata"]:
            cell["metadata"]["nbgrader"]["schema_version"] = 99


def _test_cell_ungraded(notebook: dict) -> None:
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "test_kl_divergence":
            cell["metadata"]["nbgrader"]["grade"] = False
            cell["source"] = "print('all good')"


def _test_cell_twice(notebook: dict) -> None:
    cells = notebook["cells"]
    index = next(
        i for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_js_divergence"
    )
    cells.insert(index, {**cells[index], "source": "print('passed')"})


def _renamed_answer(notebook: dict) -> None:
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "js_solution":
            cell["metadata"]["nbgrader"]["grade_id"] = "my_js"


def _strange_metadata(notebook: dict) -> None:
    notebook["metadata"]["nbgrader"] = {"schema_version": 99, "pwned": True}
    notebook["metadata"]["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    for cell in notebook["cells"]:
        cell["metadata"]["junk"] = {"deep": list(range(5))}


def _nbformat_3(notebook: dict) -> None:
    converted = nbformat.v4.downgrade(nbformat.reads(json.dumps(notebook), as_version=4))
    notebook.clear()
    notebook.update(json.loads(nbformat.writes(converted, version=nbformat.NO_CONVERT)))


def _tampered(notebook: dict) -> None:
    """Everything that used to stop nbgrader's batch or lose the submission, at once."""
    for edit in (_schema_99, _test_cell_ungraded, _test_cell_twice, _renamed_answer, _strange_metadata):
        edit(notebook)


#: Attacks that leave the student's answers alone: each in a cell of its own, all in one notebook.
_INTRUDER = (
    ("test_kl_divergence", _WRITE_EVERYWHERE),
    ("test_kl_divergence", _READ_EVERYTHING),
    ("test_kl_divergence", _NETWORK),
    ("test_js_divergence", _KERNEL_HIJACK),
)
_LIMITS = (("test_kl_divergence", _OUTPUT), ("test_kl_divergence", _BIG_FILE), ("test_kl_divergence", _PROCESSES))

SUBMISSIONS: dict[str, Submission] = {
    # Honest work, written as the solution and otherwise, and none.
    "honest_a": Submission(),
    "honest_b": Submission(),
    "numpy_types": Submission(answers={"discriminator_solution": _NUMPY_TYPES}),
    "copied_reference": Submission(answers={"kl_solution": _copied_kl()}),
    "blank": Submission(answers=BLANK, lost=ALL),
    # Forged scores, and the references taken back four ways, one per exercise: each exercise loses its points.
    "forged_scores": Submission(
        answers=BLANK,
        added=(("test_optimal_discriminator", _CHECK_REPLACED), ("test_kl_divergence", _EXECUTE_RESULT)),
        lost=ALL,
    ),
    "takes_references": Submission(
        answers={
            "kl_solution": _FROM_SYS_MODULES,
            "discriminator_solution": _FROM_THE_JUDGE,
            "js_solution": _FROM_ITS_FILE,
            "identity_solution": _FROM_ITS_SOURCE,
        },
        lost=ALL,
        feedback="holds the course's reference solutions",
    ),
    "forged_probe": Submission(
        answers={"kl_solution": _WRONG_KL},
        added=(("test_kl_divergence", _FORGED_PROBE),),
        lost=frozenset({"test_kl_divergence"}),
    ),
    "shadow_package": Submission(
        files={
            "coursepkg/__init__.py": b"",
            "coursepkg/grading/__init__.py": b"",
            "coursepkg/grading/lab_js_divergence.py": b"def check(*args, **kwargs):\n    return 'ok'\n",
        },
        answers=BLANK,
        lost=ALL,
        feedback="files submitted besides the notebook were ignored",
    ),
    # Out of the sandbox, and into its limits: each costs what it broke, never the other exercises.
    "intruder": Submission(added=_INTRUDER, feedback="no network"),
    "limits": Submission(added=_LIMITS, feedback="could not write 2 GiB"),
    "memory": Submission(added=(("test_kl_divergence", _MEMORY),), feedback="the memory limit of 2 GiB"),
    "endless_loop": Submission(added=(("test_kl_divergence", _ENDLESS),), feedback="skipped in the re-run"),
    "exits": Submission(added=(("test_js_divergence", _EXIT),), feedback="the kernel exited with status 1"),
    "segfault": Submission(answers={"kl_solution": _SEGFAULT_KL}, lost=frozenset({"test_kl_divergence"})),
    # Files that would stop nbgrader's batch, or lose the submission.
    "tampered": Submission(edit=_tampered, feedback="a second copy of cell test_js_divergence"),
    "nbformat_3": Submission(edit=_nbformat_3, feedback="converted to nbformat 4"),
    "wrong_name": Submission(filename="my lab (final).ipynb", feedback="it was graded as lab_js_divergence.ipynb"),
    "invalid_json": Submission(raw=b'{"cells": [', lost=ALL, feedback="not valid JSON"),
    "empty_file": Submission(raw=b"", lost=ALL, feedback="the notebook file is empty"),
}
