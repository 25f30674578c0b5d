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


def nobody_python() -> str | None:
    """An interpreter with which a root caller's check runs as 65534 (the ``uid`` layer)."""
    if os.geteuid() != 0:
        return None
    for exe in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(exe) and "uid" in v.sandbox_report(exe)["layers"]:
            return exe
    return None


@pytest.mark.parametrize(("disable", "layer"), [
    ((), "landlock"), (("landlock",), "readonly"), (("landlock", "mounts"), None),
], ids=["landlock", "readonly", "unconfined"])
def test_writes_outside_the_temp_dir_fail_where_landlock_or_readonly_is_in_force(
        open_dir: Path, disable: tuple[str, ...], layer: str | None) -> None:
    target = open_dir / "escaped"
    code = (f"open('inside.txt', 'w').write('ok')\nassert open('inside.txt').read() == 'ok'\n"
            f"open({str(target)!r}, 'w').write('x')\n")
    python = None
    if layer is None:  # the control: only a uid change may run the code unconfined
        python = nobody_python()
        if python is None:
            pytest.skip("an unconfined run needs a root caller whose Python 65534 can run")
    else:
        need(disable, layer)
    r = v.run_python(code, timeout=10, disable=disable, python=python)
    assert target.exists() == (layer is None)
    assert r.outcome == ("pass" if layer is None else "fail"), r.reason


def test_without_landlock_the_callers_own_files_and_dev_shm_are_read_only(
        open_dir: Path) -> None:
    """No-capability root (``nocaps``) is still uid 0 and a non-root code is the caller's own
    uid: both own the caller's files. Without Landlock the read-only mount tree stops writes."""
    if "readonly" not in (have := layers("landlock")) and "uid" in have:
        pytest.skip("without Landlock and a mount namespace 65534 may write /dev/shm (documented)")
    mine = open_dir / "mine.txt"
    mine.write_text("keep")
    mine.chmod(0o644)
    shm = Path("/dev/shm") / f"orroute-test-{uuid.uuid4().hex}"
    code = ("import sys\nwrote = []\n"
            f"for p in ({str(mine)!r}, {str(shm)!r}):\n"
            "    try:\n        open(p, 'w').write('x')\n        wrote.append(p)\n"
            "    except OSError:\n        pass\n"
            "sys.exit(f'wrote {wrote}')\n")
    try:
        r = v.run_python(code, timeout=10, disable=("landlock",))
        assert r.reason == "wrote []" or r.reason.startswith("sandbox failed: nothing confines")
        assert mine.read_text() == "keep" and not shm.exists()
    finally:
        shm.unlink(missing_ok=True)


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


# ---------------------------------------------------------------------------- the caller, as non-root
# A non-root caller's check runs under the caller's own uid: its /proc/<pid>/environ (API keys)
# and /proc/<pid>/mem are the code's to open unless a user namespace, a private /proc or Landlock
# stands in between; with none of them (and no read-only mount tree) the check refuses to run.

ENV_PROBE = """import json, os, sys
import orroute.verify as v
code = ("import sys\\ntry:\\n"
        f"    text = open('/proc/{os.getpid()}/environ').read()\\n"
        "except OSError:\\n    sys.exit('blocked')\\nsys.exit('read ' + text)\\n")
disable = tuple(filter(None, sys.argv[1].split(',')))
r = v.run_python(code, timeout=10, disable=disable)
print(json.dumps({"reason": r.reason, "layers": v.sandbox_report(disable=disable)["layers"]}))
"""


def this_tree() -> str:
    """The directory the orroute under test is imported from (for helper interpreters)."""
    return str(Path(v.__file__).resolve().parent.parent)


_READABLE_COPY: list[str] = []


def tree_others_can_read() -> str:
    """This tree's directory when every other user can reach it, else (an installed package
    under root's home, as in CI) a world-readable copy of the package, made once per session."""
    here = Path(this_tree())
    if all(p.stat().st_mode & 0o005 == 0o005 for p in (here / "orroute", here, *here.parents)):
        return str(here)
    if not _READABLE_COPY:
        top = tempfile.mkdtemp(prefix="orroute-readable-")
        shutil.copytree(here / "orroute", Path(top) / "orroute",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for d, _dirs, files in os.walk(top):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o755 if f.endswith(".so") else 0o644)
        import atexit
        atexit.register(shutil.rmtree, top, ignore_errors=True)
        _READABLE_COPY.append(top)
    return _READABLE_COPY[0]


def run_as_non_root(source: str, *args: str, env: dict[str, str]) -> str:
    """``source`` run by a non-root Python that can import this orroute: uid 4242, gid 4343 (not
    65534, the id an unmapped one reads as in a new user namespace) when we are root (needs a
    Python and a tree others can read), else ourselves."""
    import subprocess

    python_dir = this_tree()
    kw: dict[str, object] = {}
    exe = sys.executable
    if os.geteuid() == 0:
        exe = nobody_python() or ""
        if not exe:
            pytest.skip("no Python that 65534 can run")
        kw = {"user": 4242, "group": 4343, "extra_groups": []}
        python_dir = tree_others_can_read()
    out = subprocess.run([exe, "-c", source, *args], capture_output=True, text=True, timeout=60,
                         cwd="/", env={"PYTHONPATH": python_dir, "PATH": "/usr/bin:/bin", **env},
                         check=False, **kw)  # type: ignore[call-overload]
    if "No module named" in out.stderr or "Permission denied" in out.stderr:
        pytest.skip(f"uid 4242 cannot import this tree: {out.stderr.strip()[-120:]}")
    assert out.returncode == 0, out.stderr[-400:]
    return str(out.stdout)


@pytest.mark.parametrize("disable", [(), ("namespaces", "landlock"),
                                     ("namespaces", "mounts", "landlock")],
                         ids=["every-layer", "mount-namespace", "nothing"])
def test_a_non_root_callers_environment_is_out_of_reach(disable: tuple[str, ...]) -> None:
    import json

    secret = f"sk-or-{uuid.uuid4().hex}"
    out = run_as_non_root(ENV_PROBE, ",".join(disable), env={"OPENROUTER_API_KEY": secret})
    assert secret not in out
    got = json.loads(out.strip().splitlines()[-1])
    if "mounts" in disable:  # nothing confines the code: it must not run at all
        assert got["reason"].startswith("sandbox failed: nothing confines"), got
    elif not got["layers"]:
        pytest.fail(f"the sandbox did not start for a non-root caller: {got}")
    elif "readonly" in got["layers"]:  # its user namespace: no ptrace-access to the caller
        assert got["reason"] == "blocked", got
    else:
        pytest.skip(f"no user namespace here for a non-root check: {got}")


# ---------------------------------------------------------------------------- resources


FILL_DISK = ("import sys\nfor i in range(12):\n    open(f'f{i}', 'wb').write(b'x' * (8 << 20))\n"
             "sys.exit('wrote 96 MB')\n")
MANY_FILES = ("import sys\nfor i in range(6000):\n    open(f'f{i}', 'wb').close()\n"
              "sys.exit('made 6000 files')\n")


@pytest.mark.parametrize("code", [FILL_DISK, MANY_FILES], ids=["bytes", "entries"])
@pytest.mark.parametrize("disable", [(), ("mounts",)], ids=["tmpfs", "diskwatch"])
def test_the_work_dir_is_bounded_in_total_not_only_per_file(
        code: str, disable: tuple[str, ...]) -> None:
    """RLIMIT_FSIZE bounds one file; the tmpfs (or, without a mount namespace, the watchdog)
    bounds them all."""
    r = v.run_python(code, timeout=20, disable=disable)
    assert r.outcome == "fail"
    assert ("No space left on device" in r.reason
            or r.reason.startswith("wrote more than its work dir may hold")
            or r.reason.startswith("sandbox failed: nothing confines")), r.reason


def test_open_files_are_limited() -> None:
    r = v.run_python("fs = [open('/dev/null') for _ in range(200)]\n", timeout=10)
    assert r.outcome == "fail" and "Too many open files" in r.reason, r.reason


def test_sysv_shared_memory_does_not_outlive_the_check() -> None:
    """An IPC object made by the code would persist after it (and reach the host's others)."""
    import ctypes

    need((), "netns")  # the namespaces are there: so is the IPC one
    key = 0x0E0E0000 | (os.getpid() & 0xFFFF)
    code = ("import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"sid = libc.shmget({key}, 4096, 0o1000 | 0o666)\n"
            "sys.exit(f'made {sid}' if sid >= 0 else f'refused {ctypes.get_errno()}')\n")
    r = v.run_python(code, timeout=10)
    assert r.reason.startswith("made "), r.reason  # it did make one, in its own namespace
    libc = ctypes.CDLL(None, use_errno=True)
    left = libc.shmget(key, 0, 0)
    if left >= 0:
        libc.shmctl(left, 0, None)  # IPC_RMID
    assert left == -1


def test_proc_shows_only_the_codes_own_processes() -> None:
    have = layers("landlock")
    if "pidns" not in have or ("readonly" in have and "procfs" not in have):
        pytest.skip("no PID namespace, or a /proc a user namespace may not remount (container)")
    code = ("import os, sys\n"
            "sys.exit(str(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())))\n")
    r = v.run_python(code, timeout=10, disable=("landlock",))
    assert r.reason == "[1]"  # itself, PID 1 of its namespace; not the caller, not the host


KEYRING_PROBE = """import ctypes, sys
import orroute.verify as v
libc = ctypes.CDLL(None, use_errno=True)
assert libc.syscall(250, 1, None) >= 0  # KEYCTL_JOIN_SESSION_KEYRING: this process only
serial = libc.syscall(248, b"user", b"orroute-test", b"SECRET", len(b"SECRET"), -3)
assert serial > 0, ctypes.get_errno()
code = ("import ctypes, sys\\nlibc = ctypes.CDLL(None, use_errno=True)\\n"
        "buf = ctypes.create_string_buffer(64)\\n"
        f"n = libc.syscall(250, 11, {serial}, buf, 64)\\n"  # KEYCTL_READ
        "sys.exit('read ' + buf.raw[:n].decode() if n > 0 else 'refused')\\n")
disable = tuple(filter(None, sys.argv[1].split(',')))
print(v.run_python(code, timeout=10, disable=disable, python=sys.argv[2] or None).reason)
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 syscall numbers")
@pytest.mark.parametrize(("disable", "layer"), [((), "seccomp"), (("seccomp",), "keyring")])
def test_the_callers_session_keyring_is_out_of_reach(
        disable: tuple[str, ...], layer: str) -> None:
    """A key the caller's session holds (possessed: readable whatever the uid) is not the
    code's: seccomp refuses keyctl; without it, the new session keyring drops possession (as
    65534, the key's owner bits do not apply either)."""
    import subprocess

    python = "" if layer == "seccomp" else nobody_python()
    if python is None:
        pytest.skip("the keyring layer alone is tested as 65534 (root with a Python it can run)")
    secret = f"SECRET-{uuid.uuid4().hex}"
    out = subprocess.run([sys.executable, "-c", KEYRING_PROBE.replace("SECRET", secret),
                          ",".join(disable), python], capture_output=True, text=True,
                         timeout=60, check=False, env=dict(os.environ, PYTHONPATH=this_tree()))
    if "AssertionError" in out.stderr:
        pytest.skip(f"no keyrings here: {out.stderr.strip()[-120:]}")
    assert out.stdout.strip() == "refused", out.stdout + out.stderr[-300:]


def test_a_stopped_code_still_times_out() -> None:
    """SIGSTOP to itself (outside a PID namespace, where PID 1 ignores it) stops CPU time, not
    the wall clock."""
    t = time.monotonic()
    r = v.run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n", timeout=1,
                     disable=("namespaces",))
    assert r.reason == "timed out after 1 s" and time.monotonic() - t < 8


def test_memory_files_outside_the_address_space_limit_are_refused() -> None:
    """A memfd's pages are not in RLIMIT_AS and in no tmpfs: 64 of them at 16 MB would be 1 GB
    (the bound that remains without seccomp)."""
    need((), "seccomp")
    code = ("import os, sys\nfd = os.memfd_create('x')\nos.write(fd, b'x' * (1 << 20))\n"
            "sys.exit('made one')\n")
    r = v.run_python(code, timeout=10)
    assert r.outcome == "fail" and "Operation not permitted" in r.reason, r.reason


ABSTRACT = ("import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(2)\n"
            "s.connect(NAME)\n")


@pytest.mark.parametrize(("disable", "reaches"), [
    (("seccomp", "landlock"), False), (("seccomp", "landlock", "namespaces"), True),
], ids=["netns", "control"])
def test_abstract_unix_sockets_of_the_host_are_out_of_reach(
        disable: tuple[str, ...], reaches: bool) -> None:
    """Abstract unix socket names live in the network namespace (seccomp's socket() refusal and
    Landlock's scope stop them too; switched off here to show the namespace alone does)."""
    if reaches:
        need(disable, "readonly")  # the control must run, which needs something confining files
    else:
        need(disable, "netns")
    name = f"\0orroute-test-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX)
    s.bind(name)
    s.listen(1)
    s.settimeout(0.3)
    try:
        r = v.run_python(ABSTRACT.replace("NAME", repr(name)), timeout=10, disable=disable)
        assert _accepted(s) == reaches
        assert r.outcome == ("pass" if reaches else "fail"), r.reason
    finally:
        s.close()


def test_the_code_inherits_no_descriptor_but_stdin_stdout_and_its_stderr_file() -> None:
    """Neither the supervisor's report pipe nor its liveness pipe (nor anything of the caller's)
    reaches the code; stdin and stdout are /dev/null."""
    code = ("import os, sys\nfds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n"
            "links = [os.readlink(f'/proc/self/fd/{f}') for f in (0, 1)]\n"
            "sys.exit(f'{fds[:3]} {len(fds)} {links}')\n")
    r = v.run_python(code, timeout=10)
    assert r.reason == "[0, 1, 2] 4 ['/dev/null', '/dev/null']", r.reason  # 4: the listing's own


def test_roots_secrets_are_hidden_from_a_no_capability_root_code() -> None:
    """``nocaps`` root is still uid 0, the owner of /etc/shadow (0640) and the host's keys:
    Landlock's /etc read rule would let it read them; its mount namespace covers them."""
    have = layers()
    if "nocaps" not in have:
        pytest.skip("only a no-capability root code owns root's secret files")
    if "netns" not in have:
        pytest.skip("no namespaces here (a container): no mount namespace to cover them")
    present = [p for p in ("/etc/shadow", "/etc/gshadow") if os.path.exists(p)]
    if not present:
        pytest.skip("no /etc/shadow here")
    code = ("import sys\nfound = []\n"
            f"for p in {present!r}:\n"
            "    try:\n        found.append(len(open(p).read()))\n    except OSError:\n"
            "        pass\n"
            "sys.exit(f'read {found}')\n")
    r = v.run_python(code, timeout=10)
    assert r.reason == f"read {[0] * len(present)}", r.reason  # /dev/null: empty


@pytest.mark.parametrize("early_exit", ["import sys\nsys.exit(0)", "import os\nos._exit(0)",
                                        "raise SystemExit", "exit()",
                                        "if __name__ == '__main__':\n    raise SystemExit(None)"])
def test_an_answer_that_exits_before_the_tests_run_fails(early_exit: str) -> None:
    # Exit status 0 alone is not a pass: the tests after the answer must have run to the end.
    check = v.code("assert answer() == 42")
    r = check(v.Answer(prompt="", content=f"```python\ndef answer():\n    return 41\n{early_exit}\n```"))
    assert r.outcome == "fail" and "before" in r.reason, r.reason
    ok = check(v.Answer(prompt="", content="```python\ndef answer():\n    return 42\n```"))
    assert ok.outcome == "pass", ok.reason
