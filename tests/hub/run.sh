#!/usr/bin/env bash
# The JupyterHub test (as root): a real hub, configurable-http-proxy, two local users, energyd on
# emulated RAPL. Usage: tests/hub/run.sh [JUNIT.xml] [pytest args...]
# Its environment is a virtualenv under /tmp (the single-user servers run as the test users, who
# must be able to read it), made from requirements.txt once and reused (one per version of that
# file); configurable-http-proxy and playwright-core (which drives Debian's chromium) are
# installed from npm here, in tests/hub/node_modules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
junit=${1:-$here/../out/hub.xml}
shift || true
stamp=$(sha256sum "$here/requirements.txt" | cut -c1-16)
venv=/tmp/jupyter-energy-hub-venv-$stamp
# One environment per requirements file, built once under a lock (several checkouts of the
# project may run this at the same time on one machine).
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
	rm -rf "$venv"
	# Debian's python, not one under /root: the test users run this environment.
	/usr/bin/python3 -m venv "$venv"
	"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
	touch "$venv/.complete"
fi
flock -u 9
exec 9>&-
chmod -R a+rX "$venv"
if [ ! -x "$here/node_modules/.bin/configurable-http-proxy" ] || [ ! -d "$here/node_modules/playwright-core" ]; then
	(cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here" --junitxml="$junit" \
	-o junit_family=xunit1 "$@"
