"""The record under any state directory: energyd works inside its state directory, so that the
account it drops to needs rights on that directory only, not on its parents; a record that
cannot be opened at start stops energyd with a message naming the path and the fix."""

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import ENERGYD
from emulators import powercap

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: tests dropping privileges")


def uj(joules):
    return round(joules * 1e6)


@pytest.fixture
def private_parent():
    """A directory only root may enter (as mktemp -d makes it), holding the state directory."""
    parent = tempfile.mkdtemp(prefix="energyd-private-")
    os.chmod(parent, 0o700)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@root_only
def test_state_dir_under_root_only_parent_records_across_restart(tmp_path, start_energyd,
                                                                  private_parent):
    state = os.path.join(private_parent, "state")
    fake = powercap.server(tmp_path / "sys")  # counters move only when told: exact figures
    d1 = start_energyd(tmp_path / "sys", "--state-dir", state, "--store-batch", "0.5",
                       user="nobody")
    assert os.stat(state).st_uid == pwd.getpwnam("nobody").pw_uid
    d1.wait_ticks(2)
    fake.advance("package-0", 1_500_000)
    n1 = d1.wait_ticks(3)
    assert uj(n1["channels"]["rapl:package-0"]["joules_total"]) == 1_500_000
    info = d1.get("/api/v1/info")
    assert info["store"]["status"] == "ok", info["store"]
    assert info["store_path"] == os.path.join(state, "energy.db")
    assert d1.stop() == 0
    assert os.path.exists(os.path.join(state, "energy.db"))

    d2 = start_energyd(tmp_path / "sys", "--state-dir", state, "--store-batch", "0.5",
                       user="nobody")
    d2.wait_ticks(2)
    fake.advance("package-0", 250_000)
    n2 = d2.wait_ticks(3)
    pkg = n2["channels"]["rapl:package-0"]
    # This run saw 0.25 J; the record's total continues from the first run's 1.5 J.
    assert uj(pkg["joules"]) == 250_000
    assert uj(pkg["joules_total"]) == 1_750_000
    assert d2.get("/api/v1/info")["store"]["status"] == "ok"


@root_only
def test_unwritable_state_dir_refuses_to_start(tmp_path, start_energyd, private_parent):
    state = os.path.join(private_parent, "state")
    os.mkdir(state, 0o755)  # exists, owned by root: nobody cannot create energy.db in it
    os.makedirs(tmp_path / "sys")
    run = subprocess.run([str(ENERGYD), "--sysfs-root", str(tmp_path / "sys"), "--listen",
                          f"unix:{tmp_path}/refused.sock", "--state-dir", state, "--user",
                          "nobody"], capture_output=True, text=True, timeout=30)
    msg = run.stderr
    assert run.returncode == 1, msg
    assert f"cannot open the long-term record {state}/energy.db" in msg, msg
    assert "must be writable by the account energyd runs as" in msg and "--store try" in msg

    # --store try: starts, with the record degraded and retried.
    d = start_energyd(tmp_path / "sys", "--state-dir", state, "--store", "try",
                      "--store-retry", "0.5", user="nobody")
    info = d.get("/api/v1/info")
    assert info["store"]["status"] == "degraded", info["store"]
    assert info["store_path"] == os.path.join(state, "energy.db")
