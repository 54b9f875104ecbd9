#!/usr/bin/env bash
# Installs what building and testing Jupyter Energy needs on Debian 12, once: the Debian
# packages (only the missing ones) and a Python virtual environment in .venv.
#   scripts/deps.sh            build + test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	# C build
	gcc meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev libcmocka-dev clang-format
	# Python
	python3 python3-venv
	# tests
	procps
)
# Extra packages named by other parts of the build (one per line, # comments).
for extra in scripts/deps.d/*.txt; do
	[ -e "$extra" ] || continue
	while read -r line; do
		line=${line%%#*}
		for p in $line; do packages+=("$p"); done
	done <"$extra"
done

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "deps: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
	python3 -m venv .venv
fi
stamp=.venv/.requirements-test.stamp
if [ ! -f "$stamp" ] || [ requirements-test.txt -nt "$stamp" ]; then
	.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
	touch "$stamp"
fi
