"""The code verifier's sandbox against hostile answers: each layer, and each documented fallback
(layers switched off with ``disable``), must stop what it claims to; the negative controls show
that the probes do reach the thing they attack when the layers are off."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import orroute
import orroute.verify as v

NET_LAYERS = ("namespaces", "seccomp", "landlock")


def layers(*disable: str) -> set[str]:
    return set(v.sandbox_report(disable=disable)["layers"])


def need(disable: tuple[str, ...], *wanted: str) -> None:
    missing = [w for w in wanted if w not in layers(*disable)]
    if missing:
        pytest.skip(f"sandbox layer {', '.join(missing)} not available here")


def test_the_report_names_every_layer_once_as_in_force_or_missing() -> None:
    r = v.sandbox_report()
    assert "subreaper" in r["layers"]
    assert not set(r["layers"]) & set(r["missing"])
    off = v.sandbox_report(disable=("namespaces", "seccomp"))
    assert {"netns", "pidns", "seccomp"} <= set(off["missing"])
    with pytest.raises(orroute.InvalidArgumentError):
        v.run_python("pass", disable=("nope",))


def test_a_fallback_says_which_protections_were_in_force(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="orroute.verify"):
        r = v.run_python("pass", disable=("namespaces",))
    assert r.outcome == "pass" and "sandbox without netns,pidns" in r.reason
    assert any("without netns, pidns" in m for m in caplog.messages)


def test_a_broken_supervisor_fails_closed() -> None:
    r = v.run_python("pass", python="/bin/true")  # exits 0 but never reports
    assert r.outcome == "fail" and r.reason.startswith("sandbox failed")


# ---------------------------------------------------------------------------- processes

BOMB = ("import os, sys, time\nn = 0\nfor _ in range(50):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        continue\n    if pid == 0:\n        time.sleep(60)\n"
        "        os._exit(0)\n    n += 1\nsys.exit(f'forked {n}')\n")


@pytest.mark.parametrize(("disable", "layer"), [
    ((), "seccomp"), (("namespaces", "landlock"), "seccomp"),
    (("seccomp", "namespaces"), "nproc"),  # non-root, or root that could become nobody
])
def test_a_fork_bomb_is_contained(disable: tuple[str, ...], layer: str) -> None:
    need(disable, layer)
    r = v.run_python(BOMB, timeout=10, disable=disable)  # bounded at 50 if a layer failed
    assert r.reason == "forked 0"


def test_threads_are_refused_as_processes_are() -> None:
    r = v.run_python("import threading\nthreading.Thread(target=print).start()", timeout=10)
    assert r.outcome == "fail" and "can't start new thread" in r.reason


def _alive_with(marker: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open(f"/proc/{name}/stat", encoding="ascii") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(int(name))
        except (OSError, ValueError):
            continue
    return out


# A child that leaves its session and double-forks: the grandchild execs a sleeper whose command
# line carries a marker the test looks for; the answer exits once the daemon is running.
DAEMON = """import os, sys, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, b"up")
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", MARKER])
    os._exit(0)
os.read(r, 2)
time.sleep(0.3)  # the exec is done
sys.exit("daemon started")
"""


@pytest.mark.parametrize("disable", [("seccomp", "nproc"), ("seccomp", "nproc", "namespaces")],
                         ids=["pid-namespace", "subreaper"])
def test_a_setsid_double_forked_daemon_does_not_outlive_the_check(
        disable: tuple[str, ...]) -> None:
    marker = f"orroute-daemon-{uuid.uuid4().hex}"
    r = v.run_python(DAEMON.replace("MARKER", repr(marker)), timeout=10, disable=disable)
    assert r.reason == "daemon started"  # it did run: the probe reached what it attacks
    deadline = time.monotonic() + 3
    while _alive_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive_with(marker) == []


def test_the_code_cannot_signal_the_process_running_the_check() -> None:
    got: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    try:
        r = v.run_python(f"import os, signal\nos.kill({os.getpid()}, signal.SIGUSR1)")
        time.sleep(0.2)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert got == [] and r.outcome == "fail"


# ---------------------------------------------------------------------------- network


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(0.3)
    yield s
    s.close()


def _connect(port: int) -> str:
    return (f"import socket\ns = socket.socket()\ns.settimeout(2)\n"
            f"s.connect(('127.0.0.1', {port}))\n")


def _accepted(s: socket.socket) -> bool:
    try:
        s.accept()[0].close()
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize(("disable", "layer"), [
    ((), "netns"), (("namespaces",), "seccomp"), (("namespaces", "seccomp"), "landlock-net"),
])
def test_a_connect_to_a_loopback_listener_fails_inside_the_check(
        listener: socket.socket, disable: tuple[str, ...], layer: str) -> None:
    need(disable, layer)
    r = v.run_python(_connect(listener.getsockname()[1]), timeout=10, disable=disable)
    assert r.outcome == "fail"
    assert not _accepted(listener)


def test_with_no_network_layer_the_connect_succeeds(listener: socket.socket) -> None:
    r = v.run_python(_connect(listener.getsockname()[1]), timeout=10, disable=NET_LAYERS)
    assert r.outcome == "pass", r.reason
    assert _accepted(listener)  # the control: the probe reaches the listener when unconfined


# ---------------------------------------------------------------------------- files


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may write to (so only the sandbox can stop a write there)."""
    d = Path(tempfile.mkdtemp(prefix="orroute-sandbox-test-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d)


@pytest.mark.parametrize("disable", [(), ("landlock",)], ids=["landlock", "unconfined"])
def test_writes_outside_the_temp_dir_fail_where_landlock_is_in_force(
        open_dir: Path, disable: tuple[str, ...]) -> None:
    target = open_dir / "escaped"
    code = (f"open('inside.txt', 'w').write('ok')\nassert open('inside.txt').read() == 'ok'\n"
            f"open({str(target)!r}, 'w').write('x')\n")
    confined = "landlock" in layers(*disable)
    if not disable and not confined:
        pytest.skip("landlock not available here")
    r = v.run_python(code, timeout=10, disable=disable)
    assert target.exists() != confined
    assert r.outcome == ("fail" if confined else "pass"), r.reason


def test_the_users_files_and_the_parents_environment_are_out_of_reach(
        open_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need((), "landlock")
    secret = open_dir / "key.txt"
    secret.write_text("sk-or-secret")
    secret.chmod(0o644)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-secret")
    code = ("import os\nassert 'OPENROUTER_API_KEY' not in os.environ\nfound = []\n"
            f"for p in ({str(secret)!r}, '/proc/{os.getpid()}/environ'):\n"
            "    try:\n        found.append(open(p).read())\n    except OSError:\n        pass\n"
            "assert not found, found\n")
    r = v.run_python(code, timeout=10)
    assert r.outcome == "pass", r.reason


def test_numpy_still_imports_with_one_thread() -> None:
    pytest.importorskip("numpy")
    r = v.run_python("import numpy as np\nassert int(np.arange(4).sum()) == 6\n", timeout=20)
    assert r.outcome == "pass", r.reason


def test_the_bootstrap_runs_with_the_given_interpreter() -> None:
    r = v.run_python("import sys\nassert sys.flags.isolated\n", python=sys.executable)
    assert r.outcome == "pass", r.reason


# ---------------------------------------------------------------------------- the report channel
# The verdict trusts one line from the supervisor. Code that reaches the supervisor's stdout (its
# /proc/<pid>/fd/1 when neither Landlock nor a uid change stands in the way) can write a line
# of its own and then kill the supervisor, or flood the pipe the caller reads.

PASS_LINE = '{"layers": [], "missing": [], "status": ["exit", 0], "timed_out": false}'


def fake_supervisor(monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    monkeypatch.setattr(v, "_supervisor_source", lambda: "import os, signal, sys\n" + body)


def test_a_pass_line_from_a_supervisor_that_was_killed_is_a_fail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_supervisor(monkeypatch, f"print({PASS_LINE!r}, flush=True)\n"
                                 "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = v.run_python("raise SystemExit(1)")
    assert r.outcome == "fail" and r.reason.startswith("sandbox failed"), r.reason


def test_a_forged_line_before_the_supervisors_own_is_a_fail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_supervisor(monkeypatch, f"print({PASS_LINE!r})\nprint({PASS_LINE!r})\n")
    r = v.run_python("pass")
    assert r.outcome == "fail" and r.reason.startswith("sandbox failed"), r.reason


def test_a_flooded_report_pipe_is_cut_off_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_supervisor(monkeypatch, "chunk = b'x' * 65536\nwhile True:\n    os.write(1, chunk)\n")
    r = v.run_python("pass", timeout=1)  # the caller holds at most the cap, then kills
    assert r.outcome == "fail" and "report" in r.reason, r.reason


def test_raw_devices_are_out_of_reach_where_landlock_is_in_force() -> None:
    """As root without capabilities (``nocaps``) the code is still uid 0, the owner of root's
    0600 block devices: a read of the raw disk would bypass every file rule. Landlock allows
    only the few character devices Python uses, not all of /dev."""
    need((), "landlock")
    devices = [str(p) for p in Path("/dev").iterdir() if p.is_block_device()]
    if not devices:
        pytest.skip("no block device here")
    code = ("found = []\n"
            f"for p in {devices!r}:\n"
            "    try:\n        open(p, 'rb').close()\n        found.append(p)\n"
            "    except OSError:\n        pass\n"
            "assert not found, found\n"
            "import os\nassert os.urandom(4) and open('/dev/urandom', 'rb').read(4)\n")
    r = v.run_python(code, timeout=10)
    assert r.outcome == "pass", r.reason
    if "nocaps" in layers():  # the control: the same probe does reach a device without Landlock
        r = v.run_python(code, timeout=10, disable=("landlock",))
        assert r.outcome == "fail" and "/dev/" in r.reason, r.reason
