"""Open as root, then drop: energyd keeps reading root-only RAPL files as an unprivileged user."""

import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ENERGYD, Energyd
from emulators import powercap

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: tests dropping privileges")


def status_ids(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


@root_only
def test_drops_to_nobody_and_keeps_reading(tmp_path, start_energyd):
    nobody = pwd.getpwnam("nobody")
    # energy_uj readable by root only, as on Linux >= 5.10
    fake = powercap.server(tmp_path / "sys", mode=0o400).start()
    d = start_energyd(tmp_path / "sys", user="nobody")
    ids = status_ids(d.pid)
    assert ids["Uid"] == [str(nobody.pw_uid)] * 4
    assert ids["Gid"] == [str(nobody.pw_gid)] * 4
    assert ids["Groups"] == [str(nobody.pw_gid)]
    info = d.get("/api/v1/info")
    assert info["uid"] == nobody.pw_uid and info["user"] == "nobody"
    assert "dropped to nobody" in info["privileges"]
    assert "dropped privileges to nobody" in d.log()
    # The files are still root-only, and yet the values are live.
    st = os.stat(fake.zone("intel-rapl:0").path + "/energy_uj")
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o400
    n0 = d.get("/api/v1/now")
    time.sleep(0.5)
    n1 = d.get("/api/v1/now")
    j0, j1 = (n["channels"]["rapl:package-0"]["joules"] for n in (n0, n1))
    # What the driver wrote between the two samples (their own times), within 1 % and 5 ms of
    # read-to-stamp skew per end at 40 W.
    wrote = fake.energy_between("intel-rapl:0", n0["time"], n1["time"])
    assert wrote > 0.3 * 40.0 * 0.5
    assert abs((j1 - j0) - wrote) <= 0.01 * wrote + 2 * 40.0 * 0.005, (j1 - j0, wrote)
    assert all(c["status"] == "ok" for c in d.get("/api/v1/sources")["channels"])
    # Each thread named itself, after the drop and under the sandbox (ps -L, top -H).
    names = sorted(t.joinpath("comm").read_text().strip()
                   for t in pathlib.Path(f"/proc/{d.pid}/task").iterdir())
    assert {"energyd", "energy-sampler", "energy-accept"} <= set(names), names
    assert all(n == "energyd" or n.startswith(("energy-", "MHD-")) for n in names), names
    fake.close()


@root_only
def test_unprivileged_start_explains_denied_rapl(tmp_path):
    nobody = pwd.getpwnam("nobody")
    # Everything the unprivileged daemon must reach lives in a world-readable directory.
    run = tempfile.mkdtemp(prefix="energyd-test-")
    # Its own directory: energyd refuses a socket directory that other accounts can write.
    os.chmod(run, 0o755)
    os.chown(run, nobody.pw_uid, nobody.pw_gid)
    fake = powercap.server(f"{run}/sys", mode=0o400)
    sock = f"{run}/e.sock"
    log = tmp_path / "log"
    proc = subprocess.Popen([str(ENERGYD), "--sysfs-root", f"{run}/sys", "--listen",
                             f"unix:{sock}", "--state-dir", f"{run}/state"],
                            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                            stderr=open(log, "w"))
    d = Energyd(proc, sock, log)
    try:
        # The socket file appears at bind(), a moment before listen(): wait for an answer.
        for _ in range(500):
            try:
                if d.request("GET", "/api/v1/info")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        src = d.get("/api/v1/sources")
        fam = {f["name"]: f for f in src["families"]}
        assert fam["powercap"]["status"] == "denied"
        assert "CVE-2020-8694" in fam["powercap"]["detail"]
        assert "run energyd as root" in fam["powercap"]["detail"]
        # It falls back to the model, labelled as an estimate.
        assert [c["id"] for c in src["channels"]] == ["model:cpu"]
        assert src["host"]["measured"] is False
        assert "privileges" in d.get("/api/v1/info")
    finally:
        assert d.stop() == 0, d.log()
        fake.close()
        shutil.rmtree(run)


@root_only
def test_refuses_to_run_as_root_user(tmp_path):
    r = subprocess.run([str(ENERGYD), "--user", "root", "--listen", f"unix:{tmp_path}/s",
                        "--state-dir", str(tmp_path / "st")], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1 and "unprivileged" in r.stderr
    r = subprocess.run([str(ENERGYD), "--user", "no-such-user-xyz", "--listen",
                        f"unix:{tmp_path}/s", "--state-dir", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "no such user" in r.stderr
