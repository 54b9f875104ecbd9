"""`energy run --idle`: the command's share is of the host total with idle; when it exceeds the
host's energy above idle (a command that keeps the CPU busy without raising the machine's power
above its baseline), the report says why instead of printing a part larger than its whole."""

import json

from emulators import powercap
from test_measure import energy_cli

BUSY = ["python3", "-c", "import time\nt=time.monotonic()\nwhile time.monotonic()-t<0.8: pass"]


def test_share_above_active_energy_is_explained(tmp_path, start_energyd):
    # Constant 20 W: the command's work adds nothing above the idle baseline.
    fake = powercap.FakePowercap(str(tmp_path / "sys"), [
        powercap.Zone("intel-rapl:0", "package-0", 20.0)]).start()
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(3)
    r = energy_cli("run", "--idle", "0.5", "--json", "--", *BUSY, socket=d.socket)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    run = out["runs"][0]
    own = run["attributed"]["joules"]
    active = run["host"]["active_joules"]
    # The share (CPU time of a busy process over 0.8 s at 20 W) is far above the few joules
    # of noise that remain of the host above idle.
    assert own > active + 1.0, (own, active)
    assert own <= run["host"]["joules"]
    assert out["summary"]["attributed"]["share_of"].startswith("host.joules")
    r = energy_cli("run", "--idle", "0.5", "--", *BUSY, socket=d.socket)
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    assert "idle included" in text
    assert "larger than the host's energy above idle" in text, text
    fake.close()
