#!/usr/bin/env bash
# energyd as a system service, for measured instead of estimated figures: builds the Debian
# package (dpkg-buildpackage, in a copy of the tree under /tmp), installs it with dpkg -i and,
# where systemd runs, the package's postinst enables and starts energyd.service. Where systemd
# is not PID 1 (containers, CI), it says how to start energyd by hand, or starts it (--start).
#
#   sudo scripts/install-service.sh             build, install, start where systemd runs
#   sudo scripts/install-service.sh --start     also start energyd in the background without systemd
#   scripts/install-service.sh --build-only DIR build the .debs into DIR, install nothing
# Also: sudo ./run.sh --system [--start]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

BUILD_ONLY=""
START=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build-only) BUILD_ONLY=${2:?--build-only needs a directory}; shift 2 ;;
	--start) START=1; shift ;;
	-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install-service.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
if [ -z "$BUILD_ONLY" ] && [ "$(id -u)" -ne 0 ]; then
	echo "install-service.sh: installing a system service needs root: sudo $0" >&2
	exit 1
fi

# Build dependencies of the package (debian/control), installed when missing.
build_deps=(dpkg-dev debhelper fakeroot meson ninja-build pkgconf libmicrohttpd-dev libjansson-dev
	libcurl4-openssl-dev libexpat1-dev libsqlite3-dev)
missing=()
for p in "${build_deps[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "install-service.sh: please install: ${missing[*]}" >&2
		exit 1
	fi
	echo "install-service.sh: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The build runs in a copy (tracked and new files, not build directories or node_modules), so
# that debian/'s build products never land in the work tree.
work=$(mktemp -d /tmp/energyd-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$top" ls-files -z --cached --others --exclude-standard |
		grep -zv '^labextension/\|^python/\|^tests/ui/' | xargs -0 cp --parents -t "$work/src"
else
	cp -a "$top/." "$work/src"
	rm -rf "$work/src"/build* "$work/src/.venv"
fi
echo "install-service.sh: building the Debian package (log: $work/build.log)"
if ! (cd "$work/src" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
	tail -40 "$work/build.log" >&2
	echo "install-service.sh: dpkg-buildpackage failed" >&2
	exit 1
fi
debs=("$work"/*.deb)
if [ -n "$BUILD_ONLY" ]; then
	mkdir -p "$BUILD_ONLY"
	cp "${debs[@]}" "$work/build.log" "$BUILD_ONLY/"
	echo "install-service.sh: built ${debs[*]##*/} into $BUILD_ONLY"
	exit 0
fi

# libenergy-dev (header, pkg-config) is for building clients; it is kept next to the others.
dpkg -i "$work"/energyd_*.deb "$work"/libenergy0_*.deb
keep=/var/cache/energyd-packages
mkdir -p "$keep"
cp "${debs[@]}" "$keep/"

if [ -d /run/systemd/system ]; then
	# postinst enabled and started the unit (deb-systemd-helper, deb-systemd-invoke).
	systemctl is-active --quiet energyd || systemctl restart energyd
	systemctl --no-pager status energyd | head -5 || true
	echo "install-service.sh: energyd runs as a system service; try: energy status"
	exit 0
fi

cat <<MSG
install-service.sh: installed, but systemd is not running here (PID 1 is $(ps -o comm= -p 1)),
so the service was not started. Start energyd by hand as root, as the unit would:

  systemd-tmpfiles --create energyd.conf      # /run/energyd (root, 0755), /var/lib/energyd
  /usr/sbin/energyd --config=/etc/energyd/energyd.conf

It opens the sensors, drops to the energyd account and serves /run/energyd/energyd.sock;
then, as any user: energy status. Stop it with SIGTERM (kill PID).
The packages are kept in $keep (libenergy-dev for building clients).
MSG
if [ "$START" = 1 ]; then
	systemd-tmpfiles --create energyd.conf 2>/dev/null || install -d -m 0755 /run/energyd
	nohup /usr/sbin/energyd --config=/etc/energyd/energyd.conf >>/var/log/energyd.log 2>&1 &
	echo "install-service.sh: started energyd in the background (pid $!, log /var/log/energyd.log)"
fi
