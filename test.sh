#!/usr/bin/env bash
# Runs every test of Jupyter Energy from a fresh clone: installs what is missing (scripts/deps.sh),
# builds with AddressSanitizer and UBSan, checks the formatting, runs the cmocka unit tests, the
# integration tests (real energyd on emulated hardware) and the Jupyter tests, then prints
# "N passed, N failed[, N skipped]". Exits non-zero when anything failed.
#   ./test.sh            everything
#   ./test.sh -k NAME    pass -k NAME to pytest (integration tests only)
set -uo pipefail
cd "$(dirname "$0")"
top=$PWD
out=$top/tests/out
rm -rf "$out"
mkdir -p "$out"
steps_failed=$out/steps-failed.txt
: >"$steps_failed"
fail_step() { echo "$1" >>"$steps_failed"; echo "test.sh: step failed: $1" >&2; }

scripts/deps.sh || { fail_step "install dependencies"; }
export PATH=$top/.venv/bin:$PATH
build=$top/build-test
export ENERGY_BUILD_DIR=$build

# --- C build with sanitizers -----------------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false >"$out/meson-setup.log" 2>&1 ||
		{ cat "$out/meson-setup.log"; fail_step "meson setup"; }
fi
if ! ninja -C "$build" >"$out/build.log" 2>&1; then
	cat "$out/build.log"
	fail_step "C build"
fi
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# --- formatting: one test per checked file ---------------------------------------------------
python3 - "$out/format.xml" <<'PY'
import subprocess, sys, glob
from xml.sax.saxutils import escape
files = sorted(glob.glob("src/**/*.[ch]", recursive=True) + glob.glob("tests/**/*.[ch]", recursive=True) + glob.glob("examples/**/*.[ch]", recursive=True) + glob.glob("bench/**/*.[ch]", recursive=True))
cases = []
for f in files:
    r = subprocess.run(["clang-format", "--dry-run", "-Werror", f], capture_output=True, text=True)
    body = "" if r.returncode == 0 else f'<failure message="not clang-formatted">{escape(r.stderr[:2000])}</failure>'
    cases.append(f'<testcase classname="clang-format" name="{escape(f)}">{body}</testcase>')
open(sys.argv[1], "w").write(f'<testsuite name="format">{"".join(cases)}</testsuite>')
PY

# --- unit tests (cmocka) ----------------------------------------------------------------------
if [ -f "$build/build.ninja" ]; then
	meson test -C "$build" --print-errorlogs >"$out/unit.log" 2>&1 || cat "$out/unit.log"
	cp "$build/meson-logs/testlog.junit.xml" "$out/unit.xml" 2>/dev/null || fail_step "unit tests"
fi

# --- integration tests: the real energyd on emulated hardware ----------------------------------
python -m pytest -q -p no:cacheprovider tests/integration --junitxml="$out/integration.xml" \
	-o junit_family=xunit1 "$@" || true
[ -f "$out/integration.xml" ] || fail_step "integration tests"

# --- package (issue 12): the .deb built, installed, run as its unit runs it, purged (as root) ----
python -m pytest -q -p no:cacheprovider tests/package --junitxml="$out/package.xml" \
	-o junit_family=xunit1 || true
[ -f "$out/package.xml" ] || fail_step "package tests"

# --- jupyter (issue 6) -------------------------------------------------------------------------
# The package as a user installs it (run.sh: pip install . builds the front end and energyd),
# then the handler tests (pytest-jupyter, energyd from $ENERGY_BUILD_DIR on emulated RAPL), the
# front-end unit tests (Vitest) and the browser tests (Playwright + Debian's chromium).
if ./run.sh --install-only >"$out/jupyter-install.log" 2>&1 &&
	.venv/bin/python -m pip install -q --disable-pip-version-check "pytest-jupyter[server]>=0.10" ipykernel pandas \
		>>"$out/jupyter-install.log" 2>&1; then
	python -m pytest -q -p no:cacheprovider tests/python --junitxml="$out/jupyter-python.xml" \
		-o junit_family=xunit1 || true
	[ -f "$out/jupyter-python.xml" ] || fail_step "jupyter handler tests"
	# npm install with the committed lock (npm ci refuses the lock: the registry here lacks some
	# other platforms' optional rspack bindings, which npm then leaves out of it).
	(cd labextension && npm install --no-audit --no-fund --loglevel=error >"$out/jupyter-npm.log" 2>&1 &&
		npm test -- --reporter=default --reporter=junit --outputFile="$out/jupyter-unit.xml") || true
	[ -f "$out/jupyter-unit.xml" ] || fail_step "jupyter front-end unit tests"
	JUPYTER_ENERGY_INSTALLED=1 tests/ui/run.sh "$out/jupyter-ui.xml" >"$out/jupyter-ui.log" 2>&1 || tail -40 "$out/jupyter-ui.log"
	[ -f "$out/jupyter-ui.xml" ] || fail_step "jupyter browser tests"
else
	tail -40 "$out/jupyter-install.log"
	fail_step "jupyter install (run.sh --install-only)"
fi
# --- end jupyter -------------------------------------------------------------------------------

# --- jupyterhub (issue 16): a real hub, proxy, two local users, energyd on emulated RAPL (root) ---
HUB_TEST_OUT=$out tests/hub/run.sh "$out/hub.xml" >"$out/hub.log" 2>&1 || tail -40 "$out/hub.log"
[ -f "$out/hub.xml" ] || fail_step "jupyterhub tests"

echo
python3 scripts/junit_summary.py "$steps_failed" "$out"/*.xml
