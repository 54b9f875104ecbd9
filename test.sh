#!/usr/bin/env bash
# Runs every test of Jupyter Energy from a fresh clone: installs what is missing (scripts/deps.sh),
# builds with AddressSanitizer and UBSan, checks the formatting, runs the cmocka unit tests, the
# integration tests (real energyd on emulated hardware) and the Jupyter tests, then prints
# "N passed, N failed[, N skipped]". Exits non-zero when anything failed.
#   ./test.sh            everything
#   ./test.sh -k NAME    pass -k NAME to pytest (integration tests only)
# What counts as a failure (a suite that exits non-zero, a missing, stale or empty report, a
# crashed unit binary, any sanitizer report): docs/testing.md and scripts/suites.sh.
set -uo pipefail
cd "$(dirname "$0")"
top=$PWD
out=$top/tests/out
. scripts/suites.sh
suites_begin "$out"

scripts/deps.sh || fail_step "install dependencies"
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

# --- the suites: one line each, `run_suite NAME REPORT COMMAND...` (scripts/suites.sh) --------
# COMMAND must write the JUnit XML REPORT (its path is also in $SUITE_REPORT) with at least one
# test case, and exit 0 only when all passed. A new suite is one more line here; pytest_suite
# and meson_unit are ready-made COMMANDs.
run_suite format "$out/format.xml" python3 scripts/check_format.py "$out/format.xml"
run_suite unit "$out/unit.xml" meson_unit "$build"
run_suite runner "$out/runner.xml" pytest_suite tests/runner
# each libFuzzer target for a bounded time (clang, ASan+UBSan; tests/fuzz/run.sh)
run_suite fuzz "$out/fuzz.xml" tests/fuzz/run.sh "$out/fuzz.xml" 20
run_suite integration "$out/integration.xml" pytest_suite tests/integration "$@"
# the .deb built, installed, run as its unit runs it, purged (as root)
run_suite package "$out/package.xml" pytest_suite tests/package
# three energyd nodes scraped by a real Prometheus, InfluxDB output, the deploy/ files
run_suite fleet "$out/fleet.xml" pytest_suite tests/fleet

# --- jupyter (issue 6) -------------------------------------------------------------------------
# The package as a user installs it (run.sh: pip install . builds the front end and energyd),
# then the handler tests (pytest-jupyter, energyd from $ENERGY_BUILD_DIR on emulated RAPL), the
# front-end unit tests (Vitest) and the browser tests (Playwright + Debian's chromium).
jupyter_install() {
	./run.sh --install-only >"$out/jupyter-install.log" 2>&1 &&
		.venv/bin/python -m pip install -q --disable-pip-version-check "pytest-jupyter[server]>=0.10" ipykernel pandas \
			>>"$out/jupyter-install.log" 2>&1
}
# npm install with the committed lock (npm ci refuses the lock: the registry here lacks some
# other platforms' optional rspack bindings, which npm then leaves out of it).
jupyter_unit() {
	(cd labextension && npm install --no-audit --no-fund --loglevel=error >"$out/jupyter-npm.log" 2>&1 &&
		npm test -- --reporter=default --reporter=junit --outputFile="$out/jupyter-unit.xml")
}
if jupyter_install; then
	run_suite jupyter-python "$out/jupyter-python.xml" pytest_suite tests/python
	run_suite jupyter-unit "$out/jupyter-unit.xml" jupyter_unit
	run_suite jupyter-ui "$out/jupyter-ui.xml" env JUPYTER_ENERGY_INSTALLED=1 tests/ui/run.sh "$out/jupyter-ui.xml"
else
	tail -40 "$out/jupyter-install.log"
	fail_step "jupyter install (run.sh --install-only)"
fi
# --- end jupyter -------------------------------------------------------------------------------

# a real JupyterHub, proxy and two local users, energyd on emulated RAPL (as root)
run_suite hub "$out/hub.xml" env HUB_TEST_OUT="$out" tests/hub/run.sh "$out/hub.xml"

suites_end
