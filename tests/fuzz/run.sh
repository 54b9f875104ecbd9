#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan in build-fuzz/
# and runs each for a bounded time from its seed corpus (tests/fuzz/corpus/<target>/), then writes
# a JUnit report with one testcase per target. A crash, a leak, a timeout, an out-of-memory, a
# sanitizer report, a target that did not build or did not run: each is a <failure> naming the
# reproducer and quoting the start of the report.
#   tests/fuzz/run.sh OUT.xml [SECONDS]     SECONDS per target, default 20
# Reproducers go to <dir of OUT.xml>/fuzz/<target>/; inputs that found new coverage accumulate in
# build-fuzz/fuzz-corpus/<target>/ (the repository's seeds are only read).
set -uo pipefail
out_xml=$(realpath -m "${1:?usage: tests/fuzz/run.sh OUT.xml [SECONDS]}")
seconds=${2:-20}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=$top/build-fuzz
report_dir=$(dirname "$out_xml")/fuzz
rm -rf "$report_dir"
mkdir -p "$report_dir"
results=$report_dir/results.tsv
: >"$results"

targets=()
for f in tests/fuzz/fuzz_*.c; do
	t=$(basename "$f" .c)
	targets+=("${t#fuzz_}")
done

setup_log=$report_dir/setup.log
setup_ok=1
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
		-Db_lundef=false >"$setup_log" 2>&1 || setup_ok=0
fi

# All targets in one ninja run (in parallel); on failure each is built alone below, so that
# the report names the targets that do not build.
built_all=0
if [ "$setup_ok" = 1 ] &&
	ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}" >"$report_dir/build.log" 2>&1; then
	built_all=1
fi

# Harnesses' temporary files (fuzz_http's fake sysfs and socket): removed even after a crash.
tmp=$(mktemp -d /tmp/energy-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp

# libFuzzer's own limits; the sanitizers stop at the first report.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${targets[@]}"; do
	exe=$build/tests/fuzz/fuzz_$t
	log=$report_dir/$t.log
	art=$report_dir/$t
	mkdir -p "$art"
	if [ "$setup_ok" != 1 ]; then
		cp "$setup_log" "$log"
		printf '%s\tbuild\t%s\t\t0\n' "$t" "$log" >>"$results"
		continue
	fi
	if [ "$built_all" != 1 ] && ! ninja -C "$build" "tests/fuzz/fuzz_$t" >"$log" 2>&1; then
		printf '%s\tbuild\t%s\t\t0\n' "$t" "$log" >>"$results"
		continue
	fi
	if [ ! -x "$exe" ]; then
		echo "run.sh: $exe was not built" >>"$log"
		printf '%s\tbuild\t%s\t\t0\n' "$t" "$log" >>"$results"
		continue
	fi
	seeds=tests/fuzz/corpus/$t
	work=$build/fuzz-corpus/$t
	mkdir -p "$work"
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	start=$(date +%s)
	# The outer timeout is a backstop for a hang that libFuzzer's own -timeout cannot see.
	timeout -k 10 $((seconds + 120)) "$exe" -max_total_time="$seconds" -timeout=30 \
		-rss_limit_mb=2048 -malloc_limit_mb=1024 -error_exitcode=77 -timeout_exitcode=78 \
		-print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "$work" "$seeds" \
		>"$log" 2>&1
	rc=$?
	elapsed=$(($(date +%s) - start))
	if [ ! -d "$seeds" ]; then
		echo "run.sh: no seed corpus in $seeds" >>"$log"
		rc=1
	fi
	repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | head -1)
	printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$rc" "$log" "$repro" "$elapsed" >>"$results"
done

python3 - "$results" "$out_xml" <<'PY'
import re, sys
from xml.sax.saxutils import escape, quoteattr

START = re.compile(r"^==\d+==ERROR|runtime error:|^ERROR: libFuzzer|deadly signal|"
                   r"^fuzz_\w+: |^SUMMARY: |^run\.sh: |==\d+== ERROR: libFuzzer")

def clean(text):
    """XML 1.0 allows no control characters but tab and newline (a report may quote input)."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufffe\uffff]", "?", text)

def excerpt(path, n=40):
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError as e:
        return f"(no log: {e})"
    for i, line in enumerate(lines):
        if START.search(line):
            return clean("\n".join(lines[i:i + n]))
    return clean("\n".join(lines[-n:]))

cases, failures = [], 0
for row in open(sys.argv[1]):
    target, rc, log, repro, elapsed = row.rstrip("\n").split("\t")
    body = ""
    if rc == "build":
        msg = f"could not be built (needs clang, libFuzzer and the sanitizer runtimes; log: {log})"
        body = f"<failure message={quoteattr(msg)}>{escape(excerpt(log))}</failure>"
    elif rc != "0":
        kind = {"77": "crash or sanitizer report", "78": "timeout"}.get(rc, f"exit status {rc}")
        if "out-of-memory" in open(log, errors="replace").read():
            kind = "out of memory"
        where = f"; reproduce: {repro}" if repro else ""
        msg = f"{kind}{where} (log: {log})"
        body = f"<failure message={quoteattr(clean(msg))}>{escape(excerpt(log))}</failure>"
    else:
        stats = [l for l in open(log, errors="replace") if l.startswith(("stat::number_of_executed_units", "Done "))]
        body = f"<system-out>{escape(''.join(stats))}</system-out>"
    if body.startswith("<failure"):
        failures += 1
        print(f"FAILED: fuzz::{target}: {msg}")
    cases.append(f'<testcase classname="fuzz" name={quoteattr(target)} time="{elapsed or 0}">{body}</testcase>')
if not cases:
    failures = 1
    cases.append('<testcase classname="fuzz" name="targets"><failure message="no fuzz target found in tests/fuzz"/></testcase>')
open(sys.argv[2], "w").write(
    f'<testsuite name="fuzz" tests="{len(cases)}" failures="{failures}">{"".join(cases)}</testsuite>\n')
print(f"fuzz: {len(cases)} target(s), {failures} failed")
sys.exit(1 if failures else 0)
PY
