#!/usr/bin/env python3
"""Instructions per call by function, from the callgrind files bench/instructions.py keeps.

`bench/instructions.py --keep DIR` writes one directory per tree and set-up
(`DIR/<tree>-<set-up>/cg.*`, one file per thread). This reads them back: every thread's file
summed, a function counted under its name whatever file its code was inlined from, inclusive
(its own instructions and the calls it makes to other functions) or self, divided by the
measured calls. With two trees (or two set-ups of one tree) it prints both and their
difference, largest first: where a change moved the count (or what the manager adds).

    python3 bench/callgrind_functions.py DIR --setup mawait --trees wt-base,main --calls 300
    python3 bench/callgrind_functions.py DIR --setup mawait --trees main --grep 'Engine::'
    python3 bench/callgrind_functions.py DIR --setup mawait --trees main --callees 'Engine::plan'
    python3 bench/callgrind_functions.py DIR --trees wt-base,main --event I1mr+D1mr+D1mw --self
    python3 bench/callgrind_functions.py DIR --trees main --setup await,mawait --event I1mr

`--event` reads another of the files' events than the instructions (Ir): with `--cache-sim`,
the simulated first-level misses `I1mr`, `D1mr`, `D1mw` (or a sum of them, `I1mr+D1mr+D1mw`),
where a change's code and data footprint shows.

A recursive function's inclusive count holds its inner calls again (callgrind's own caveat);
compare such a function across trees, not against its callers.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

_NAMES = {
    "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >": "string",
    "std::basic_string_view<char, std::char_traits<char> >": "string_view",
}


class Profile:
    """The self and inclusive counts of every function in one set-up's callgrind files."""

    def __init__(self, events: list[str]) -> None:
        self.events = events  # summed, e.g. ["I1mr", "D1mr", "D1mw"]
        self.self_count: collections.Counter[str] = collections.Counter()
        self.inclusive: collections.Counter[str] = collections.Counter()
        self.callees: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    def read(self, path: Path) -> None:
        names: dict[str, str] = {}  # callgrind's "(id) name" compression, per file

        def name_of(text: str) -> str:
            m = re.match(r"\((\d+)\)(?: (.*))?$", text)
            if not m:
                return text
            if m.group(2) is not None:
                names[m.group(1)] = m.group(2)
            return names.get(m.group(1), text)

        fn = callee = ""
        call_line_next = False
        columns: list[int] = [0]  # the events' columns after the position; callgrind's first is Ir
        with path.open(errors="replace") as f:
            for line in f:
                if line.startswith("events:"):
                    present = line.split()[1:]
                    missing = [e for e in self.events if e not in present]
                    if missing:
                        sys.exit(f"{path} has no event {', '.join(missing)} (it has {' '.join(present)})")
                    columns = [present.index(e) for e in self.events]
                elif line.startswith("fn="):
                    fn = name_of(line[3:].rstrip("\n"))
                elif line.startswith("cfn="):
                    callee = name_of(line[4:].rstrip("\n"))
                elif line.startswith("calls="):
                    call_line_next = True
                elif line[:1].isdigit() or line[:1] in "+-*":
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    # a line may leave its trailing zero events out
                    cost = sum(int(parts[1 + c]) for c in columns if 1 + c < len(parts))
                    if call_line_next:
                        call_line_next = False
                        if callee != fn:
                            self.inclusive[fn] += cost
                            self.callees[fn][callee] += cost
                    else:
                        self.self_count[fn] += cost
                        self.inclusive[fn] += cost

    @classmethod
    def of(cls, directory: Path, events: list[str]) -> Profile:
        files = sorted(directory.glob("cg.*"))
        if not files:
            sys.exit(f"no callgrind files (cg.*) in {directory}")
        profile = cls(events)
        for path in files:
            profile.read(path)
        return profile


def short(name: str) -> str:
    for long, brief in _NAMES.items():
        name = name.replace(long, brief)
    return name[:160]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="the directory bench/instructions.py --keep wrote")
    ap.add_argument("--setup", default="mawait",
                    help="the set-up's name (default: mawait), or two with one tree: await,mawait")
    ap.add_argument("--trees", default="wt-base,main",
                    help="one tree, or two to compare (the directory names' first part)")
    ap.add_argument("--calls", type=int, default=300, help="measured calls (instructions.py --requests)")
    ap.add_argument("--self", dest="self_only", action="store_true", help="self counts, not inclusive")
    ap.add_argument("--grep", default=None, help="only functions whose name matches this regex")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--callees", default=None, help="the callees of the functions matching this regex")
    ap.add_argument("--event", default="Ir",
                    help="the event counted (default Ir, instructions), or a sum: I1mr+D1mr+D1mw")
    args = ap.parse_args()

    # two trees of one set-up, or two set-ups of one tree (what the manager adds over the client)
    runs = [f"{tree}-{setup}" for tree in args.trees.split(",") for setup in args.setup.split(",")]
    if len(runs) > 2:
        sys.exit("give two trees or two set-ups, not both")
    events = args.event.split("+")
    profiles = [Profile.of(args.dir / run, events) for run in runs]
    per_call = args.calls

    if args.callees:
        for run, p in zip(runs, profiles):
            for f in (k for k in p.inclusive if re.search(args.callees, k)):
                print(f"[{run}] {p.inclusive[f] / per_call:9.0f} incl {p.self_count[f] / per_call:9.0f} self  {short(f)}")
                for g, v in p.callees[f].most_common(args.top):
                    print(f"    {v / per_call:9.0f}  {short(g)}")
        return

    counts = [p.self_count if args.self_only else p.inclusive for p in profiles]
    names = {k for c in counts for k in c if not args.grep or re.search(args.grep, k)}
    if len(counts) == 1:
        rows = sorted(names, key=lambda k: -counts[0][k])
        for k in rows[:args.top]:
            print(f"{counts[0][k] / per_call:10.0f}  {short(k)}")
        return
    base, branch = counts[0], counts[1]
    print(f"{runs[0]:>10} {runs[1]:>10} {'change':>8}  {args.event} a call ({'self' if args.self_only else 'inclusive'})")
    for k in sorted(names, key=lambda k: -abs(branch[k] - base[k]))[:args.top]:
        print(f"{base[k] / per_call:10.0f} {branch[k] / per_call:10.0f} {(branch[k] - base[k]) / per_call:+8.0f}  {short(k)}")


if __name__ == "__main__":
    main()
