"""Run a command in a throwaway bubblewrap sandbox, with limits and a deadline.

Everything a student wrote runs through :func:`run` while a submission is
graded: the notebook's kernel and the isolated re-run of its checks. The
sandbox is built by bubblewrap (``bwrap``, Debian's ``bubblewrap``), a small,
maintained setuid-free tool that Flatpak uses for the same job. Inside it the
command has

* **its own unprivileged user**: a uid of its own on the host when the grader
  runs as root (:func:`sandbox_uid`), else the instructor's uid mapped in a user
  namespace; no capabilities;
* **a read-only root** made only of what Python needs: ``/usr``, ``/etc``, the
  Python installation and its virtual environment, and the ``coursepkg`` view
  the caller passes (:class:`Mount`). The course directory, ``solutions/``,
  the gradebook, other submissions and the instructor's home are not there at
  all;
* **a writable scratch** (``/home/student``, its working directory) and
  ``/tmp``: each a fresh tmpfs of :attr:`Limits.disk` bytes, gone when it ends;
* **no network**: a network namespace of its own, whose loopback interface
  connects to nothing outside (a server on the host's 127.0.0.1 cannot be
  reached), and its own IPC, UTS and cgroup namespaces;
* **its own PID namespace**: every process it starts dies with it;
* **limits** (:class:`Limits`): the resident memory of all its processes
  together (a watchdog here kills the sandbox above it), the number of processes,
  the size of any file, CPU seconds per process and open files (rlimits, set
  inside the sandbox by ``prlimit`` so that they count its processes only), the
  bytes it may send back, and a wall-clock deadline after which the whole sandbox
  is killed.

Data go in on the command's standard input and through extra pipes; results
come back on a pipe whose descriptor :data:`RESULTS_VARIABLE` names, read here up to a cap.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "HOME",
    "PIPES_VARIABLE",
    "RESULTS_VARIABLE",
    "Limits",
    "Mount",
    "Outcome",
    "SandboxUnavailable",
    "check_available",
    "environment",
    "link_or_copy",
    "python_mounts",
    "run",
    "sandbox_uid",
    "staging_root",
    "unsandboxed",
]

log = logging.getLogger(__name__)

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

#: The sandbox's writable scratch and working directory (a tmpfs).
HOME = "/home/student"
#: The variable naming the descriptor on which a sandboxed command writes its results.
RESULTS_VARIABLE = "COURSEPKG_RESULTS"
#: The variable listing the descriptors of the extra pipes a sandboxed command reads.
PIPES_VARIABLE = "COURSEPKG_PIPES"
#: The bubblewrap executable.
BWRAP = "bwrap"
#: Seconds between two looks of the watchdog at the sandbox's memory and deadline.
_POLL_S = 0.1


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the sandbox; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one sandbox may use. Every field has a documented default; all are configurable.

    Attributes:
        memory: bytes of resident memory (anonymous and shared pages) of all its processes together.
        processes: processes and threads it may run at once (``RLIMIT_NPROC``).
        file_size: bytes of the largest file a process may write (``RLIMIT_FSIZE``).
        disk: bytes of each writable tmpfs, the scratch folder and ``/tmp``.
        cpu_seconds: CPU seconds of each process (``RLIMIT_CPU``).
        deadline: wall-clock seconds after which the whole sandbox is killed.
        cell_output: bytes of output kept per notebook cell; the rest is cut with a note.
        results: bytes the command may send back on its results pipe.
        open_files: file descriptors per process (``RLIMIT_NOFILE``).
    """

    memory: int = 4 * GiB
    processes: int = 256
    file_size: int = 64 * MiB
    disk: int = 256 * MiB
    cpu_seconds: int = 600
    deadline: float = 300.0
    cell_output: int = 1 * MiB
    results: int = 256 * MiB
    open_files: int = 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"Limits.{field.name} must be positive, got {getattr(self, field.name)!r}.")

    def describe(self) -> str:
        """The limits in one line, as the README and the feedback state them."""
        return (
            f"memory {_size(self.memory)}, {self.processes} processes, files up to {_size(self.file_size)}, "
            f"{_size(self.disk)} of disk, {self.cpu_seconds} CPU s per process, a {self.deadline:g} s deadline, "
            f"{_size(self.cell_output)} of output per cell"
        )


def _size(count: int) -> str:
    """Bytes as a reader says them: ``4 GiB``, ``256 MiB``, ``1 MiB``, ``12 KiB``."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if count >= unit:
            return f"{count / unit:g} {name}"
    return f"{count} bytes"


@dataclass(frozen=True)
class Mount:
    """A host path the sandbox sees read-only, at ``target`` (by default at the same place)."""

    source: Path
    target: Path | None = None

    @property
    def inside(self) -> Path:
        """Where the sandbox sees it."""
        return self.target or self.source


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed command ended.

    Attributes:
        returncode: the command's exit status (negative: the signal that killed it), ``None`` when
            the sandbox was killed for breaking a limit.
        stopped: why the sandbox was stopped, in words ("the memory limit of 4 GiB"), or ``None``.
        results: what the command wrote on its results pipe (at most :attr:`Limits.results` bytes).
        stderr: the last 64 KiB of its standard error.
        seconds: wall-clock seconds it ran.
        peak_memory: the most resident memory its processes held together, in bytes.
    """

    returncode: int | None
    stopped: str | None
    results: bytes
    stderr: str
    seconds: float
    peak_memory: int

    def ended(self) -> str:
        """The way it ended, as the rest of a sentence: "exited with status 3", "was killed by SIGSEGV", ..."""
        if self.stopped:
            return f"was stopped: {self.stopped}"
        if self.returncode is not None and self.returncode < 0:
            return f"was killed by {signal.Signals(-self.returncode).name}"
        return f"exited with status {self.returncode}"


# ---------------------------------------------------------------- who runs it


def _is_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid() -> int:
    """The host uid a sandbox runs as: a fresh one in 200000-999999 when the grader is root, else the grader's.

    As root, each sandbox gets a uid that owns no file and no other process, so that
    the process limit counts its processes only and nothing of the host is its own.
    """
    return 200_000 + secrets.randbelow(800_000) if _is_root() else os.getuid()


# ---------------------------------------------------------------- what it sees


def _traversable(path: Path) -> bool:
    """Whether any user may reach ``path`` and read it (every folder on the way has ``o+x``)."""
    path = path.resolve()
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH or (folder == path and not mode & stat.S_IROTH):
            return False
    return True


def staging_root() -> Path:
    """A folder of the grader's own that every user may read but only it may write, for staged copies."""
    root = Path(os.environ.get("COURSEPKG_SANDBOX_CACHE", Path(sys.prefix) / ".coursepkg-sandbox"))
    root.mkdir(mode=0o755, exist_ok=True)
    info = root.stat()
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SandboxUnavailable(f"{root} must belong to the grader and be writable by it alone; remove it.")
    root.chmod(0o755)
    return root


def _staged_copy(source: Path, parts: Sequence[str]) -> Path:
    """A copy of ``parts`` of ``source`` that the sandbox's user can read, made once (hard links where possible).

    Needed when the grader runs as root and Python lives under a folder only root may
    enter (``/root/.pyenv``): the sandbox's uid could not read it where it is.
    """
    key = hashlib.sha256(f"{source}:{source.stat().st_mtime_ns}:{parts}".encode()).hexdigest()[:16]
    staged = staging_root() / f"{source.name}-{key}"
    if staged.exists():
        return staged
    building = staged.with_name(staged.name + f".partial-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(mode=0o755)
    for part in parts:
        origin = source / part
        if not origin.exists():
            continue
        target = building / part
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, symlinks=True, copy_function=link_or_copy, ignore=_SKIP_STAGING)
        else:
            link_or_copy(origin, target)
    for folder, _, _ in os.walk(building):
        os.chmod(folder, 0o755)
    try:
        building.rename(staged)
    except OSError:  # another worker staged it first
        shutil.rmtree(building, ignore_errors=True)
    return staged


_SKIP_STAGING = shutil.ignore_patterns("site-packages", "__pycache__", "test", "tests", "idlelib", "tkinter")


def link_or_copy(origin: str | Path, target: str | Path) -> None:
    try:
        os.link(origin, target)
    except OSError:
        shutil.copy2(origin, target)


@cache
def python_mounts() -> tuple[Mount, ...]:
    """What the sandbox needs to run this Python: its installation and its virtual environment, read-only.

    The installation is staged into a readable copy when the sandbox's user could not
    read it where it is (:func:`_staged_copy`).
    """
    mounts = []
    base = Path(sys.base_prefix).resolve()
    if base != Path("/usr") and not base.is_relative_to("/usr"):
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        if _is_root() and not _traversable(base):
            parts = ["bin", "lib/" + version, *(str(p.relative_to(base)) for p in base.glob("lib/libpython*"))]
            mounts.append(Mount(_staged_copy(base, parts), base))
        else:
            mounts.append(Mount(base))
    prefix = Path(sys.prefix).resolve()
    if prefix != base:
        if _is_root() and not _traversable(prefix):
            raise SandboxUnavailable(
                f"the virtual environment {prefix} is in a folder other users cannot enter; the sandbox's "
                "unprivileged user must read it: create the environment in a readable folder."
            )
        mounts.append(Mount(prefix))
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    if not any(purelib.is_relative_to(m.source) or purelib.is_relative_to(m.inside) for m in mounts):
        mounts.append(Mount(purelib))
    return tuple(mounts)


def _bwrap_arguments(mounts: Iterable[Mount], limits: Limits, env: Mapping[str, str]) -> list[str]:
    """bubblewrap's options for a sandbox with ``mounts``, two tmpfs of ``limits.disk`` bytes and ``env``."""
    arguments = [
        "--unshare-all",  # user, IPC, PID, network, UTS and cgroup namespaces of its own
        "--die-with-parent",
        "--new-session",  # no terminal to inject keystrokes into
        "--cap-drop",
        "ALL",
        "--hostname",
        "grader",
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
    ]
    for name in ("bin", "lib", "lib64", "sbin"):
        top = Path("/", name)
        if top.is_symlink():
            arguments += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            arguments += ["--ro-bind", str(top), str(top)]
    for mount in mounts:
        arguments += ["--ro-bind", str(mount.source), str(mount.inside)]
    arguments += ["--proc", "/proc", "--dev", "/dev"]
    for folder in ("/tmp", HOME):
        arguments += ["--size", str(limits.disk), "--perms", "0700", "--tmpfs", folder]
    arguments += ["--chdir", HOME, "--clearenv"]
    for name, value in env.items():
        arguments += ["--setenv", name, value]
    return arguments


def _rlimits(limits: Limits) -> list[str]:
    """``prlimit`` run inside the sandbox: its limits then count the sandbox's processes only."""
    # The address space is only a backstop against one huge allocation (the watchdog holds the total):
    # PyTorch's CUDA build alone maps 3.2 GB of libraries at import, so it gets the memory limit plus 8 GiB.
    return [
        "/usr/bin/prlimit",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size}",
        f"--cpu={limits.cpu_seconds}",
        f"--nofile={limits.open_files}",
        f"--as={limits.memory + 8 * GiB}",
        "--core=0",
        "--",
    ]


def environment(extra: Mapping[str, str] = {}) -> dict[str, str]:  # noqa: B006 - read only
    """The variables a sandboxed Python starts with: no user site, one thread, caches in the scratch."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "HOME": HOME,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": "/tmp/ipython",
        **extra,
    }


# ---------------------------------------------------------------- is it there


@cache
def check_available() -> None:
    """Make sure this machine can sandbox; cached.

    Raises:
        SandboxUnavailable: saying why (no ``bwrap``, no user namespaces, ...) and what to do.
    """
    if shutil.which(BWRAP) is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, and student code must not run unsandboxed: "
            "install it (Debian/Ubuntu: apt-get install bubblewrap; `make test` does) and grade again."
        )
    probe = f"import os; os.write(int(os.environ['{RESULTS_VARIABLE}']), b'ok')"
    outcome = run([sys.executable, "-c", probe], limits=Limits(deadline=60))
    if outcome.results != b"ok":
        raise SandboxUnavailable(
            "bubblewrap could not start a sandbox here (user namespaces may be disabled: "
            f"sysctl kernel.unprivileged_userns_clone=1). It {outcome.ended()}: {outcome.stderr.strip()[-400:]}"
        )


# ---------------------------------------------------------------- running


def _tree(root: int) -> list[int]:
    """``root`` and every process below it, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in children.get(pid, [])]
        found += frontier
    return found


def _resident(pids: Iterable[int]) -> int:
    """Bytes of anonymous and shared resident memory of ``pids`` together (file-backed pages are not counted)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith((b"RssAnon:", b"RssShmem:")):
                        total += int(line.split()[1]) * KiB
        except OSError:
            continue
    return total


def _drain(stream: int, keep: int, into: bytearray, overflow: threading.Event) -> None:
    """Read ``stream`` to its end, keeping the first ``keep`` bytes; set ``overflow`` past them."""
    with os.fdopen(stream, "rb", buffering=0) as f:
        while chunk := f.read(1 << 16):
            if len(into) + len(chunk) > keep:
                into.extend(chunk[: keep - len(into)])
                overflow.set()
                f.read()  # noqa: B018 - keep reading so the writer is not blocked; the killer stops it
                while f.read(1 << 16):
                    pass
                return
            into.extend(chunk)


def _feed(stream: int, data: bytes) -> None:
    """Write ``data`` to ``stream`` and close it; a reader that went away is not an error."""
    try:
        with os.fdopen(stream, "wb", buffering=0) as f:
            f.write(data)
    except (BrokenPipeError, OSError):
        pass


#: Set by :func:`unsandboxed`: run commands without bubblewrap (one trusted notebook, never a class).
_unsafe = contextvars.ContextVar("unsafe", default=False)


@contextlib.contextmanager
def unsandboxed() -> Iterator[None]:
    """Let :func:`run` start commands without the sandbox: no namespaces, no read-only root, no network wall.

    Only the limits and the deadline still hold. For ``--unsafe-no-sandbox``: an instructor
    grading one notebook they trust on a machine that cannot sandbox. It warns, loudly.
    """
    log.warning(
        "GRADING WITHOUT THE SANDBOX: the notebook's code runs as %s with this machine's files and network.",
        os.environ.get("USER", f"uid {os.getuid()}"),
    )
    token = _unsafe.set(True)
    try:
        yield
    finally:
        _unsafe.reset(token)


def run(
    command: Sequence[str],
    *,
    limits: Limits,
    mounts: Iterable[Mount] = (),
    env: Mapping[str, str] = {},  # noqa: B006 - read only
    stdin: bytes = b"",
    pipes: Sequence[bytes] = (),
) -> Outcome:
    """Run ``command`` in a fresh sandbox and wait for it, or for the limits to stop it.

    Args:
        command: the program and its arguments, as the sandbox sees them.
        limits: what it may use.
        mounts: read-only host paths it sees besides ``/usr``, ``/etc`` and Python (:func:`python_mounts`).
        env: variables besides :func:`environment`'s.
        stdin: what it reads on its standard input.
        pipes: more data it can read, each on a pipe of its own; the descriptors are listed, in order,
            in ``$COURSEPKG_PIPES`` (comma-separated).

    Returns:
        How it ended, with what it wrote on the descriptor named by ``$COURSEPKG_RESULTS``.
    """
    results_r, results_w = os.pipe()
    stdin_r, stdin_w = os.pipe()
    pipe_ends = [os.pipe() for _ in pipes]
    variables = {
        **env,
        RESULTS_VARIABLE: str(results_w),
        PIPES_VARIABLE: ",".join(str(read_end) for read_end, _ in pipe_ends),
    }
    scratch = None
    if _unsafe.get():
        scratch = tempfile.TemporaryDirectory(prefix="coursepkg-unsandboxed-")
        argv = [*_rlimits(limits), *command]
        variables = {**environment(variables), "HOME": scratch.name, "COURSEPKG_SCRATCH": scratch.name}
    else:
        unreadable = [str(m.source) for m in mounts if _is_root() and not _traversable(m.source)]
        if unreadable:
            raise SandboxUnavailable(f"the sandbox's user cannot read {', '.join(unreadable)}: make it readable.")
        uid = sandbox_uid()
        launcher = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"] if _is_root() else []
        arguments = _bwrap_arguments([*python_mounts(), *mounts], limits, environment(variables))
        argv = [*launcher, BWRAP, *arguments, "--", *_rlimits(limits), *command]
    started = time.monotonic()
    # bubblewrap passes inherited descriptors through to the command, under the same numbers.
    process = subprocess.Popen(
        argv,
        env=variables if scratch else None,
        cwd=scratch.name if scratch else None,
        stdin=stdin_r,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=[results_w, *(read_end for read_end, _ in pipe_ends)],
        start_new_session=True,
    )
    for fd in (results_w, stdin_r, *(read_end for read_end, _ in pipe_ends)):
        os.close(fd)
    results, stderr = bytearray(), bytearray()
    too_much, stderr_full = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_drain, args=(results_r, limits.results, results, too_much), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr.fileno(), 1 << 20, stderr, stderr_full), daemon=True),
        threading.Thread(target=_feed, args=(stdin_w, stdin), daemon=True),
        *(
            threading.Thread(target=_feed, args=(write_end, data), daemon=True)
            for (_, write_end), data in zip(pipe_ends, pipes)
        ),
    ]
    for thread in threads:
        thread.start()
    stopped, peak = None, 0
    while process.poll() is None:
        peak = max(peak, _resident(_tree(process.pid)[1:]))
        if peak > limits.memory:
            stopped = f"the memory limit of {_size(limits.memory)}"
        elif time.monotonic() - started > limits.deadline:
            stopped = f"the deadline of {limits.deadline:g} s"
        elif too_much.is_set():
            stopped = f"the limit of {_size(limits.results)} on what it sends back"
        if stopped:
            _kill(process)
            break
        time.sleep(_POLL_S)
    process.wait()
    for thread in threads[:2]:
        thread.join(timeout=10)
    if too_much.is_set() and stopped is None:  # it sent too much and ended before the watchdog looked
        stopped = f"the limit of {_size(limits.results)} on what it sends back"
    if scratch:
        scratch.cleanup()
    return Outcome(
        returncode=None if stopped else process.returncode,
        stopped=stopped,
        results=bytes(results),
        stderr=bytes(stderr[-64 * KiB :]).decode(errors="replace"),
        seconds=time.monotonic() - started,
        peak_memory=peak,
    )


def _kill(process: subprocess.Popen) -> None:
    """Kill the sandbox: bubblewrap's process group; its PID namespace takes every process inside with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
