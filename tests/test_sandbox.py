"""The sandbox's walls, each attacked once, with small bounded attacks (coursepkg.grading.sandbox).

Every attack here is bounded far below the machine's size (allocations of 1 GiB at
most, files of 100 MiB, tens of processes) and leaves nothing behind: a test fails
if a process of the sandbox survives it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

from coursepkg.grading import sandbox
from coursepkg.grading.sandbox import HOME, Limits, MiB, SandboxUnavailable
from tests.conftest import ROOT

FAST = Limits(deadline=60)


def _python(code: str, limits: Limits = FAST, **kwargs) -> sandbox.Outcome:
    """Run ``code`` with the sandbox's Python; what it puts in ``out`` (a dict) comes back as JSON."""
    program = (
        "import json, os\nout = {}\n"
        "def send():\n    os.write(int(os.environ['COURSEPKG_RESULTS']), json.dumps(out).encode())\n"
        f"{code}\nsend()\n"
    )
    return sandbox.run([sys.executable, "-c", program], limits=limits, **kwargs)


def _sent(outcome: sandbox.Outcome) -> dict:
    assert outcome.results, outcome.stderr
    return json.loads(outcome.results)


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except FileNotFoundError:
                pass
    return found


def test_it_runs_as_an_unprivileged_user_of_its_own_with_no_capabilities():
    seen = _sent(_python("out['uid'] = os.getuid()\nout['caps'] = open('/proc/self/status').read()"))
    assert seen["uid"] != 0
    if os.geteuid() == 0:
        assert seen["uid"] >= 200_000  # a uid of its own, owning nothing on the host
    effective = next(line for line in seen["caps"].splitlines() if line.startswith("CapEff"))
    assert int(effective.split()[1], 16) == 0


def test_it_sees_only_python_and_what_it_is_given(tmp_path):
    secret = tmp_path / "gradebook.db"
    secret.write_text("grades")
    seen = _sent(
        _python(
            f"out['tmp'] = os.path.exists({str(secret)!r})\n"
            f"out['solutions'] = os.path.exists({str(ROOT / 'solutions')!r})\n"
            f"out['tests'] = os.path.exists({str(ROOT / 'tests')!r})\n"
            f"out['root_home'] = os.listdir('/root') if os.path.exists('/root') else []\n"
            "out['home'] = os.listdir(os.environ['HOME'])\n"
            "out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        )
    )
    assert seen == {"tmp": False, "solutions": False, "tests": False, **seen, "home": []}
    assert set(seen["root_home"]) <= {".pyenv"}  # at most the path to the Python it runs
    assert seen["pids"] == [1, 2]  # its own PID namespace: bubblewrap's init and itself


def test_the_root_is_read_only_and_the_scratch_is_writable():
    seen = _sent(
        _python(
            "for name, path in [('venv', os.path.join(os.path.dirname(os.__file__), 'x')), ('usr', '/usr/x'),"
            " ('etc', '/etc/x'), ('home', os.path.join(os.environ['HOME'], 'x')), ('tmp', '/tmp/x')]:\n"
            "    try:\n        open(path, 'w').write('x'); out[name] = 'written'\n"
            "    except OSError as e:\n        out[name] = e.strerror\n"
        )
    )
    assert seen == {
        "venv": "Read-only file system",
        "usr": "Read-only file system",
        "etc": "Read-only file system",
        "home": "written",
        "tmp": "written",
    }


def test_it_cannot_reach_a_server_on_the_hosts_loopback():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    seen = _sent(
        _python(
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); out['net'] = 'connected'\n"
            "except OSError as e:\n    out['net'] = type(e).__name__\n"
            "out['interfaces'] = [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]\n"
        )
    )
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing ever connected
        server.accept()
    server.close()
    assert seen["net"] == "ConnectionRefusedError"
    assert seen["interfaces"] == ["lo"]  # its own loopback, connected to nothing


def test_the_graders_environment_does_not_leak_in(monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    seen = _sent(_python("out['env'] = dict(os.environ)"))
    assert "GRADER_SECRET" not in seen["env"]
    assert seen["env"]["HOME"] == HOME


def test_every_process_it_started_dies_with_it():
    uid_file = "out['uid'] = os.getuid()\n"
    outcome = _python(
        uid_file + "import subprocess\n"
        "for _ in range(20):\n"
        "    subprocess.Popen(['sleep', '300'], start_new_session=True, stdin=subprocess.DEVNULL,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    uid = _sent(outcome)["uid"]
    assert outcome.returncode == 0
    deadline = time.monotonic() + 5
    while _processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_of(uid) == []


def test_memory_beyond_the_limit_stops_the_sandbox():
    outcome = _python(
        "blocks = []\nfor _ in range(64):\n    blocks.append(bytearray(16 << 20))  # touched: resident\n",
        Limits(memory=256 * MiB, deadline=60),
    )
    assert outcome.stopped == "the memory limit of 256 MiB"
    assert 256 * MiB < outcome.peak_memory < 1024 * MiB


def test_the_process_limit_holds():
    seen = _sent(
        _python(
            "import subprocess\nstarted = []\n"
            "for _ in range(60):\n"
            "    try:\n        started.append(subprocess.Popen(['sleep', '30']))\n"
            "    except OSError:\n        break\n"
            "out['started'] = len(started)\n"
            "for p in started:\n    p.kill()\n",
            Limits(processes=24, deadline=60),
        )
    )
    assert seen["started"] < 24


def test_files_beyond_the_size_limit_and_the_disk_cannot_be_written():
    seen = _sent(
        _python(
            "def write(path, mib):\n"
            "    try:\n"
            "        with open(path, 'wb') as f:\n"
            "            for _ in range(mib):\n                f.write(b'x' * (1 << 20))\n"
            "        return 'written'\n"
            "    except OSError as e:\n        return e.strerror\n"
            "out['big'] = write(os.environ['HOME'] + '/big', 100)\n"
            "os.remove(os.environ['HOME'] + '/big')\n"
            "out['many'] = [write(os.environ['HOME'] + f'/part{i}', 12) for i in range(8)]\n",
            Limits(file_size=16 * MiB, disk=48 * MiB, deadline=60),
        )
    )
    assert seen["big"] == "File too large"
    assert seen["many"][:3] == ["written"] * 3
    assert "No space left on device" in seen["many"]


def test_the_deadline_kills_an_endless_loop():
    started = time.monotonic()
    outcome = _python("while True:\n    pass", Limits(deadline=2))
    assert outcome.stopped == "the deadline of 2 s"
    assert time.monotonic() - started < 10


def test_what_it_sends_back_is_capped():
    outcome = _python(
        "fd = int(os.environ['COURSEPKG_RESULTS'])\nfor _ in range(64):\n    os.write(fd, b'x' * (1 << 20))\n",
        Limits(results=4 * MiB, deadline=60),
    )
    assert outcome.stopped == "the limit of 4 MiB on what it sends back"
    assert len(outcome.results) == 4 * MiB


def test_data_come_in_on_standard_input_and_pipes_of_its_own():
    seen = _sent(
        _python(
            "import sys\nout['stdin'] = sys.stdin.read()\n"
            "out['pipes'] = [os.read(int(fd), 100).decode() for fd in os.environ['COURSEPKG_PIPES'].split(',')]\n",
            stdin=b"request",
            pipes=[b"first", b"second"],
        )
    )
    assert seen == {"stdin": "request", "pipes": ["first", "second"]}


def test_a_mount_is_seen_read_only_where_it_is_put():
    shared = Path(tempfile.mkdtemp(dir=sandbox.staging_root()))  # a folder the sandbox's user may read
    shared.chmod(0o755)
    (shared / "data.txt").write_text("course data")
    seen = _sent(
        _python(
            "out['read'] = open('/course/data.txt').read()\n"
            "try:\n    open('/course/new', 'w'); out['write'] = 'written'\n"
            "except OSError as e:\n    out['write'] = e.strerror\n",
            mounts=[sandbox.Mount(shared, Path("/course"))],
        )
    )
    shutil.rmtree(shared)
    assert seen == {"read": "course data", "write": "Read-only file system"}


def test_grading_refuses_where_bubblewrap_is_missing(monkeypatch):
    monkeypatch.setattr(sandbox, "BWRAP", "bwrap-that-is-not-installed")
    sandbox.check_available.cache_clear()
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.check_available()
    sandbox.check_available.cache_clear()


def test_unsandboxed_runs_say_so_and_keep_only_the_limits(caplog, tmp_path):
    with sandbox.unsandboxed():
        seen = _sent(_python(f"out['tmp'] = os.path.exists({str(tmp_path)!r})"))
        stopped = _python("while True:\n    pass", Limits(deadline=1))
    assert seen == {"tmp": True}  # no wall: it sees this machine's files
    assert stopped.stopped == "the deadline of 1 s"
    assert "WITHOUT THE SANDBOX" in caplog.text


def test_limits_are_checked_and_described():
    with pytest.raises(ValueError, match="Limits.memory must be positive"):
        Limits(memory=0)
    assert Limits().describe().startswith("memory 4 GiB, 256 processes, files up to 64 MiB")
