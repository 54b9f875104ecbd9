"""energyd and the MCP39F511N simulator on a pseudo-terminal (tests/emulators/mcp39f511n.py).

The simulator reports a constant active power per socket; energyd integrates it over time. At a
constant P the energy over a window [t0, t1] is P * (t1 - t0) up to how far each end's sample
time lies from the moment its value was read: a tick is stamped after all channels are read,
which includes one serial exchange (about 2 ms) - we allow 20 ms per end (RATE_BOUND_S) on this
shared machine.
"""

import os
import tempfile
import time

import pytest

from emulators import mcp39f511n, powercap

RATE_BOUND_S = 0.04


@pytest.fixture
def devdir():
    # The device link must stay reachable after energyd drops root (reconnects reopen it):
    # a world-readable directory, unlike pytest's tmp_path.
    d = tempfile.mkdtemp(prefix="energyd-mcp-")
    os.chmod(d, 0o755)
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


def window(d, seconds=1.0):
    t1 = d.get("/api/v1/now")["time"]
    return d.get(f"/api/v1/energy?from={t1 - seconds:.6f}&to={t1:.6f}")["channels"]


def channel(d, cid):
    return {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}[cid]


def test_autodetected_meter_both_channels(tmp_path, start_energyd, devdir):
    sim = mcp39f511n.McpSimulator(os.path.join(devdir, "ttyACM0"), watts=(123.45, 67.89))
    mcp39f511n.usb_sysfs(tmp_path / "sys", "ttyACM0")
    # A second ttyACM device that is not a meter (another vendor): left alone.
    mcp39f511n.usb_sysfs(tmp_path / "sys", "ttyACM1", vendor="2341", product="0043",
                         port="1-2")
    assert (tmp_path / "sys/class/tty/ttyACM1/device/../idVendor").read_text() == "2341\n"
    d = start_energyd(tmp_path / "sys", "--dev-root", devdir)
    src = d.get("/api/v1/sources")
    chans = {c["id"]: c for c in src["channels"]}
    assert [c for c in chans if c.startswith("mcp:")] == ["mcp:ttyACM0:1", "mcp:ttyACM0:2"]
    assert chans["mcp:ttyACM0:1"]["kind"] == "wall"
    assert "power range 19: 0.01 W per count" in chans["mcp:ttyACM0:1"]["description"]
    fam = {f["name"]: f for f in src["families"]}
    assert fam["mcp"]["status"] == "found" and "04d8:00dd" in fam["mcp"]["detail"]
    time.sleep(1.3)
    e = window(d)
    assert abs(e["mcp:ttyACM0:1"]["joules"] - 123.45) <= 123.45 * RATE_BOUND_S
    assert abs(e["mcp:ttyACM0:2"]["joules"] - 67.89) <= 67.89 * RATE_BOUND_S
    # One serial exchange serves both channels of a tick.
    ticks = d.get("/api/v1/now")["tick"]
    assert sim.requests <= ticks + 3
    sim.close()


def test_declared_host_meter_wins_over_psys(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(80.0, 5.0))
    fake = powercap.laptop(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys", "--mcp", link, "--host-meter", "mcp:ttyACM0:1")
    src = d.get("/api/v1/sources")
    assert src["host"]["coverage"] == ["mcp:ttyACM0:1"] and src["host"]["rule"] == "host meter"
    ch = {c["id"]: c for c in src["channels"]}["mcp:ttyACM0:1"]
    assert ch["host_meter"] is True
    # The wall meter includes everything else measured on this machine.
    assert set(ch["includes"]) == {"rapl:package-0", "rapl:core-0", "rapl:uncore-0",
                                   "rapl:psys", "mcp:ttyACM0:2"}
    time.sleep(1.3)
    t1 = d.get("/api/v1/now")["time"]
    e = d.get(f"/api/v1/energy?from={t1 - 1.0:.6f}&to={t1:.6f}")
    assert abs(e["host"]["joules"] - 80.0) <= 80.0 * RATE_BOUND_S
    assert e["host"]["coverage"] == ["mcp:ttyACM0:1"]
    sim.close()
    fake.close()


FAULTS = [
    ("garbage", "no valid reply"),
    ("checksum", "bad length or checksum"),
    ("nak", "NAK (0x15)"),
    ("silence", "no answer within"),
    ("disconnect", "ttyACM0"),
]


def test_faults_degrade_and_recover(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(100.0, 50.0))
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    d.wait_ticks(3)
    seen = []  # (ch1 joules, ch2 joules) over the whole test: must never go down

    def sample():
        now = d.get("/api/v1/now")["channels"]
        seen.append((now["mcp:ttyACM0:1"]["joules"], now["mcp:ttyACM0:2"]["joules"]))

    def wait_for(pred, what, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            sample()
            ch = channel(d, "mcp:ttyACM0:1")
            if pred(ch):
                return ch
            time.sleep(0.03)
        raise AssertionError(f"timed out waiting for {what}: {ch}\n{d.log()}")

    for fault, text in FAULTS:
        sim.set_fault(fault)
        ch = wait_for(lambda c: c["status"] == "degraded", f"{fault} to degrade")
        assert text in ch["error"], (fault, ch["error"])
        # Socket 2 shares the exchange; it may be a tick behind when their backoffs differ.
        deadline = time.time() + 5
        while channel(d, "mcp:ttyACM0:2")["status"] != "degraded" and time.time() < deadline:
            time.sleep(0.03)
        assert channel(d, "mcp:ttyACM0:2")["status"] == "degraded", fault
        # While the meter misbehaves the counters hold still.
        time.sleep(0.3)
        held = d.get("/api/v1/now")["channels"]["mcp:ttyACM0:1"]["joules"]
        sample()
        time.sleep(0.3)
        assert d.get("/api/v1/now")["channels"]["mcp:ttyACM0:1"]["joules"] == held, fault
        if fault == "disconnect":
            sim.reconnect()
        else:
            sim.set_fault(None)
        wait_for(lambda c: c["status"] == "ok" and c["error"] is None, f"recovery from {fault}")
        # Back to counting at the profile's power, with no jump for the time it was down: at
        # most 100 W over the samples' time span (+ 20 ms per end, as in the rate tests); at
        # least most of it (a tick lost to scheduling on this shared machine costs 0.1 s).
        before = d.wait_ticks(2)
        time.sleep(1.0)
        after = d.get("/api/v1/now")
        span = after["time"] - before["time"]
        gained = (after["channels"]["mcp:ttyACM0:1"]["joules"] -
                  before["channels"]["mcp:ttyACM0:1"]["joules"])
        assert 100.0 * (span - 0.3) <= gained <= 100.0 * (span + RATE_BOUND_S), (fault, gained)
    assert d.proc.poll() is None  # still running
    for (a1, a2), (b1, b2) in zip(seen, seen[1:]):
        assert b1 >= a1 and b2 >= a2  # monotonic throughout
    assert "runtime error" not in d.log()
    sim.close()


def test_garbage_before_reply_is_skipped(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(42.0, 0.0))
    sim.set_fault("garbage_prefix")  # noise, then the valid reply, on every exchange
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    time.sleep(1.3)
    assert channel(d, "mcp:ttyACM0:1")["status"] == "ok"
    assert sim.garbage_sent > 0
    e = window(d)
    assert abs(e["mcp:ttyACM0:1"]["joules"] - 42.0) <= 42.0 * RATE_BOUND_S
    sim.close()


def served_joules(sim, ch, t0, t1, rule="trapezoid"):
    """Energy of channel ch (1 or 2) over [t0, t1] from what the simulator served: its power
    readings joined linearly (trapezoid, what energyd's integration must give) or held until
    the next reading (rectangle, the rule energyd must not use)."""
    pts = [(t, w[ch - 1]) for t, *w in sim.served]
    # energyd stamps a sample just after its read: hold the readings out to both window ends.
    pts = [(min(t0, pts[0][0]) - 1, pts[0][1])] + pts + [(max(t1, pts[-1][0]) + 1, pts[-1][1])]
    total = 0.0
    for (ta, pa), (tb, pb) in zip(pts, pts[1:]):
        lo, hi = max(ta, t0), min(tb, t1)
        if hi <= lo:
            continue
        if rule == "rectangle":
            total += pa * (hi - lo)
            continue

        def at(t):
            return pa + (pb - pa) * (t - ta) / (tb - ta)

        total += (at(lo) + at(hi)) / 2 * (hi - lo)
    return total


def now_watts(d, cid, ticks=3):
    d.wait_ticks(ticks)
    return d.get("/api/v1/now")["channels"][cid]["watts"]


def test_factory_ranges_read_true_watts_and_energy(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(123.45, 42.0))
    assert sim.registers[0xAE:0xB1] == bytes([18, 12, 19])  # the factory Range bytes
    assert sim.registers[0x16:0x1A] == (12345).to_bytes(4, "little")
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    for k in (1, 2):
        assert "power range 19: 0.01 W per count (range register 0x00%s)" % (
            "AE" if k == 1 else "BE") in channel(d, f"mcp:ttyACM0:{k}")["description"]
    time.sleep(1.8)
    # Watts of a constant load: the served value to 0.5 %.
    assert abs(now_watts(d, "mcp:ttyACM0:1") - 123.45) <= 123.45 * 0.005
    assert abs(now_watts(d, "mcp:ttyACM0:2") - 42.0) <= 42.0 * 0.005
    # Energy over 1.5 s: what the meter served over that time, to 1 %.
    t1 = d.get("/api/v1/now")["time"]
    e = d.get(f"/api/v1/energy?from={t1 - 1.5:.6f}&to={t1:.6f}")["channels"]
    for k in (1, 2):
        want = served_joules(sim, k, t1 - 1.5, t1)
        assert want > 0 and abs(e[f"mcp:ttyACM0:{k}"]["joules"] - want) <= want * 0.01, (k, e)
    sim.close()


def test_power_range_17_reads_a_quarter(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(123.45, 42.0))  # the same raw counts...
    sim.set_range(1, power=17)  # ...at 2.5 mW per count
    sim.set_range(2, power=17)
    assert sim.watts == (12345 * 0.0025, 4200 * 0.0025)
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    assert "power range 17: 0.0025 W per count" in channel(d, "mcp:ttyACM0:1")["description"]
    assert abs(now_watts(d, "mcp:ttyACM0:1") - 123.45 / 4) <= 123.45 / 4 * 0.005
    assert abs(now_watts(d, "mcp:ttyACM0:2") - 42.0 / 4) <= 42.0 / 4 * 0.005
    sim.close()


def test_two_channels_with_their_own_ranges(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link)
    sim.set_range(1, power=17)  # 2.5 mW per count
    sim.set_range(2, power=21)  # 40 mW per count
    sim.set_counts(20_000, 2_000)  # 50 W and 80 W
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    assert abs(now_watts(d, "mcp:ttyACM0:1") - 50.0) <= 50.0 * 0.005
    assert abs(now_watts(d, "mcp:ttyACM0:2") - 80.0) <= 80.0 * 0.005
    assert "power range 21: 0.04 W per count" in channel(d, "mcp:ttyACM0:2")["description"]
    # The ranges are read again on reconnect: a meter recalibrated while unplugged.
    sim.set_fault("disconnect")
    deadline = time.time() + 10
    while channel(d, "mcp:ttyACM0:1")["status"] == "ok" and time.time() < deadline:
        time.sleep(0.05)
    sim.set_range(1, power=19)  # now 10 mW per count: 200 W
    sim.reconnect()
    while channel(d, "mcp:ttyACM0:1")["status"] != "ok" and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.2)  # `now` watts is the mean over the last second
    assert abs(now_watts(d, "mcp:ttyACM0:1") - 200.0) <= 200.0 * 0.005
    assert "power range 19" in channel(d, "mcp:ttyACM0:1")["description"]
    sim.close()


def test_implausible_range_falls_back_to_factory_scaling(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link)
    sim.set_range(1, power=40)  # 10 mW x 2^21 per count: not a meter's calibration
    sim.set_counts(2_500, 2_500)
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    desc = channel(d, "mcp:ttyACM0:1")["description"]
    assert "power range 40" in desc and "outside the plausible 12..26" in desc, desc
    assert "factory scaling 0.01 W per count" in desc
    assert abs(now_watts(d, "mcp:ttyACM0:1") - 25.0) <= 25.0 * 0.005
    sim.close()


def test_export_counts_as_zero_and_is_reported(tmp_path, start_energyd, devdir):
    """Active power is a magnitude with its sign in System Status: an export reading (sign bit
    0) must not add the magnitude to the consumed-energy counter."""
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(60.0, -30.0))
    assert sim.registers[0x1A:0x1E] == (3000).to_bytes(4, "little")  # magnitude only
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    time.sleep(1.3)
    now = d.get("/api/v1/now")["channels"]
    assert now["mcp:ttyACM0:2"]["joules"] == 0.0 and now["mcp:ttyACM0:2"]["watts"] == 0.0
    assert abs(now["mcp:ttyACM0:1"]["watts"] - 60.0) <= 60.0 * 0.005
    assert "export reading(s)" in channel(d, "mcp:ttyACM0:2")["description"]
    assert "export" not in channel(d, "mcp:ttyACM0:1")["description"]
    sim.close()


def test_power_step_is_integrated_as_a_trapezoid(tmp_path, start_energyd, devdir):
    """A step from 150 W to 10 W between two reads: energyd joins the readings (trapezoid);
    holding each reading until the next (rectangle) gives a figure 7 J (half a 100 ms interval
    at 140 W) away, more than the tolerance."""
    link = os.path.join(devdir, "ttyACM0")
    sim = mcp39f511n.McpSimulator(link, watts=(150.0, 0.0))
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    time.sleep(1.0)
    t0 = d.get("/api/v1/now")["time"]
    time.sleep(0.75)
    sim.set_watts(10.0, 0.0)
    time.sleep(1.0)
    t1 = d.get("/api/v1/now")["time"]
    got = d.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")["channels"]["mcp:ttyACM0:1"]
    trap = served_joules(sim, 1, t0, t1)
    rect = served_joules(sim, 1, t0, t1, rule="rectangle")
    assert abs(trap - rect) >= 2.0, (trap, rect)  # the step fell between two reads
    assert abs(got["joules"] - trap) <= abs(trap - rect) / 3, (got, trap, rect)
    sim.close()


def test_named_meter_absent_at_start(tmp_path, start_energyd, devdir):
    link = os.path.join(devdir, "ttyACM0")
    d = start_energyd(tmp_path / "sys", "--mcp", link)
    ch = channel(d, "mcp:ttyACM0:1")
    assert ch["status"] == "degraded" and "unplugged?" in ch["error"]
    fam = {f["name"]: f for f in d.get("/api/v1/sources")["families"]}
    assert fam["mcp"]["status"] == "error" and "No such file" in fam["mcp"]["detail"]
    # Plugged in later: picked up by itself.
    sim = mcp39f511n.McpSimulator(link, watts=(10.0, 20.0))
    deadline = time.time() + 15
    while time.time() < deadline and channel(d, "mcp:ttyACM0:1")["status"] != "ok":
        time.sleep(0.1)
    assert channel(d, "mcp:ttyACM0:1")["status"] == "ok"
    sim.close()
