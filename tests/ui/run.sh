#!/usr/bin/env bash
# Browser tests of the Jupyter Energy extension: Playwright driving Debian's /usr/bin/chromium
# against a real JupyterLab (Lab and Notebook 7 pages of one server) with the extension and an
# embedded energyd on emulated RAPL (tests/emulators/powercap.py, host total 25 W).
#
#   tests/ui/run.sh OUT.xml [ARGS]   JUnit report to OUT.xml; screenshots in tests/ui/artifacts/;
#                                    ARGS go to `playwright test` (a spec file, -g 'title')
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$(python3 -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "${1:-$REPO/tests/out/jupyter-ui.xml}")
mkdir -p "$(dirname "$OUT")"

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
missing=()
for p in chromium fonts-noto-color-emoji; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The venv with the package installed exactly as a user gets it (pip install .), unless the
# caller just did that (test.sh sets JUPYTER_ENERGY_INSTALLED=1).
if [ "${JUPYTER_ENERGY_INSTALLED:-}" != 1 ]; then
  "$REPO/run.sh" --install-only
fi
# Notebook 7 comes with run.sh (the package's `notebook` extra): no extra install here, so
# that these tests show what a user gets.
"$REPO/.venv/bin/python" -c 'import notebook, sys; sys.exit(int(notebook.__version__.split(".")[0]) < 7)' ||
  { echo "tests/ui: Notebook 7 is missing from .venv (run.sh should install it)" >&2; exit 1; }

cd "$HERE"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
rm -rf artifacts
mkdir -p artifacts
rm -f "$OUT"  # never count a report of an earlier run
WORKDIR=$(mktemp -d /tmp/jupyter-energy-ui.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
status=0
JE_UI_JUNIT="$OUT" JE_UI_PYTHON="$REPO/.venv/bin/python" JE_UI_WORKDIR="$WORKDIR/run" \
  JE_UI_PORT="$PORT" npx playwright test "${@:2}" || status=$?
# The embedded energyd that the extension started: no sanitizer report in its log, and every
# start of it stopped on SIGTERM (a crash that the extension restarted would hide otherwise).
# Its guard process may still be stopping it when Playwright returns: give it 10 s.
CHECK="$REPO/tests/runner/energyd_check.py"
EMBEDDED_LOG=$(dirname "$OUT")/jupyter-ui-energyd.log
# A test that kills energyd on purpose writes its pid to killed-on-purpose.
KILLED="$WORKDIR/run/killed-on-purpose"
for _ in $(seq 50); do
  python3 "$CHECK" --killed-on-purpose "$KILLED" "$WORKDIR/run/state/energyd.log" 2>/dev/null && break
  sleep 0.2
done
cp "$WORKDIR/run/state/energyd.log" "$EMBEDDED_LOG" 2>/dev/null || rm -f "$EMBEDDED_LOG"
python3 "$CHECK" --killed-on-purpose "$KILLED" "$EMBEDDED_LOG" || status=1
# A web server that never came up leaves a report without a single test case.
grep -q "<testcase" "$OUT" 2>/dev/null || { echo "tests/ui: no test case in $OUT"; status=1; }
rm -rf "$WORKDIR"
echo "tests/ui: screenshots in $HERE/artifacts, JUnit report in $OUT"
exit $status
