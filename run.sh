#!/usr/bin/env bash
# Jupyter Energy, set up and started with one command on a fresh Debian or Ubuntu:
# installs the build dependencies (apt-get), creates .venv, runs `pip install .` (which builds
# the front end and compiles energyd and energy into the package), then starts JupyterLab with
# the extension. With no energyd running, the extension starts an embedded one as the current
# user; on a machine without readable sensors it shows the CPU model, labelled "estimated".
#
#   ./run.sh                      set up (idempotent) and start JupyterLab
#   ./run.sh --install-only       set up only
#   sudo ./run.sh --system        install energyd as a system service instead (docs/service.md)
#   ./run.sh --port 9999 ...      extra arguments go to `jupyter lab`
set -euo pipefail
cd "$(dirname "$0")"

# --- system service (issue 12) -----------------------------------------------------------------
# sudo ./run.sh --system [--start]: energyd as a system service for measured figures (the Debian
# package, built and installed by scripts/install-service.sh); JupyterLab is not started.
if [ "${1:-}" = "--system" ]; then
  shift
  exec scripts/install-service.sh "$@"
fi
# --- end system service ------------------------------------------------------------------------

INSTALL_ONLY=0
if [ "${1:-}" = "--install-only" ]; then
  INSTALL_ONLY=1
  shift
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# One line per step, so that a set-up of a few minutes never looks stuck.
step() { echo "run.sh: $*"; }

# Debian packages: the C build (meson, ninja, libmicrohttpd, jansson, cmocka, sqlite) and Python.
APT=(build-essential meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev libcmocka-dev
     libsqlite3-dev python3 python3-venv python3-dev)
command -v node >/dev/null && command -v npm >/dev/null || APT+=(nodejs npm)
missing=()
for p in "${APT[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Python from elsewhere (pyenv, conda) brings its own venv; Debian's python3-venv is then moot.
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "run.sh: please install: ${missing[*]}" >&2
    exit 1
  fi
  step "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
step "venv: .venv (pip, then the package and Notebook 7)"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The build hook skips the front end when python/jupyter_energy/labextension exists (the
# extension template's convention); drop a build older than its sources so it is redone.
built=python/jupyter_energy/labextension/static/style.js
if [ -f "$built" ] && [ -n "$(find labextension/src labextension/style labextension/schema \
	labextension/package.json -newer "$built" -print -quit)" ]; then
  rm -rf python/jupyter_energy/labextension
fi
# The front end as a step of its own (npm install + build:prod in labextension/, with
# JupyterLab's builder from the venv); pip's build hook then finds it built and skips it.
if [ -f "$built" ]; then
  step "front end: already built (python/jupyter_energy/labextension)"
else
  step "front end: npm install and build in labextension/ (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet "jupyterlab>=4.2,<5"
  log=.venv/front-end-build.log
  (cd labextension && npm install --no-audit --no-fund --loglevel=error &&
    PATH="$PWD/../.venv/bin:$PATH" npm run --silent build:prod) >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; echo "run.sh: front-end build failed (log: $log)" >&2; exit 1; }
fi
# energyd + energy (meson, in build-pip/) and the package; the `notebook` extra is Notebook 7,
# the other front end the extension works in.
step "C build and install: energyd and energy (meson + ninja in build-pip/), pip install .[notebook]"
.venv/bin/python -m pip install --quiet ".[notebook]"
step "done: .venv/bin/jupyter lab and .venv/bin/jupyter notebook have the extension"

if [ "$INSTALL_ONLY" = 1 ]; then
  exit 0
fi
ARGS=()
if [ "$(id -u)" -eq 0 ]; then ARGS+=(--allow-root); fi
exec .venv/bin/jupyter lab "${ARGS[@]}" "$@"
