#!/usr/bin/env python3
"""The layers of src/ (docs/architecture.md): no file includes a header of a layer above it,
and no C function is longer than FUNCTION_LINES_MAX lines unless the comment above it says
why (a line with "longer than 120 lines:").

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
FUNCTION_LINES_MAX = 120
WHY_LONG = "longer than 120 lines:"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(src: pathlib.Path, path: pathlib.Path) -> str:
    return path.relative_to(src).parts[0]


def long_functions(path: pathlib.Path) -> list[str]:
    """Functions (a "{" and a "}" alone at the start of a line, clang-format's style) longer than
    FUNCTION_LINES_MAX lines from signature to closing brace, without the comment that says why."""
    lines = path.read_text().split("\n")
    found = []
    i = 0
    while i < len(lines):
        if lines[i] != "{":
            i += 1
            continue
        start = i - 1  # the signature may span lines: back to the line after a blank/comment
        while start > 0 and lines[start - 1].strip() and not lines[start - 1].startswith(
                ("}", "#", "/*", " *", "//")) and not lines[start - 1].rstrip().endswith(";"):
            start -= 1
        end = i
        while end < len(lines) and lines[end] != "}":
            end += 1
        n = end - start + 1
        above = "\n".join(lines[max(0, start - 12):start])
        if n > FUNCTION_LINES_MAX and WHY_LONG not in above:
            found.append(f"{path}:{start + 1}: {lines[start].strip()[:60]}... is {n} lines "
                         f"(at most {FUNCTION_LINES_MAX}, or a comment '{WHY_LONG} ...')")
        i = end + 1
    return found


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
    for f in sorted(src.rglob("*.c")):
        problems += long_functions(f)
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
