"""scripts/pgo-install.sh, the profile-guided install, run with a fake `python3` first on PATH:
its pip builds a wheel that says which build it is (instrumented or profile-guided) and installs
one where it is told (the environment, or the --target directory the training imports from),
the training and the check succeed or fail as a test asks. What is checked is what the script
leaves installed when it completes, fails or is interrupted: never the instrumented build."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = r'''
import os, sys, time
from pathlib import Path

state = Path(os.environ["FAKE_STATE"])
args = sys.argv[1:]
with (state / "calls").open("a") as calls:
    calls.write(" ".join(args) + "\n")


def value(flag):
    return args[args.index(flag) + 1] if flag in args else None


def settings():
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-C")


if args[:3] == ["-m", "pip", "wheel"]:
    mode = settings()["cmake.define.ORROUTE_PGO"]
    if os.environ.get("FAKE_BUILD") == mode:
        sys.exit("CMake Error: ORROUTE_PGO needs GCC and ORROUTE_PGO_DIR")
    build = Path(settings()["build-dir"].replace("{wheel_tag}", "py3-none-any"))
    build.mkdir(parents=True, exist_ok=True)
    (build / "compile_commands.json").write_text("[]")
    Path(value("-w")).mkdir(parents=True, exist_ok=True)
    (Path(value("-w")) / "orroute-0.1.0-py3-none-any.whl").write_text(mode)
elif args[:3] == ["-m", "pip", "install"]:
    spec = args[-1].split("[")[0]
    where = Path(value("--target")) / "orroute" if "--target" in args else state / "installed"
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(Path(spec).read_text() if spec.endswith(".whl") else "plain")
elif args[:1] == ["tools/pgo_train.py"]:
    paths = [Path(p) for p in os.environ.get("PYTHONPATH", "").split(":") if p]
    trained = next((p / "orroute" for p in paths if (p / "orroute").exists()), state / "installed")
    (state / "trained").write_text(trained.read_text())
    if os.environ.get("FAKE_TRAINING") == "hang":
        (state / "training").write_text("")
        time.sleep(120)
elif args[:1] == ["tools/pgo_check.py"]:
    if os.environ.get("FAKE_CHECK") == "fail":
        sys.exit("no profile for CMakeFiles/_core.dir/cpp/bindings/module.cpp.o")
    print("profiles read: 120 of the core's 122 objects, and the bindings'")
else:
    sys.exit(f"fake python3: unexpected {args}")
'''


def _checkout(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A tree with the script, a fake python3 on PATH, and 'previous' installed."""
    tree, bin_dir, state = tmp_path / "tree", tmp_path / "bin", tmp_path / "state"
    for d in (tree / "scripts", bin_dir, state):
        d.mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "pgo-install.sh", tree / "scripts")
    fake = bin_dir / "python3"
    fake.write_text(f"#!{sys.executable}\n{FAKE_PYTHON}")
    fake.chmod(0o755)
    (state / "installed").write_text("previous")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_STATE": str(state), "HOME": str(tmp_path)}
    return tree, state, env


def _run(tree: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(tree / "scripts" / "pgo-install.sh"), "[analysis]"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_checked_profile_guided_build_is_installed_and_the_instrumented_one_only_trained(
        tmp_path: Path) -> None:
    tree, state, env = _checkout(tmp_path)
    done = _run(tree, env)
    assert done.returncode == 0, done.stderr
    assert (state / "trained").read_text() == "generate"  # from build/pgo/site
    assert (state / "installed").read_text() == "use"
    assert "installed the profile-guided build (profiles read: 120 of the core's" in done.stdout


def test_a_failed_step_installs_nothing(tmp_path: Path) -> None:
    """The instrumented build refused (Clang, a GCC without profile support), the use build
    failing, or its objects without their profiles: scripts/install.sh installs the plain
    build after it."""
    tree, state, env = _checkout(tmp_path)
    for variable, value, step in (
            ("FAKE_BUILD", "generate", "1/3 building the instrumented core"),
            ("FAKE_BUILD", "use", "3/3 building the core from the profile"),
            ("FAKE_CHECK", "fail", "3/3 checking the objects read their profiles")):
        done = _run(tree, {**env, variable: value})
        assert done.returncode == 1
        assert f"{step} failed (its output:" in done.stderr
        assert (state / "installed").read_text() == "previous"


def test_an_install_interrupted_in_the_training_leaves_the_orroute_installed_before(
        tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole foreground process group: the script and the
    training in it. SIGINT's default action is set in the child, as a suite run in the
    background inherits it ignored."""
    tree, state, env = _checkout(tmp_path)
    with_sigint = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execvp('bash', ['bash', sys.argv[1]])")
    script = subprocess.Popen(
        [sys.executable, "-c", with_sigint, str(tree / "scripts" / "pgo-install.sh")],
        env=dict(env, FAKE_TRAINING="hang"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (state / "training").exists():
            assert script.poll() is None, "the script ended before its training"
            assert time.monotonic() < deadline, "the training never started"
            time.sleep(0.05)
        os.killpg(script.pid, signal.SIGINT)
        assert script.wait(timeout=60) != 0
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
    assert (state / "trained").read_text() == "generate"
    assert (state / "installed").read_text() == "previous"
