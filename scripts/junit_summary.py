#!/usr/bin/env python3
"""Add up JUnit XML reports: print skipped tests with their reasons, then one closing line
'N passed, N failed[, N skipped]'. Exit 1 when anything failed or a step left no report.

usage: junit_summary.py STEPS_FILE REPORT.xml...
STEPS_FILE lists steps that failed without a report (one per line); each counts as a failure.
"""
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    steps_file, reports = sys.argv[1], sys.argv[2:]
    passed = failed = skipped = 0
    failures, skips = [], []
    for path in reports:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            failed += 1
            failures.append(f"{path}: unreadable report ({e})")
            continue
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failures.append(name)
            elif case.find("skipped") is not None:
                skipped += 1
                el = case.find("skipped")
                skips.append(f"{name}: {el.get('message') or (el.text or '').strip()}")
            else:
                passed += 1
    with open(steps_file) as f:
        for line in f:
            if line.strip():
                failed += 1
                failures.append(f"step failed without a report: {line.strip()}")
    for s in skips:
        print(f"skipped: {s}")
    for s in failures:
        print(f"FAILED: {s}")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
