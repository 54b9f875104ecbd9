"""The test runner's closing line and exit code: a failing test must fail the run."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "scripts" / "junit_summary.py"


def run(tmp_path, cases, steps=""):
    report = tmp_path / "r.xml"
    report.write_text(f"<testsuite>{cases}</testsuite>")
    (tmp_path / "steps").write_text(steps)
    return subprocess.run([sys.executable, str(SUMMARY), str(tmp_path / "steps"), str(report)],
                          capture_output=True, text=True)


def test_all_passing(tmp_path):
    r = run(tmp_path, '<testcase name="a"/><testcase name="b"/>'
                      '<testcase name="c"><skipped message="no perf here"/></testcase>')
    assert r.returncode == 0
    assert r.stdout.splitlines()[-1] == "2 passed, 0 failed, 1 skipped"
    assert "skipped: c: no perf here" in r.stdout


def test_a_failure_fails_the_run(tmp_path):
    r = run(tmp_path, '<testcase name="a"/><testcase name="b"><failure message="x"/></testcase>')
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "1 passed, 1 failed"


def test_a_step_without_report_fails_the_run(tmp_path):
    r = run(tmp_path, '<testcase name="a"/>', steps="C build\n")
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "1 passed, 1 failed"
