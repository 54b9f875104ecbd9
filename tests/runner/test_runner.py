"""The runner's rules, checked with planted faults (docs/testing.md, "What counts as a failure").

Each test builds a throw-away copy of the runner in tmp_path: .ci/run, scripts/suites.sh,
scripts/junit_summary.py and a test.sh whose suites are the planted fault, then runs .ci/run as CI
does. Every fault must end with "N passed, M failed" (M >= 1) and a non-zero exit. The unit-test
faults are binaries of a tiny meson project with sanitizers (built once per module, in /tmp).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOSING = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$")

# The options test.sh exports before its suites.
SANITIZER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

# `report FILE [N]`: what a suite's command leaves, a JUnit report with N passing cases (1).
# A passing suite, run next to a faulty one so that "nothing passed" is not what fails the run.
APP = 'run_suite app "$out/app.xml" report "$out/app.xml"\n'
REPORT_FN = """report() {
	python3 -c 'import sys; n = int(sys.argv[2]); open(sys.argv[1], "w").write(
		"<testsuite>" + "<testcase name=\\"a%d\\"/>" * n % tuple(range(n)) + "</testsuite>")' "$1" "${2:-1}"
}
"""

FAULTS_MESON = """
project('faults', 'c')
foreach n : ['ok', 'overflow', 'leak', 'hang', 'ubsan', 'segv']
  test(n, executable(n, n + '.c'), protocol : 'tap', timeout : 1)
endforeach
"""
FAULTS_C = {
    "ok": 'int main(void) { puts("1..2\\nok 1 - first\\nok 2 - second # SKIP no hardware here"); '
          "return 0; }",
    # The TAP line before the crash passes; the binary must still be named as failed.
    "overflow": 'int main(void) { puts("1..2\\nok 1 - before"); fflush(stdout); '
                "char *p = malloc(4); p[4] = 1; free(p); puts(\"ok 2 - after\"); return 0; }",
    "leak": 'void *keep; int main(void) { keep = malloc(64); keep = 0; puts("1..1\\nok 1 - leaks"); '
            "fflush(stdout); return 0; }",
    "hang": 'int main(void) { puts("1..1"); fflush(stdout); sleep(30); puts("ok 1"); return 0; }',
    "ubsan": "int main(int argc, char **argv) { (void)argv; int x = INT_MAX; x += argc; "
             'printf("1..1\\nok 1 - %d\\n", x); return 0; }',
    "segv": 'int main(void) { puts("1..1\\nok 1 - fine so far"); fflush(stdout); raise(SIGSEGV); '
            "return 0; }",
}
HEADERS = "#include <limits.h>\n#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n" \
          "#include <unistd.h>\n"


@pytest.fixture(scope="module")
def faults_build(tmp_path_factory):
    """The tiny meson project with one planted fault per test binary, built with sanitizers."""
    if not shutil.which("meson"):
        pytest.skip("meson is not installed")
    src = tmp_path_factory.mktemp("faults")
    (src / "meson.build").write_text(FAULTS_MESON)
    for name, body in FAULTS_C.items():
        (src / f"{name}.c").write_text(HEADERS + body + "\n")
    build = src / "build"
    subprocess.run(["meson", "setup", str(build), "-Db_sanitize=address,undefined",
                    "-Db_lundef=false"], cwd=src, check=True, capture_output=True)
    subprocess.run(["ninja", "-C", str(build)], check=True, capture_output=True)
    return build


def ci_run(tmp_path: Path, suites: str, env: dict | None = None):
    """Run .ci/run on a copy of the runner whose test.sh runs `suites` (bash lines).

    Returns (exit status, closing line as (passed, failed), full output)."""
    repo = tmp_path / "repo"
    for rel in (".ci/run", "scripts/suites.sh", "scripts/junit_summary.py",
                "scripts/check_format.py"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    (repo / "test.sh").write_text(textwrap.dedent("""\
        #!/usr/bin/env bash
        set -uo pipefail
        cd "$(dirname "$0")"
        out=$PWD/out
        . scripts/suites.sh
        suites_begin "$out"
        """) + REPORT_FN + suites + "\nsuites_end\n")
    (repo / "test.sh").chmod(0o755)
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("ENERGY_SANITIZER_LOG_DIR", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    full_env.update(SANITIZER_ENV)
    # pytest_suite runs `python -m pytest`: this one.
    full_env["PATH"] = f"{Path(sys.executable).parent}:{full_env['PATH']}"
    full_env.update(env or {})
    r = subprocess.run([str(repo / ".ci" / "run")], capture_output=True, text=True, env=full_env,
                       timeout=300)
    lines = [m for m in map(CLOSING.match, r.stdout.splitlines()) if m]
    assert lines, f"no closing line:\n{r.stdout}\n{r.stderr}"
    return r.returncode, (int(lines[-1][1]), int(lines[-1][2])), r.stdout


def assert_fails(result, *named: str):
    rc, (passed, failed), out = result
    assert rc != 0, out
    assert failed >= 1, out
    failures = [line for line in out.splitlines() if line.startswith("FAILED: ")]
    for n in named:
        assert any(n in f for f in failures), (n, out)


def test_a_clean_run_passes(tmp_path, faults_build):
    unit = f'run_suite unit "$out/unit.xml" meson_unit {faults_build} ok'
    rc, (passed, failed), out = ci_run(tmp_path, APP + unit)
    assert (rc, failed) == (0, 0), out
    # app's case, ok's passing TAP line, the sanitizer-logs step's "no report" case.
    assert passed == 3, out
    assert "skipped: ok::second: no hardware here" in out


@pytest.mark.parametrize("binary,why", [
    ("overflow", "AddressSanitizer"),
    ("leak", "LeakSanitizer"),
    ("hang", "timed out"),
    ("ubsan", "runtime error"),
    ("segv", "SEGV"),
])
def test_a_failing_unit_binary_is_named(tmp_path, faults_build, binary, why):
    result = ci_run(tmp_path, f'run_suite unit "$out/unit.xml" meson_unit {faults_build} ok {binary}')
    assert_fails(result, f"unit: unit::{binary}", "unit: command exited")
    assert result[1][0] >= 1  # ok's TAP line still counts
    report = (tmp_path / "repo/out/unit.xml").read_text()
    assert why in report


def test_unit_results_of_an_earlier_build_are_not_reused(tmp_path, faults_build):
    """A build directory meson cannot test (no build.ninja) but holding a passing testlog."""
    old = tmp_path / "old-build"
    (old / "meson-logs").mkdir(parents=True)
    shutil.copy2(faults_build / "meson-logs" / "testlog.json", old / "meson-logs")
    assert_fails(ci_run(tmp_path, f'run_suite unit "$out/unit.xml" meson_unit {old}'),
                 "unit: no report", "unit: command exited")


def test_a_testlog_older_than_the_run_is_refused(tmp_path, faults_build):
    testlog = tmp_path / "testlog.json"
    testlog.write_text('{"name": "ok", "result": "OK", "returncode": 0, "stdout": "ok 1 - a"}\n')
    os.utime(testlog, (1, 1))
    r = subprocess.run([sys.executable, str(ROOT / "scripts/junit_summary.py"), "meson",
                        str(testlog), str(tmp_path / "u.xml"), "--since", "1000"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "stale" in r.stderr
    assert not (tmp_path / "u.xml").exists()


def test_an_empty_report_fails_its_suite(tmp_path):
    """What Playwright writes when its web server never came up: a suite without cases."""
    assert_fails(ci_run(tmp_path, APP + 'run_suite jupyter-ui "$out/ui.xml" report "$out/ui.xml" 0'),
                 "jupyter-ui: report", "has no test case")


def test_a_missing_report_fails_its_suite(tmp_path):
    assert_fails(ci_run(tmp_path, APP + 'run_suite quiet "$out/quiet.xml" true'),
                 "quiet: no report")


def test_a_stale_report_is_not_counted(tmp_path):
    """A report copied from an earlier run (cp -p keeps its old mtime) is refused."""
    old = tmp_path / "old.xml"
    old.write_text('<testsuite><testcase name="from-last-week"/></testsuite>')
    os.utime(old, (1, 1))
    copied = f'run_suite copied "$out/copied.xml" cp -p {old} "$out/copied.xml"'
    assert_fails(ci_run(tmp_path, APP + copied),
                 "copied: stale report")


def test_a_report_left_from_before_is_deleted_first(tmp_path):
    """A suite that writes nothing this time cannot pass on the report of its last run."""
    suites = APP + 'report "$out/left.xml"\nrun_suite left "$out/left.xml" true'
    assert_fails(ci_run(tmp_path, suites), "left: no report")


def test_a_failing_command_fails_even_with_a_passing_report(tmp_path):
    suites = ('report_then_fail() { report "$1"; return 3; }\n'
              'run_suite app "$out/app.xml" report_then_fail "$out/app.xml"')
    assert_fails(ci_run(tmp_path, suites),
                 "app: command exited 3")


@pytest.mark.parametrize("fake", ["kill -SEGV $$", "exit 127"])
def test_a_crashing_or_missing_clang_format_fails(tmp_path, fake):
    """clang-format that crashes, or that cannot be run (127), on a formatted file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "clang-format").write_text(f"#!/bin/sh\n{fake}\n")
    (bin_dir / "clang-format").chmod(0o755)
    suites = ('mkdir -p src && printf "int x;\\n" >src/a.c\n'
              'run_suite format "$out/format.xml" python3 scripts/check_format.py "$out/format.xml"')
    assert_fails(ci_run(tmp_path, suites, {"PATH": f"{bin_dir}:{os.environ['PATH']}"}),
                 "format: clang-format::src/a.c", "format: command exited 1")


def test_a_sanitizer_report_in_a_file_fails_the_run(tmp_path, faults_build):
    """A process whose stderr nobody reads (log_path) reports, yet exits 0: the last step."""
    suites = (f'app() {{ ASAN_OPTIONS=$ASAN_OPTIONS:exitcode=0 {faults_build}/overflow; '
              'report "$1"; }\n'
              'run_suite app "$out/app.xml" app "$out/app.xml"')
    rc, (passed, failed), out = result = ci_run(tmp_path, suites)
    assert_fails(result, "sanitizer-logs: sanitizer-logs::app/asan.")
    assert "app: command exited" not in out  # the process exited 0: only its report tells


PLANTED_ENERGYD = """
import os, signal, sys
sys.path.insert(0, {integration!r})
from conftest import start_energyd  # noqa: F401  (the integration fixture)

REPORT = "==%d==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\\n"


def test_energyd_planted(start_energyd):
    d = start_energyd()
    if {fault!r} == "killed":
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(10)
    elif {fault!r} == "report-file":  # what ASan writes with log_path, the daemon still running
        with open(os.path.join(os.environ["ENERGY_SANITIZER_LOG_DIR"], f"asan.{{d.pid}}"), "w") as f:
            f.write(REPORT % d.pid)
    else:  # what it writes without log_path, on the daemon's stderr; after room for the
        # lines energyd still writes at its own offset in that file when it stops
        with open(d.log_path, "a") as f:
            f.write("\\n" * 4096 + REPORT % d.pid)
"""


@pytest.mark.parametrize("fault,why", [("killed", "killed by SIGKILL"),
                                       ("report-file", "sanitizer report"),
                                       ("stderr-report", "sanitizer report in")])
def test_an_energyd_that_did_not_end_cleanly_fails_its_test(tmp_path, fault, why):
    """The integration fixture's teardown, on the real sanitizer build of energyd."""
    build = Path(os.environ.get("ENERGY_BUILD_DIR", ROOT / "build-test"))
    if not (build / "energyd").exists():
        pytest.skip(f"no energyd in {build} (test.sh builds it)")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "test_planted.py").write_text(PLANTED_ENERGYD.format(
        integration=str(ROOT / "tests" / "integration"), fault=fault))
    suites = f'run_suite integration "$out/i.xml" pytest_suite {planted}'
    result = ci_run(tmp_path, suites, {"ENERGY_BUILD_DIR": str(build)})
    assert_fails(result, "test_planted::test_energyd_planted", "integration: command exited")
    report = (tmp_path / "repo/out/i.xml").read_text()
    assert "did not end cleanly" in report and why in report, report


def test_a_runner_killed_before_its_closing_line_fails(tmp_path):
    """.ci/run believes only the last line: a suite's output that looks like it does not count."""
    assert_fails(ci_run(tmp_path, 'echo "12 passed, 0 failed" >&2\nkill -9 $$'))
    # Killed right after printing such a line.
    result = ci_run(tmp_path, APP + 'echo "12 passed, 0 failed"\nkill -9 $$')
    assert result[:2] == (137, (12, 1)), result[2]
    assert "exited 137 but reported no failure" in result[2]
