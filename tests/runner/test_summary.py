"""junit_summary.py on literal inputs: the closing line, the exit status, what counts."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "scripts" / "junit_summary.py"


def summarize(tmp_path, suites, steps=""):
    """suites: {name: (report XML or None for no report, exit status)}, all started just now."""
    started = time.time() - 1
    lines = []
    for name, (xml, rc) in suites.items():
        report = tmp_path / f"{name}.xml"
        if xml is not None:
            report.write_text(xml)
        lines.append(f"{name}\t{report}\t{rc}\t{started}\n")
    (tmp_path / "suites.tsv").write_text("".join(lines))
    (tmp_path / "steps-failed.txt").write_text(steps)
    r = subprocess.run([sys.executable, str(SUMMARY), "summary", str(tmp_path)],
                       capture_output=True, text=True)
    return r.returncode, r.stdout.splitlines()


def test_all_passing(tmp_path):
    rc, out = summarize(tmp_path, {"a": ('<testsuite><testcase name="a"/><testcase name="b"/>'
                                         '<testcase name="c"><skipped message="no perf here"/>'
                                         '</testcase></testsuite>', 0)})
    assert rc == 0
    assert out[-1] == "2 passed, 0 failed, 1 skipped"
    assert "skipped: c: no perf here" in out


def test_a_failure_fails_the_run(tmp_path):
    rc, out = summarize(tmp_path, {"a": ('<testsuite><testcase name="a"/><testcase name="b">'
                                         '<failure message="x"/></testcase></testsuite>', 1)})
    assert rc == 1
    assert out[-1] == "1 passed, 2 failed"
    assert "FAILED: a: b" in out and "FAILED: a: command exited 1" in out


# A Playwright JUnit failure as its reporter writes it, and pytest's.
PLAYWRIGHT_FAILURE = """<testsuites><testsuite name="front.spec.ts"><testcase name="bench" classname="front.spec.ts">
<failure message="expect(received).toBe(expected) // Object.is equality" type="expect.toBe"><![CDATA[
  front.spec.ts:537:1 \u203a bench
    Error: expect(received).toBe(expected) // Object.is equality

    Expected: 8
    Received: 18

    > 565 |   expect(Number(shown)).toBe(8);
        at /w/tests/ui/tests/front.spec.ts:565:25
    Expected: 9
]]></failure></testcase><testcase name="cancel" classname="front.spec.ts">
<failure message="Error: Timed out 30000ms waiting for expect(locator).toContainText(expected)" type="FAILURE"><![CDATA[
    Error: Timed out 30000ms waiting for expect(locator).toContainText(expected)

    Locator: locator('#jp-energy-panel .jp-EnergyPanel-benchTop')
    Expected string: "run 1 of 5"
    Received string: "Benchmark: run 2 of 5\u2026Cancel"

        at /w/tests/ui/tests/front.spec.ts:580:21
]]></failure></testcase></testsuite></testsuites>"""
PYTEST_FAILURE = ('<testsuite><testcase classname="tests.t" name="test_x"><failure message="AssertionError: '
                  'assert 1 == 2">def test_x():\n&gt;       assert 1 == 2\nE       assert 1 == 2\n\n'
                  'tests/t.py:3: AssertionError</failure></testcase>'
                  '<testcase classname="tests.t" name="test_long"><error message="' + "x" * 500 + '"/>'
                  '</testcase></testsuite>')


def test_a_failure_shows_what_it_said(tmp_path):
    """Under each failure's name: its message, the first locator, expected and received,
    where, in short lines (a CI log's tail may be all one sees of a failure)."""
    rc, out = summarize(tmp_path, {"ui": (PLAYWRIGHT_FAILURE, 1), "py": (PYTEST_FAILURE, 1)})
    assert rc == 1
    assert out[-1] == "0 passed, 6 failed"
    at = out.index("FAILED: ui: front.spec.ts::bench")
    assert out[at + 1:at + 5] == ["    expect(received).toBe(expected) // Object.is equality",
                                  "    Expected: 8", "    Received: 18",
                                  "    at /w/tests/ui/tests/front.spec.ts:565:25"]
    assert out[at + 5].startswith("FAILED: ")
    at = out.index("FAILED: ui: front.spec.ts::cancel")
    assert out[at + 1:at + 6] == [
        "    Error: Timed out 30000ms waiting for expect(locator).toContainText(expected)",
        "    Locator: locator('#jp-energy-panel .jp-EnergyPanel-benchTop')",
        '    Expected string: "run 1 of 5"', '    Received string: "Benchmark: run 2 of 5\u2026Cancel"',
        "    at /w/tests/ui/tests/front.spec.ts:580:21"]
    at = out.index("FAILED: py: tests.t::test_x")
    assert out[at + 1:at + 3] == ["    AssertionError: assert 1 == 2", "    at tests/t.py:3"]
    assert out[at + 3].startswith("FAILED: ")
    at = out.index("FAILED: py: tests.t::test_long")
    assert out[at + 1] == "    " + "x" * 239 + "…"
    # A failure by the runner itself (no report) has nothing under it.
    assert out[out.index("FAILED: ui: command exited 1") + 1].startswith("FAILED: ")


def test_a_step_without_report_fails_the_run(tmp_path):
    rc, out = summarize(tmp_path, {"a": ('<testsuite><testcase name="a"/></testsuite>', 0)},
                        steps="C build\n")
    assert rc == 1
    assert out[-1] == "1 passed, 1 failed"
    assert "FAILED: step failed: C build" in out


def test_every_report_needs_a_case_of_its_own(tmp_path):
    """Counted per report: the passes of one suite do not cover another that never ran."""
    rc, out = summarize(tmp_path, {"a": ('<testsuite><testcase name="a"/></testsuite>', 0),
                                   "ui": ('<testsuites tests="0"></testsuites>', 0),
                                   "gone": (None, 0),
                                   "junk": ("<testsuite><testcase", 0)})
    assert rc == 1
    assert out[-1] == "1 passed, 3 failed"
    assert any(line.startswith("FAILED: ui: report") and "no test case" in line for line in out)
    assert any(line.startswith("FAILED: gone: no report") for line in out)
    assert any(line.startswith("FAILED: junk: unreadable report") for line in out)


@pytest.mark.parametrize("age_s,stale", [(10 ** 9, True), (2.5, True), (0.01, False)])
def test_a_report_older_than_its_suite_is_stale(tmp_path, age_s, stale):
    """Older than the suite's start by more than the file clock's lag (1 s) is stale."""
    report = tmp_path / "old.xml"
    report.write_text('<testsuite><testcase name="a"/></testsuite>')
    started = time.time()
    os.utime(report, (started - age_s, started - age_s))
    (tmp_path / "suites.tsv").write_text(f"old\t{report}\t0\t{started}\n")
    r = subprocess.run([sys.executable, str(SUMMARY), "summary", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == (1 if stale else 0)
    assert r.stdout.splitlines()[-1] == ("0 passed, 1 failed" if stale else "1 passed, 0 failed")
    assert ("stale report" in r.stdout) == stale


def test_nothing_ran_is_a_failure(tmp_path):
    rc, out = summarize(tmp_path, {})
    assert rc == 1 and out[-1] == "0 passed, 1 failed"


def test_meson_binary_that_died_is_named(tmp_path):
    """A binary that printed one passing TAP line and then crashed: both appear."""
    log = tmp_path / "testlog.json"
    log.write_text('{"name": "test_counter", "result": "ERROR", "returncode": 1, '
                   '"stdout": "1..2\\nok 1 - wrap\\n", "stderr": "==1==ERROR: AddressSanitizer: '
                   'heap-buffer-overflow"}\n'
                   '{"name": "test_host", "result": "OK", "returncode": 0, "stdout": "1..1\\nok 1 - '
                   'total\\n", "stderr": "==2==ERROR: LeakSanitizer: detected memory leaks"}\n'
                   '{"name": "test_slow", "result": "TIMEOUT", "returncode": -15, "stdout": ""}\n'
                   '{"name": "test_fine", "result": "OK", "returncode": 0, "stdout": "1..1\\nok 1 - a\\n"}\n')
    r = subprocess.run([sys.executable, str(SUMMARY), "meson", str(log), str(tmp_path / "unit.xml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rc, out = summarize(tmp_path, {"unit": ((tmp_path / "unit.xml").read_text(), 0)})
    assert rc == 1
    # wrap, total (TAP lines), a (test_fine); the three binaries fail by name.
    assert out[-1] == "3 passed, 3 failed"
    for name in ("unit::test_counter", "unit::test_host", "unit::test_slow"):
        assert f"FAILED: unit: {name}" in out
    assert out[out.index("FAILED: unit: unit::test_slow") + 1] == "    timed out (meson killed it)"


CMOCKA_PROGRAM = r"""
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>
static void skipped(void **s) { (void)s; print_message("# no such device here\n"); skip(); }
static void passes(void **s) { (void)s; assert_int_equal(1, 1); }
static void ends_early(void **s) { (void)s; if (getenv("END_EARLY")) exit(0); }
int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(skipped), cmocka_unit_test(passes),
	                                   cmocka_unit_test(ends_early)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
"""


def test_meson_cmocka_skip_is_a_skip_and_a_short_plan_a_failure(tmp_path):
    """A real cmocka binary under a real `meson test`, as tests/unit/meson.build runs it: its skip
    (which cmocka prints as `not ok N # SKIP`) counts as skipped with the reason it printed, not
    as a failure; the same binary ending with exit 0 in the middle of its tests fails."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.c").write_text(CMOCKA_PROGRAM)
    (src / "meson.build").write_text(
        "project('t', 'c')\n"
        "exe = executable('t', 't.c', dependencies : dependency('cmocka'))\n"
        "test('whole', exe, env : ['CMOCKA_MESSAGE_OUTPUT=TAP'])\n"
        "test('cut', exe, env : ['CMOCKA_MESSAGE_OUTPUT=TAP', 'END_EARLY=1'])\n")
    build = tmp_path / "build"
    setup = subprocess.run(["meson", "setup", str(build), str(src)], capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    # exits 1: the cut binary fails
    subprocess.run(["meson", "test", "-C", str(build)], capture_output=True, text=True)
    log = build / "meson-logs" / "testlog.json"
    r = subprocess.run([sys.executable, str(SUMMARY), "meson", str(log), str(tmp_path / "unit.xml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rc, out = summarize(tmp_path, {"unit": ((tmp_path / "unit.xml").read_text(), 0)})
    # whole: passes and ends_early pass, skipped is skipped; cut: skipped, passes, then the
    # binary itself fails (2 of its 3 planned results).
    assert out[-1] == "3 passed, 1 failed, 2 skipped", out
    for binary in ("whole", "cut"):
        assert f"skipped: {binary}::skipped: no such device here" in out, out
    assert "FAILED: unit: unit::cut" in out, out
    assert "printed 2 of the 3 results its TAP plan announced" in (tmp_path / "unit.xml").read_text()
