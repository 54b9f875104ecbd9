#!/usr/bin/env bash
# The JupyterHub test (as root): a real hub, configurable-http-proxy, two local users, energyd on
# emulated RAPL. Usage: tests/hub/run.sh [JUNIT.xml] [pytest args...]
# Its environment is a virtualenv under /tmp (the single-user servers run as the test users, who
# must be able to read it), made from requirements.txt once and reused while that file is
# unchanged; configurable-http-proxy and playwright-core (which drives Debian's chromium) are
# installed from npm here, in tests/hub/node_modules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
junit=${1:-$here/../out/hub.xml}
shift || true
venv=/tmp/jupyter-energy-hub-venv
stamp=$(sha256sum "$here/requirements.txt" | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$venv"
	# Debian's python, not one under /root: the test users run this environment.
	/usr/bin/python3 -m venv "$venv"
	"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
	echo "$stamp" >"$venv/.requirements"
fi
chmod -R a+rX "$venv"
if [ ! -x "$here/node_modules/.bin/configurable-http-proxy" ] || [ ! -d "$here/node_modules/playwright-core" ]; then
	(cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here" --junitxml="$junit" \
	-o junit_family=xunit1 "$@"
