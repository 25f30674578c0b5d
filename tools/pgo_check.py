"""Checks that a profile-guided build (CMake's ORROUTE_PGO=use) compiled the extension from the
training's profile, for scripts/pgo-install.sh: every object compiled with -fprofile-use on that
directory, and a profile there for each object of the extension the training loads.

GCC looks an object's profile up by the object's path under the build directory
(-fprofile-prefix-path), its '/' written '#', and compiles without it, silently, when it is not
there: a build directory moved between the instrumented build and this one, or a training that
never loaded the extension, would give the plain build under the profile-guided build's name.

Usage: python3 tools/pgo_check.py BUILD/compile_commands.json PROFILE_DIR
Prints how many of the core's objects read a profile; exits non-zero when the check fails.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

# the objects of orroute._core and orroute._task every training run executes: their bindings, the
# module's initialisation, the task type
ALWAYS_RUN = ("CMakeFiles/_core.dir/", "CMakeFiles/_task.dir/")
CORE = "CMakeFiles/orroute_core.dir/"


def profile_of(output: str, profile_dir: Path) -> Path:
    """Where GCC reads the profile of the object `output` (a path under the build directory)."""
    return profile_dir / (str(Path(output).with_suffix("")).replace("/", "#") + ".gcda")


def compiled(entries: list[dict[str, str]]) -> dict[str, list[str]]:
    """Each object (its -o, under the build directory) and the arguments that compiled it."""
    objects = {}
    for entry in entries:
        args = shlex.split(entry["command"])
        objects[args[args.index("-o") + 1]] = args
    return objects


def check(entries: list[dict[str, str]], profile_dir: Path) -> str:
    """The summary line of a build whose objects read their profiles; raises ValueError if not."""
    objects = compiled(entries)
    flag = f"-fprofile-use={profile_dir}"
    unprofiled = [o for o, args in objects.items() if flag not in args]
    if unprofiled:
        raise ValueError(f"{len(unprofiled)} objects compiled without {flag}, e.g. {unprofiled[0]}")
    outputs = list(objects)
    missing = [o for o in outputs
               if o.startswith(ALWAYS_RUN) and not profile_of(o, profile_dir).is_file()]
    if missing:
        raise ValueError(f"no profile for {missing[0]} in {profile_dir}: the training did not run it")
    core = [o for o in outputs if o.startswith(CORE)]
    read = sum(profile_of(o, profile_dir).is_file() for o in core)
    if not read:
        raise ValueError(f"none of the core's {len(core)} objects has a profile in {profile_dir}")
    return f"profiles read: {read} of the core's {len(core)} objects, and the bindings'"


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[2])
    entries = json.loads(Path(sys.argv[1]).read_text())
    try:
        print(check(entries, Path(sys.argv[2])))
    except ValueError as e:
        sys.exit(f"pgo_check: {e}")


if __name__ == "__main__":
    main()
