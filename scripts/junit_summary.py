#!/usr/bin/env python3
"""The test runner's bookkeeping (see docs/testing.md, "What counts as a failure").

  junit_summary.py summary RUN_DIR
      Read RUN_DIR/suites.tsv (one line per suite run by scripts/suites.sh: name, report, exit
      code, start time) and RUN_DIR/steps-failed.txt (steps without a report, e.g. the C build);
      print skipped tests with their reasons, every failure by name (with what it said: its
      message, what it expected and received, where), then the closing line
      'N passed, N failed[, N skipped]'. Exit 1 when anything failed or nothing passed.

  junit_summary.py meson TESTLOG.json OUT.xml [--since EPOCH]
      Turn meson's per-test log into JUnit XML: one test case per test binary (failed when the
      binary failed, crashed, timed out or printed a sanitizer report), plus the TAP sub-results
      it printed. A testlog older than EPOCH (from an earlier run) is refused.

  junit_summary.py sanitizer-logs DIR OUT.xml
      One test case per sanitizer report file under DIR (ASAN_OPTIONS=log_path=...), each a
      failure; a single passing case when there is none.
"""
from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

# What a sanitizer prints when it finds something (ASan, LSan, UBSan, TSan, MSan).
SANITIZER_REPORT = re.compile(r"ERROR: \w*Sanitizer|runtime error:|SUMMARY: \w*Sanitizer")
TAP_LINE = re.compile(r"^(not ok|ok)\b\s*\d*\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$",
                      re.IGNORECASE)
MESON_PASSING = {"OK", "EXPECTEDFAIL", "SKIP"}
# File times come from the kernel's coarse clock, a few ms behind `date`: a report written right
# after its suite started may look a little older. A stale one (a copy from an earlier run or
# build directory) is older by far more.
MTIME_SLACK_S = 1.0
# What a failure said, shown under its name in the summary (the end of a CI log is often all
# that one gets to see): at most DETAIL_LINES lines of at most DETAIL_CHARS characters.
DETAIL_LINES = 5
DETAIL_CHARS = 240
# The lines of a failure's text that say what was looked at, wanted and found: Playwright's
# `Locator:`, `Expected:`/`Expected string:`, `Received:`/`Received pattern:` (the first of each).
DETAIL_KEYS = [re.compile(rf"^\s*{key}( \w+)?:") for key in ("Locator", "Expected", "Received")]
# Where it failed: Playwright's `at FILE:LINE:COL`, pytest's `FILE:LINE: SomeError`.
WHERE = re.compile(r"^\s*at (\S+:\d+:\d+)\s*$|^(\S+\.py:\d+): \w+")


def case_xml(classname: str, name: str, failure: str | None = None,
             skipped: str | None = None, text: str = "") -> str:
    body = ""
    if failure is not None:
        body = f"<failure message={quoteattr(failure)}>{escape(text[:6000])}</failure>"
    elif skipped is not None:
        body = f"<skipped message={quoteattr(skipped)}/>"
    return f"<testcase classname={quoteattr(classname)} name={quoteattr(name)}>{body}</testcase>"


def write_suite(path: str, name: str, cases: list[str]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name={quoteattr(name)} '
                f'tests="{len(cases)}">{"".join(cases)}</testsuite>\n')
    os.replace(tmp, path)


def tap_cases(binary: str, stdout: str) -> list[str]:
    """One case per TAP result line. cmocka writes a skip as `not ok N # SKIP NAME` (the name
    after the directive, no reason): that is a skip, named NAME, and its reason is the `# ...`
    diagnostic printed right before it, if any."""
    cases = []
    comment = ""
    for line in stdout.splitlines():
        line = line.strip()
        m = TAP_LINE.match(line)
        if not m:
            comment = line[1:].strip() if line.startswith("#") else ""
            continue
        status, name, directive, reason = m.groups()
        name = name.strip()
        if directive and directive.upper() == "SKIP":
            if not name:
                name, reason = reason.strip(), ""
            why = reason.strip() or comment or "skipped (no reason printed)"
            cases.append(case_xml(binary, name or "(unnamed)", skipped=why))
        elif status.lower() == "ok" or (directive and directive.upper() == "TODO"):
            cases.append(case_xml(binary, name or "(unnamed)"))
        else:
            cases.append(case_xml(binary, name or "(unnamed)", failure="not ok", text=line))
        comment = ""
    return cases


def tap_plan_short(stdout: str) -> str | None:
    """Why a binary's TAP output is short of its plan (`1..N` and fewer results), else None:
    a binary that exits 0 in the middle of its tests must not pass."""
    lines = [line.strip() for line in stdout.splitlines()]
    plans = [int(m.group(1)) for m in (re.match(r"^1\.\.(\d+)", x) for x in lines) if m]
    if not plans:
        return None
    results = sum(1 for x in lines if TAP_LINE.match(x))
    if results < plans[0]:
        return f"printed {results} of the {plans[0]} results its TAP plan announced"
    return None


def meson_verdict(test: dict) -> str | None:
    """Why a test binary failed, or None when it passed (exit status, timeout, sanitizer, TAP
    results short of the plan)."""
    result, rc = test.get("result", "?"), test.get("returncode")
    output = (test.get("stdout") or "") + (test.get("stderr") or "")
    report = SANITIZER_REPORT.search(output)
    if result == "TIMEOUT":
        return "timed out (meson killed it)"
    if isinstance(rc, int) and rc < 0:
        return f"killed by signal {-rc} ({result})"
    if report:
        return f"sanitizer report: {report.group(0)} ({result}, exit {rc})"
    if result not in MESON_PASSING:
        return f"{result}, exit {rc}"
    return tap_plan_short(test.get("stdout") or "")


def meson_to_junit(testlog: str, out: str, since: float | None) -> int:
    """One case per binary (named after it), plus the TAP lines it printed."""
    try:
        if since is not None and os.stat(testlog).st_mtime < since - MTIME_SLACK_S:
            print(f"{testlog}: written before this run (stale), not used", file=sys.stderr)
            return 1
        with open(testlog) as f:
            tests = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"{testlog}: unreadable ({e})", file=sys.stderr)
        return 1
    cases = []
    for t in tests:
        binary = t.get("name", "?")
        output = (t.get("stdout") or "") + (t.get("stderr") or "")
        why = meson_verdict(t)
        subs = tap_cases(binary, t.get("stdout") or "")
        if why is None and t.get("result") == "SKIP":
            cases.append(case_xml("unit", binary, skipped="meson: skipped"))
        elif why is None:
            # A binary that passed counts by its TAP lines (or once, if it printed none).
            cases += subs or [case_xml("unit", binary)]
        else:
            # A binary that failed is named, whatever its TAP lines said before it died.
            cases += subs
            cases.append(case_xml("unit", binary, failure=why, text=output))
    write_suite(out, "unit", cases)
    return 0


def sanitizer_logs_to_junit(directory: str, out: str) -> int:
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file()) if os.path.isdir(directory) else []
    cases = []
    for p in files:
        text = p.read_text(errors="replace")
        first = SANITIZER_REPORT.search(text)
        cases.append(case_xml("sanitizer-logs", str(p.relative_to(directory)),
                              failure=first.group(0) if first else "sanitizer log file", text=text))
    if not cases:
        cases.append(case_xml("sanitizer-logs", "no sanitizer report from any suite"))
    write_suite(out, "sanitizer-logs", cases)
    return 0


def failure_detail(el: ET.Element) -> list[str]:
    """A failure's message, its first locator, expected and received lines, and where it
    failed, each on one short line."""
    text = el.text or ""
    lines = [el.get("message") or ""]
    for key in DETAIL_KEYS:
        lines += [x for x in text.splitlines() if key.match(x)][:1]
    for x in text.splitlines():
        m = WHERE.match(x)
        if m:
            lines.append(f"at {m.group(1) or m.group(2)}")
            break
    detail = []
    for x in lines:
        x = " ".join(x.split())
        if x and x not in detail:
            detail.append(x if len(x) <= DETAIL_CHARS else x[:DETAIL_CHARS - 1] + "…")
    return detail[:DETAIL_LINES]


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures: list[tuple[str, list[str]]] = []
        self.skips: list[str] = []

    def fail(self, what: str, detail: list[str] | None = None) -> None:
        self.failed += 1
        self.failures.append((what, detail or []))

    def add_report(self, suite: str, path: str, started: float) -> None:
        """Count a suite's report; a missing, stale, unreadable or empty one is a failure."""
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            self.fail(f"{suite}: no report ({path})")
            return
        if mtime < started - MTIME_SLACK_S:
            self.fail(f"{suite}: stale report {path} (written before this run), not counted")
            return
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            self.fail(f"{suite}: unreadable report {path} ({e})")
            return
        cases = list(root.iter("testcase"))
        if not cases:
            self.fail(f"{suite}: report {path} has no test case (the suite did not run)")
            return
        for case in cases:
            name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            if failure is not None:
                self.fail(f"{suite}: {name}", failure_detail(failure))
            elif case.find("skipped") is not None:
                el = case.find("skipped")
                self.skipped += 1
                self.skips.append(f"{name}: {el.get('message') or (el.text or '').strip()}")
            else:
                self.passed += 1


def summary(run_dir: str) -> int:
    t = Tally()
    try:
        lines = Path(run_dir, "suites.tsv").read_text().splitlines()
    except OSError:
        lines = []
        t.fail(f"runner: no suite list ({run_dir}/suites.tsv)")
    for line in lines:
        if not line.strip():
            continue
        name, report, rc, started = line.split("\t")
        if rc != "0":
            t.fail(f"{name}: command exited {rc}")
        t.add_report(name, report, float(started))
    try:
        steps = Path(run_dir, "steps-failed.txt").read_text().splitlines()
    except OSError:
        steps = []
    for step in filter(str.strip, steps):
        t.fail(f"step failed: {step.strip()}")
    for s in t.skips:
        print(f"skipped: {s}")
    for what, detail in t.failures:
        print(f"FAILED: {what}")
        for x in detail:
            print(f"    {x}")
    if t.passed == 0 and t.failed == 0:
        t.fail("runner: no test ran")
        print(f"FAILED: {t.failures[-1][0]}")
    line = f"{t.passed} passed, {t.failed} failed"
    if t.skipped:
        line += f", {t.skipped} skipped"
    print(line)
    return 1 if t.failed else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "summary":
        return summary(argv[1])
    if len(argv) in (3, 5) and argv[0] == "meson":
        since = float(argv[4]) if len(argv) == 5 and argv[3] == "--since" else None
        return meson_to_junit(argv[1], argv[2], since)
    if len(argv) == 3 and argv[0] == "sanitizer-logs":
        return sanitizer_logs_to_junit(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
