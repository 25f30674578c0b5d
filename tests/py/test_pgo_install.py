"""The profile-guided install (scripts/install.sh -> scripts/pgo-install.sh) ends with
tools/pgo_check.py, which fails the install over to the plain build when the extension was not
compiled from the training's profile: GCC itself compiles on without a profile it does not find
(-fprofile-use with CMake's -Wno-missing-profile), so without this check a change to the build
directory's layout, the flags or the training would leave users a plain build, silently.

These tests check the checker against GCC's own naming of profiles (a tiny program instrumented,
run and compiled again) and the project's CMake use configuration (configured, not built)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pgo_check", ROOT / "tools" / "pgo_check.py")
assert _spec is not None and _spec.loader is not None
pgo_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pgo_check)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="GCC's profiles")

# objects as CMake names them under its build directory: the bindings, two of the core's
BINDINGS = "CMakeFiles/_core.dir/cpp/bindings/module.c.o"
CORE_RUN = "CMakeFiles/orroute_core.dir/cpp/orroute/run.c.o"
CORE_NOT_LINKED = "CMakeFiles/orroute_core.dir/cpp/orroute/unused.c.o"
SOURCES = {BINDINGS: "int run(int);\nint main(void) { return run(0); }\n",
           CORE_RUN: "int run(int x) { return x > 1 ? 1 : 0; }\n",
           CORE_NOT_LINKED: "int unused(int x) { return x * 3; }\n"}


def _compile(build: Path, obj: str, flags: list[str]) -> list[str]:
    source = build.parent / "src" / Path(obj).with_suffix("").name
    source.parent.mkdir(exist_ok=True)
    source.write_text(SOURCES[obj])
    (build / obj).parent.mkdir(parents=True, exist_ok=True)
    args = ["gcc", "-O2", *flags, f"-fprofile-prefix-path={build}", "-o", obj, "-c", str(source)]
    subprocess.run(args, cwd=build, check=True, capture_output=True)
    return args


def _trained(tmp_path: Path) -> tuple[Path, Path]:
    """A build directory whose program ran instrumented (its profile written), then was compiled
    again from the profile as the use build does; returns it and the profile directory."""
    build, profile = tmp_path / "build", tmp_path / "profile"
    build.mkdir()
    for obj in SOURCES:
        _compile(build, obj, [f"-fprofile-generate={profile}"])
    subprocess.run(["gcc", f"-fprofile-generate={profile}", BINDINGS, CORE_RUN, "-o", "program"],
                   cwd=build, check=True)
    subprocess.run([str(build / "program")], check=True)
    return build, profile


def _use_build(build: Path, profile: Path, flags: list[str]) -> list[dict[str, str]]:
    """The objects compiled again (with `flags`), as compile_commands.json lists them."""
    return [{"directory": str(build), "file": obj,
             "command": " ".join(_compile(build, obj, flags))} for obj in SOURCES]


def test_a_use_build_reads_the_profile_the_check_finds(tmp_path: Path) -> None:
    build, profile = _trained(tmp_path)
    # as CMake's use build compiles them: the object the program did not link has no profile
    commands = _use_build(build, profile, [f"-fprofile-use={profile}", "-Wno-missing-profile"])
    for obj in (BINDINGS, CORE_RUN):  # GCC finds the others' (an error if it did not)
        _compile(build, obj, [f"-fprofile-use={profile}", "-Werror=missing-profile"])
    assert pgo_check.check(commands, profile) == (
        "profiles read: 1 of the core's 2 objects, and the bindings'")


def test_a_build_without_the_profile_is_refused(tmp_path: Path) -> None:
    build, profile = _trained(tmp_path)
    with pytest.raises(ValueError, match="3 objects compiled without -fprofile-use"):
        pgo_check.check(_use_build(build, profile, []), profile)
    # compiled with the flag, but the training never ran the extension: no profile
    commands = _use_build(build, profile, [f"-fprofile-use={profile}", "-Wno-missing-profile"])
    shutil.rmtree(profile)
    profile.mkdir()
    with pytest.raises(ValueError, match=f"no profile for {BINDINGS}"):
        pgo_check.check(commands, profile)


def test_the_profile_of_an_object_moved_in_the_build_directory_is_not_found(
        tmp_path: Path) -> None:
    """A layout that changed between the two builds (another object path) reads no profile."""
    build, profile = _trained(tmp_path)
    for gcda in profile.glob("*orroute_core*"):
        gcda.rename(gcda.with_name(gcda.name.replace("orroute_core.dir", "core.dir")))
    commands = _use_build(build, profile, [f"-fprofile-use={profile}", "-Wno-missing-profile"])
    with pytest.raises(ValueError, match="none of the core's 2 objects has a profile"):
        pgo_check.check(commands, profile)


NEEDS_CMAKE = pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("ninja") is None
    or importlib.util.find_spec("pybind11") is None,
    reason="a configuration of the project: CMake, Ninja, pybind11")


def _configure(build: Path, *options: str, check: bool) -> subprocess.CompletedProcess[str]:
    """CMake's configuration of the project into `build` with `options`, as pgo-install.sh's."""
    pybind11 = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], check=True,
                              capture_output=True, text=True).stdout.strip()
    return subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja", *options,
                           f"-Dpybind11_DIR={pybind11}", f"-DPython_EXECUTABLE={sys.executable}"],
                          capture_output=True, text=True, check=check)


@NEEDS_CMAKE
def test_the_projects_use_build_compiles_every_object_with_the_profile(tmp_path: Path) -> None:
    """CMake's ORROUTE_PGO=use puts -fprofile-use on every object pgo-install.sh builds; with no
    training run the check names the bindings' missing profile, not a missing flag."""
    build, profile = tmp_path / "build", tmp_path / "profile"
    profile.mkdir()
    _configure(build, "-DCMAKE_BUILD_TYPE=Release", "-DORROUTE_PGO=use",
               f"-DORROUTE_PGO_DIR={profile}", check=True)
    commands = json.loads((build / "compile_commands.json").read_text())
    with pytest.raises(ValueError, match="no profile for CMakeFiles/_(core|task).dir/"):
        pgo_check.check(commands, profile)


@NEEDS_CMAKE
def test_the_project_refuses_a_profile_guided_build_under_clang(tmp_path: Path) -> None:
    """Clang's profiles are another flow (-fprofile-instr-generate, llvm-profdata merge), not
    wired: configured under Clang, ORROUTE_PGO fails the instrumented build's first step, and
    scripts/install.sh installs the plain build. Clang is g++ here, identifying itself as Clang
    14 (Debian 12's) to CMake's compiler identification."""
    clang = tmp_path / "clang++"
    clang.write_text("#!/bin/sh\nexec g++ -D__clang__=1 -D__clang_major__=14 -D__clang_minor__=0 "
                     "-D__clang_patchlevel__=6 \"$@\"\n")
    clang.chmod(0o755)
    done = _configure(tmp_path / "build", f"-DCMAKE_CXX_COMPILER={clang}", "-DORROUTE_PGO=generate",
                      f"-DORROUTE_PGO_DIR={tmp_path / 'profile'}", check=False)
    assert "The CXX compiler identification is Clang 14" in done.stdout
    assert done.returncode != 0
    assert "ORROUTE_PGO needs GCC" in done.stderr
