# The test runner's steps, sourced by test.sh (and by tests/runner/, which plants faults in them).
# The rules they enforce are in docs/testing.md, "What counts as a failure":
#   - a suite whose command exits non-zero is a failure named after the suite, always;
#   - each suite's JUnit report must be written by this run (deleted before, mtime checked
#     after) and hold at least one test case;
#   - every sanitized process a suite starts writes its sanitizer reports (ASan, LSan, UBSan)
#     into tests/out/sanitizer/NAME/, and any file there fails the run (suites_end).
#
#   suites_begin OUT_DIR              a fresh output directory for this run
#   run_suite NAME REPORT COMMAND...  run one suite; COMMAND writes the JUnit XML REPORT (also
#                                     in $SUITE_REPORT) and exits 0 only when all passed
#   fail_step WHAT                    a step without a report (a build) failed
#   pytest_suite ARGS...              a COMMAND for run_suite: pytest with its JUnit report
#   meson_unit BUILD_DIR [TEST...]    a COMMAND for run_suite: `meson test`, one case per binary
#   suites_end                        check the sanitizer logs, print the closing line, return
#                                     non-zero when anything failed
# shellcheck shell=bash

suites_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
suites_summary=$suites_top/scripts/junit_summary.py

suites_begin() {
	suites_out=$1
	rm -rf "$suites_out"
	mkdir -p "$suites_out/sanitizer"
	: >"$suites_out/suites.tsv"
	: >"$suites_out/steps-failed.txt"
}

fail_step() {
	echo "$1" >>"$suites_out/steps-failed.txt"
	echo "test.sh: step failed: $1" >&2
}

run_suite() {
	local name=$1 report=$2 started rc
	shift 2
	local log=$suites_out/$name.log sanitizer=$suites_out/sanitizer/$name
	rm -f "$report"
	# World-writable (sticky): energyd started as root drops to nobody before it could report.
	mkdir -p "$sanitizer" && chmod 1777 "$sanitizer"
	started=$(date +%s.%N)
	echo "=== $name"
	(
		export SUITE_REPORT=$report ENERGY_SANITIZER_LOG_DIR=$sanitizer
		export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$sanitizer/asan"
		export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$sanitizer/ubsan"
		"$@"
	) 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	printf '%s\t%s\t%s\t%s\n' "$name" "$report" "$rc" "$started" >>"$suites_out/suites.tsv"
	if [ "$rc" -ne 0 ]; then
		echo "test.sh: $name: command exited $rc (log: $log)" >&2
	fi
	return 0
}

pytest_suite() {
	python -m pytest -q -p no:cacheprovider --junitxml="$SUITE_REPORT" -o junit_family=xunit1 "$@"
}

meson_unit() {
	local build=$1 started rc=0
	shift
	# Each binary's sanitizer report stays in its own output, where meson records it per test
	# (run_suite appended log_path: drop it).
	ASAN_OPTIONS=${ASAN_OPTIONS%%log_path=*} UBSAN_OPTIONS=${UBSAN_OPTIONS%%log_path=*}
	export ASAN_OPTIONS=${ASAN_OPTIONS%:} UBSAN_OPTIONS=${UBSAN_OPTIONS%:}
	rm -f "$build/meson-logs/testlog.json" "$build/meson-logs/testlog.junit.xml"
	started=$(date +%s.%N)
	meson test -C "$build" --print-errorlogs "$@" || rc=$?
	python3 "$suites_summary" meson "$build/meson-logs/testlog.json" "$SUITE_REPORT" --since "$started" || rc=1
	return "$rc"
}

suites_end() {
	run_suite sanitizer-logs "$suites_out/sanitizer-logs.xml" \
		python3 "$suites_summary" sanitizer-logs "$suites_out/sanitizer" "$suites_out/sanitizer-logs.xml"
	echo
	python3 "$suites_summary" summary "$suites_out"
}
