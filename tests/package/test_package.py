"""The Debian package end to end, as root (test.sh step "package"): build the .debs
(scripts/install-service.sh --build-only, in a copy under /tmp), lintian, dpkg -i, the files and
the energyd account, the unit (systemd-analyze verify, offline security score), the man pages,
energyd started the way the unit's ExecStart starts it (on emulated root-only RAPL, with a
temporary runtime directory so that nothing ever answers on /run/energyd/energyd.sock), then
dpkg --purge leaves nothing behind but the account (which this test removes if it made it).

ENERGY_DEBS=DIR uses .debs built before instead of building them."""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from emulators import powercap  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: installs a package")

PACKAGES = ["energyd", "libenergy0", "libenergy-dev"]
UNIT = "/lib/systemd/system/energyd.service"
MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                           text=True).stdout.strip()
FILES = [
    "/usr/sbin/energyd", "/usr/bin/energy", UNIT, "/usr/lib/sysusers.d/energyd.conf",
    "/usr/lib/tmpfiles.d/energyd.conf", "/lib/udev/rules.d/60-energyd.rules",
    "/etc/energyd/energyd.conf", "/usr/share/man/man8/energyd.8.gz",
    "/usr/share/man/man1/energy.1.gz", "/usr/share/man/man5/energyd.conf.5.gz",
    f"/usr/lib/{MULTIARCH}/libenergy.so.0", f"/usr/lib/{MULTIARCH}/libenergy.so",
    f"/usr/lib/{MULTIARCH}/pkgconfig/libenergy.pc", "/usr/include/energy.h",
    "/usr/include/energy_util.h",
]
# What the package may create outside its own file list, all gone after the purge.
LEFTOVERS = ["/var/lib/energyd", "/run/energyd", "/etc/energyd",
             "/etc/systemd/system/multi-user.target.wants/energyd.service",
             "/var/lib/systemd/deb-systemd-helper-enabled/energyd.service.dsh-also",
             "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/energyd.service"]


def run(*cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, **kw)


def installed(pkg: str) -> bool:
    r = run("dpkg-query", "-W", "-f=${Status}", pkg)
    return r.returncode == 0 and "ok installed" in r.stdout


def account_exists() -> bool:
    return run("getent", "passwd", "energyd").returncode == 0


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    prebuilt = os.environ.get("ENERGY_DEBS")
    out = Path(prebuilt) if prebuilt else tmp_path_factory.mktemp("debs")
    if not prebuilt:
        r = run(str(ROOT / "scripts" / "install-service.sh"), "--build-only", str(out),
                timeout=1200)
        assert r.returncode == 0, r.stdout + r.stderr
    found = {p: glob.glob(str(out / f"{p}_*.deb")) for p in PACKAGES}
    assert all(len(v) == 1 for v in found.values()), found
    return {p: v[0] for p, v in found.items()}


@pytest.fixture(scope="module")
def pkg(debs):
    """The three packages installed for the module; purged (and the account removed when this
    test made it) at the end whatever happened."""
    if any(installed(p) for p in PACKAGES):
        pytest.skip("energyd is installed on this machine already: not touching it")
    # The purge removes these: never while they belong to an energyd started without the package.
    busy = [d for d in ("/var/lib/energyd", "/run/energyd") if os.path.lexists(d)]
    if busy:
        pytest.skip(f"{', '.join(busy)} exist without the package (another energyd's): "
                    "not touching them")
    had_account = account_exists()
    r = run("dpkg", "-i", *debs.values())
    state = {"debs": debs, "install": r}
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield state
    finally:
        if any(installed(p) for p in PACKAGES):
            run("dpkg", "--purge", *PACKAGES)
        if not had_account and account_exists():
            r = run("userdel", "energyd")
            run("groupdel", "energyd")
            if r.returncode != 0:  # e.g. another energyd on this machine dropped to it
                warnings.warn(f"could not remove the energyd account: {r.stderr.strip()}")


def test_lintian_has_no_errors(debs):
    r = run("lintian", "--tag-display-limit", "0", *debs.values())
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], r.stdout
    # Exit 0 or 1 (warnings only); 2 would mean lintian itself failed.
    assert r.returncode in (0, 1) and "E:" not in r.stderr, r.stderr


def test_postinst_enables_and_starts_only_under_systemd(pkg):
    assert pkg["install"].returncode == 0, pkg["install"].stderr
    assert all(installed(p) for p in PACKAGES)
    # deb-systemd-helper enables the unit whether or not systemd runs (a symlink)...
    assert os.path.islink("/etc/systemd/system/multi-user.target.wants/energyd.service")
    if os.path.isdir("/run/systemd/system"):
        return
    # ...and without systemd as PID 1 deb-systemd-invoke starts nothing, and dpkg succeeds.
    assert not os.path.exists("/run/energyd/energyd.sock")
    running = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/exe") == "/usr/sbin/energyd":
                running.append(pid)
        except OSError:
            pass
    assert running == []


def test_files_and_account(pkg):
    missing = [f for f in FILES if not os.path.exists(f)]
    assert missing == []
    pw = pwd.getpwnam("energyd")
    assert pw.pw_uid != 0 and pw.pw_shell.endswith("nologin")
    assert pw.pw_dir == "/var/lib/energyd"
    st = os.stat("/var/lib/energyd")
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
    conf = Path("/etc/energyd/energyd.conf").read_text()
    assert re.search(r"^user = energyd$", conf, re.M)
    # The configuration file is a conffile: kept on upgrade, removed on purge.
    assert "/etc/energyd/energyd.conf" in run("dpkg-query", "-W", "-f=${Conffiles}",
                                               "energyd").stdout
    # No rpath into the system library directory (Debian policy).
    assert "RUNPATH" not in run("readelf", "-d", "/usr/sbin/energyd").stdout


def test_dev_package_builds_a_client(pkg, tmp_path):
    src = tmp_path / "c.c"
    src.write_text('#include <energy.h>\n#include <stdio.h>\n'
                   'int main(void) { struct energy_client *c;\n'
                   '  int rc = energy_client_open("unix:/nonexistent.sock", &c);\n'
                   '  if (rc == 0) { printf("%s\\n", energy_client_address(c));\n'
                   '    energy_client_close(c); }\n  return rc != 0; }\n')
    flags = run("pkg-config", "--cflags", "--libs", "libenergy")
    assert flags.returncode == 0, flags.stderr
    r = run("cc", str(src), "-o", str(tmp_path / "c"), *shlex.split(flags.stdout))
    assert r.returncode == 0, r.stderr
    out = run(str(tmp_path / "c"))
    assert out.returncode == 0 and "nonexistent.sock" in out.stdout, out


def test_man_pages(pkg):
    for name, section in (("energyd", "8"), ("energy", "1"), ("energyd.conf", "5")):
        where = run("man", "-w", section, name)
        assert where.returncode == 0 and where.stdout.strip().endswith(f"{name}.{section}.gz")
        lint = run("mandoc", "-T", "lint", "-W", "warning", where.stdout.strip())
        assert lint.returncode == 0 and lint.stdout == "", lint.stdout + lint.stderr


def test_unit_verify_and_security_score(pkg):
    r = run("systemd-analyze", "verify", "--man=no", UNIT)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    r = run("systemd-analyze", "security", "--offline=true", "--no-pager", UNIT)
    m = re.search(r"Overall exposure level for energyd\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 3.0, r.stdout
    unit = Path(UNIT).read_text()
    for directive in ("Type=notify", "RuntimeDirectory=energyd", "StateDirectory=energyd",
                      "NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload="):
        assert re.search(rf"^{directive}", unit, re.M), directive


def exec_start() -> list[str]:
    line = re.search(r"^ExecStart=(.+)$", Path(UNIT).read_text(), re.M).group(1)
    return shlex.split(line)


def get(sock: str, path: str, user: int | None = None):
    """GET over the unix socket, in a child running as `user` when given."""
    code = ("import http.client,json,socket,sys\n"
            "class C(http.client.HTTPConnection):\n"
            "  def connect(self):\n"
            "    self.sock=socket.socket(socket.AF_UNIX); self.sock.settimeout(10)\n"
            "    self.sock.connect(sys.argv[1])\n"
            "c=C('energyd'); c.request('GET', sys.argv[2]); r=c.getresponse()\n"
            "print(r.status); print(r.read().decode())\n")
    # Debian's python3: the test's own interpreter may lie where that user cannot read.
    r = subprocess.run(["/usr/bin/python3", "-c", code, sock, path], capture_output=True, text=True,
                       timeout=30, user=user, group=None if user is None else user,
                       extra_groups=None if user is None else [])
    assert r.returncode == 0, r.stderr
    status, body = r.stdout.split("\n", 1)
    return int(status), json.loads(body)


def test_energyd_started_as_the_unit_does(pkg, tmp_path):
    pw = pwd.getpwnam("energyd")
    nobody = pwd.getpwnam("nobody")
    # Root-only RAPL files (as on Linux >= 5.10): only the root start can open them.
    fake = powercap.server(tmp_path / "sys", mode=0o400).start()
    # A runtime directory as RuntimeDirectory= makes it (root, 0755), but temporary.
    runtime = tempfile.mkdtemp(prefix="energyd-runtime-")
    os.chmod(runtime, 0o755)
    sock = f"{runtime}/energyd.sock"
    # The service manager's socket, in the abstract namespace as systemd may give it.
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_name = f"energyd-test-{os.getpid()}-{time.monotonic_ns()}"
    notify.bind("\0" + notify_name)
    notify.settimeout(30)
    cmd = exec_start() + ["--sysfs-root", str(tmp_path / "sys"), f"--listen=unix:{sock}"]
    log = open(tmp_path / "energyd.log", "w")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": "@" + notify_name}
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd="/")
    try:
        ready = notify.recv(4096).decode()
        assert "READY=1" in ready.split("\n"), ready
        # READY comes after the first sample and once the socket answers.
        status, now = get(sock, "/api/v1/now")
        assert status == 200 and now["tick"] >= 1
        ids = {}
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            ids[key] = value.split()
        assert ids["Uid"] == [str(pw.pw_uid)] * 4 and ids["Gid"] == [str(pw.pw_gid)] * 4
        st = os.stat(sock)
        assert st.st_mode & 0o777 == 0o666
        assert os.stat(runtime).st_uid == 0  # the socket directory stays root's

        # An unprivileged user reads measured figures through the socket.
        status, info = get(sock, "/api/v1/info", user=nobody.pw_uid)
        assert status == 200 and info["user"] == "energyd" and info["uid"] == pw.pw_uid
        time.sleep(1.0)
        _, a = get(sock, "/api/v1/now", user=nobody.pw_uid)
        time.sleep(1.0)
        _, b = get(sock, "/api/v1/now", user=nobody.pw_uid)
        watts = (b["host"]["joules"] - a["host"]["joules"]) / (b["time"] - a["time"])
        expected = sum(z.watts for z in fake.zones.values() if z.name.startswith(("package",
                                                                                   "dram")))
        assert b["host"]["measured"] is True
        assert watts == pytest.approx(expected, rel=0.1)
        # `energy status` as that user, the way a user types it.
        r = subprocess.run(["/usr/bin/energy", "--socket", f"unix:{sock}", "status"],
                           capture_output=True, text=True, timeout=30, user=nobody.pw_uid,
                           group=nobody.pw_gid, extra_groups=[])
        assert r.returncode == 0, r.stderr
        assert "rapl:package-0" in r.stdout and "measured" in r.stdout, r.stdout
        # The long-term record is written by the energyd account into the state directory.
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists("/var/lib/energyd/energy.db"):
            time.sleep(0.2)
        assert os.stat("/var/lib/energyd/energy.db").st_uid == pw.pw_uid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        fake.close()
        log.close()
        for f in os.listdir(runtime):
            os.unlink(os.path.join(runtime, f))  # the socket; systemd removes RuntimeDirectory
        os.rmdir(runtime)
    stopping = notify.recv(4096).decode()
    notify.close()
    assert "STOPPING=1" in stopping.split("\n"), stopping
    assert rc == 0, (tmp_path / "energyd.log").read_text()


def test_purge_leaves_nothing_but_the_account(pkg):
    files = set()
    for p in PACKAGES:
        files |= set(run("dpkg-query", "-L", p).stdout.split())
    r = run("dpkg", "--purge", *PACKAGES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not any(installed(p) for p in PACKAGES)
    # Directories are shared (and /lib is a symlink to usr/lib): only files and links count.
    left = [f for f in sorted(files) if not os.path.isdir(f) and os.path.lexists(f)]
    assert left == []
    assert [f for f in LEFTOVERS if os.path.lexists(f)] == []
    # Debian keeps system accounts on purge (a later account must not inherit the uid's
    # files); the fixture removes it when this test created it.
    assert account_exists()
