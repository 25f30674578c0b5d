#!/usr/bin/env python3
"""Fails when a static of the C++ core or the bindings has an exit-time destructor.

Threads that run without the GIL (the network loop, the settle worker, a daemon thread inside a
call) go on running while exit() destroys the library's statics: a static such a thread reads
after its destructor ran ends the process (SIGSEGV, or a pure virtual call) instead of a clean
exit. So no static of ours is ever destroyed: orroute::NoDestructor (cpp/orroute/no_destructor.h)
or a pointer made with `new`.

A static with a destructor is registered with ``__cxa_atexit`` by the code that makes it; this
reads every object file of the two libraries (``nm``), and for each call of ``__cxa_atexit``
names the function, the object and the destructor from the relocations (``objdump -r``).

Usage: python3 tools/check_exit_destructors.py BUILD_DIR   (exit 1 and a list when any is found)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TARGETS = ("orroute_core.dir", "_core.dir")
# Statics of the headers of libraries we use, which this check cannot change: pybind11's internals
# (whose manager leaks them by design) and an error text of its holder caster.
ALLOWED = (
    "pybind11::detail::internals_pp_manager<",
    "pybind11::detail::get_local_internals",
    "pybind11::detail::smart_holder_type_caster_support::value_and_holder_helper::",
)
RELOC = re.compile(r"^([0-9a-f]+) (R_X86_64_\w+)\s+(\S+)$")
SECTION = re.compile(r"^RELOCATION RECORDS FOR \[(.+)\]:$")
# objdump -t: address, seven flag characters, section, size, [.hidden] name
SYMBOL = re.compile(r"^([0-9a-f]{16}) (.{7}) (\S+)\s+[0-9a-f]{16}\s+(?:\.hidden\s+)?(\S+)$")
ADDEND = re.compile(r"^(.+?)(?:([-+])0x([0-9a-f]+))?$")


def demangle(names: list[str]) -> list[str]:
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def symbol_table(obj: Path) -> tuple[dict[tuple[str, int], str], dict[str, list[tuple[int, str]]]]:
    """(section, offset) -> the symbol there, and each section's functions by offset."""
    text = subprocess.run(["objdump", "-t", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    at: dict[tuple[str, int], str] = {}
    functions: dict[str, list[tuple[int, str]]] = {}
    for line in text.splitlines():
        m = SYMBOL.match(line)
        if not m:
            continue
        offset, flags, section, name = int(m.group(1), 16), m.group(2), m.group(3), m.group(4)
        at.setdefault((section, offset), name)
        if "F" in flags:
            functions.setdefault(section, []).append((offset, name))
    for fs in functions.values():
        fs.sort()
    return at, functions


def registrations(obj: Path) -> list[tuple[str, str]]:
    """(the function that makes the static, the static and its destructor), demangled, for each
    call of ``__cxa_atexit`` in ``obj``: read from the relocations (no disassembly), the two
    before the call (other than ``__dso_handle``) being the object and its destructor."""
    text = subprocess.run(["objdump", "-r", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    at, functions = symbol_table(obj)
    found: list[tuple[str, list[str]]] = []
    section, recent = "", []
    for line in text.splitlines():
        if (head := SECTION.match(line)) is not None:
            section, recent = head.group(1), []
            continue
        m = RELOC.match(line)
        if not m:
            continue
        offset, value = int(m.group(1), 16), m.group(3)
        target, sign, addend = ADDEND.match(value).groups()
        if target.startswith("__cxa_atexit"):
            fs = [name for start, name in functions.get(section.removeprefix(".rela"), [])
                  if start <= offset]
            found.append((fs[-1] if fs else section, [r for r in recent[-2:]
                                                      if not r.startswith("__dso_handle")]))
            recent = []
            continue
        if target.startswith("."):  # a section: the symbol at the offset (a RIP-relative
            # operand's addend is 4 short of it)
            off = int(addend or "0", 16) * (-1 if sign == "-" else 1)
            target = at.get((target, off), at.get((target, off + 4), target))
        recent.append(target)
    names = demangle([f for f, _ in found])
    return [(names[i], " / ".join(demangle(objs)) if objs else "(unnamed)")
            for i, (_, objs) in enumerate(found)]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    build = Path(sys.argv[1]) / "CMakeFiles"
    objs = sorted(o for t in TARGETS for o in (build / t).rglob("*.o"))
    if not objs:
        print(f"no object files under {build}/{{{','.join(TARGETS)}}}", file=sys.stderr)
        return 2
    bad: list[str] = []
    for obj in objs:
        undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True,
                                   check=True).stdout
        if "__cxa_atexit" not in undefined:
            continue
        for function, what in registrations(obj):
            if not any(a in f"{function}: {what}" for a in ALLOWED):
                bad.append(f"  {obj.relative_to(build)}: in {function}: {what}")
    if bad:
        print("statics with exit-time destructors (make them orroute::NoDestructor):")
        print("\n".join(bad))
        return 1
    print(f"no exit-time destructors in {len(objs)} object files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
