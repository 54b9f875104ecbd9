#!/usr/bin/env python3
"""The layers of src/ (docs/architecture.md): no file includes a header of a layer above it.

usage: layering.py SRC_DIR

Bottom up: common; sources and core (the sampling engine); lib (the public client API) and
energyd (the daemon, with its groups attribution/, carbon/, record/); cli on top. Each layer
names the layers whose headers it may include. A header name must be unique across src/ (the
build puts every layer's folder on the include path). Exit 1 with one line per violation.
"""
from __future__ import annotations

import pathlib
import re
import sys

ALLOWED = {
    "common": {"common"},
    "sources": {"common", "sources"},
    "core": {"common", "sources", "core"},
    "lib": {"common", "lib"},
    "energyd": {"common", "sources", "core", "lib", "energyd"},
    # The CLI samples in-process through the engine (core, and the sensor interface it is
    # built on) and talks to energyd through libenergy.
    "cli": {"common", "sources", "core", "lib", "cli"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(src: pathlib.Path, path: pathlib.Path) -> str:
    return path.relative_to(src).parts[0]


def main() -> int:
    src = pathlib.Path(sys.argv[1]).resolve()
    headers: dict[str, pathlib.Path] = {}
    problems = []
    for h in sorted(src.rglob("*.h")):
        if h.name in headers:
            problems.append(f"{h.relative_to(src)}: header name also in "
                            f"{headers[h.name].relative_to(src)}")
        headers[h.name] = h
    for layer in {layer_of(src, p) for p in src.rglob("*.[ch]")} - set(ALLOWED):
        problems.append(f"src/{layer}: a folder no layer rule names (add it to ALLOWED)")
    for f in sorted(src.rglob("*.[ch]")):
        mine = layer_of(src, f)
        for name in INCLUDE.findall(f.read_text()):
            target = headers.get(pathlib.PurePath(name).name)
            if target is None:
                continue
            theirs = layer_of(src, target)
            if theirs not in ALLOWED.get(mine, set()):
                problems.append(f"src/{f.relative_to(src)}: includes {name} "
                                f"(src/{target.relative_to(src)}), a layer above {mine}")
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
