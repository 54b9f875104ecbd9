#!/usr/bin/env python3
"""Every C file against the checked-in .clang-format: one JUnit test case per file.

usage: check_format.py OUT.xml
Exit 1 when a file is not formatted or clang-format fails on it (crash, missing binary), so that
the runner names the step even if the report cannot be written.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from xml.sax.saxutils import escape, quoteattr

DIRS = ("src", "tests", "examples", "bench")


def check(path: str) -> str | None:
    """None when formatted, else why not."""
    try:
        r = subprocess.run(["clang-format", "--dry-run", "-Werror", path], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"clang-format did not run: {e}"
    if r.returncode == 0:
        return None
    if r.returncode < 0 or "-Wclang-format-violations" not in r.stderr:
        return f"clang-format failed (exit {r.returncode}): {r.stderr[:2000]}"
    return f"not clang-formatted: {r.stderr[:2000]}"


def project_files() -> list[str]:
    """The project's C files: in a git checkout, those git tracks or would (not what .gitignore
    leaves out, such as a benchmark's venv under bench/out/); else every one under DIRS."""
    try:
        r = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "-z", "--", *DIRS], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        r = None
    if r is not None and r.returncode == 0:
        return sorted({f for f in r.stdout.split("\0")
                       if f.endswith((".c", ".h")) and os.path.isfile(f)})
    return sorted(f for d in DIRS for f in glob.glob(f"{d}/**/*.[ch]", recursive=True))


def main() -> int:
    files = project_files()
    cases, failed = [], 0
    for f in files:
        why = check(f)
        body = ""
        if why:
            failed += 1
            body = f"<failure message={quoteattr(why.split(':')[0])}>{escape(why)}</failure>"
        cases.append(f"<testcase classname=\"clang-format\" name={quoteattr(f)}>{body}</testcase>")
    with open(sys.argv[1], "w") as out:
        out.write(f'<testsuite name="format" tests="{len(cases)}">{"".join(cases)}</testsuite>\n')
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
