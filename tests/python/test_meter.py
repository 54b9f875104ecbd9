"""The pyJoules-shaped Python API against a real energyd on emulated RAPL.

Emulated machine: package-0 at BASE_W (changed by a test while its "workload" runs) and dram at
DRAM_W. The host total is package + dram. A segment's energy must lie within what energyd can
have read of the emulator's writes over the segment's interval at its sample times, plus 1 %
(emulated_energy.written_bounds: each sample's counter is bounded by the writes around it, as
the log places them, and SKEW_S from read to stamp). The bounds are as wide as the writes around
each end (up to about 0.125 J an end at the driver's 5 ms step, more after a late step); a
missing channel (20 %) or a wrong unit is far outside them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from types import SimpleNamespace

import pytest

import emulated_energy
from emulated_energy import DRAM, HOST, PKG
from energyd_testing import Energyd, FakePowercap, Zone
from jupyter_energy import (CSVHandler, EnergyContext, EnergyMeter, JSONLinesHandler,
                            PandasHandler, PrintHandler, measure_energy, measure_idle)

BASE_W = 20.0
DRAM_W = 5.0
SLEEP_LATE_S = 1.0  # how late a sleep may end on a machine loaded by stress-ng


@pytest.fixture
def machine(tmp_path, monkeypatch):
    fake = FakePowercap(str(tmp_path / "sys"), [
        Zone("intel-rapl:0", "package-0", BASE_W,
             children=[Zone("intel-rapl:0:0", "dram", DRAM_W)])], period_s=0.005).start()
    d = Energyd(str(tmp_path / "e.sock"), tmp_path / "state", str(tmp_path / "sys"))
    monkeypatch.setenv("ENERGYD_SOCKET", d.sock)  # found the way the CLI finds it
    yield fake
    d.stop()
    fake.close()


def bounds_of(fake, zones, seg):
    """emulated_energy.written_bounds over a sample's interval."""
    return emulated_energy.written_bounds(fake, zones, seg.timestamp, seg.timestamp + seg.duration,
                                          os.environ["ENERGYD_SOCKET"])


def near(joules, fake, zones, seg, watts):
    """seg: a sample (timestamp, duration); watts: the zones' power."""
    return emulated_energy.near(joules, fake, zones, seg.timestamp,
                                seg.timestamp + seg.duration, watts, os.environ["ENERGYD_SOCKET"])


def test_decorator(machine):
    pandas = PandasHandler()

    @measure_energy(handler=pandas, channels=["rapl:package-0"])
    def work(x):
        time.sleep(0.3)
        return x * 2

    assert work(21) == 42
    assert work.__name__ == "work"
    df = pandas.get_dataframe()
    assert len(df) == 1 and df["tag"][0] == "work"
    assert "rapl:dram-0" not in df.columns  # only the channel asked for
    dur = df["duration_s"][0]
    assert 0.3 <= dur < 0.3 + SLEEP_LATE_S  # never early; late on a loaded machine
    seg = SimpleNamespace(timestamp=df["timestamp"][0], duration=dur)
    assert near(df["rapl:package-0"][0], machine, [PKG], seg, BASE_W)
    assert near(df["host_joules"][0], machine, HOST, seg, BASE_W + DRAM_W)


def test_context_manager_with_three_tags(machine):
    with EnergyContext(start_tag="load") as ctx:
        time.sleep(0.2)
        ctx.record("train")
        time.sleep(0.4)
        ctx.record("save")
        time.sleep(0.1)
    trace = ctx.trace
    assert [s.tag for s in trace] == ["load", "train", "save"]
    for s, slept in zip(trace, (0.2, 0.4, 0.1)):
        assert slept <= s.duration < slept + SLEEP_LATE_S
        assert near(s.energy["rapl:package-0"], machine, [PKG], s, BASE_W)
        assert near(s.energy["rapl:dram-0"], machine, [DRAM], s, DRAM_W)
        assert near(s.host_joules, machine, HOST, s, BASE_W + DRAM_W)
        assert s.host_measured and s.measured == {"rapl:package-0": True, "rapl:dram-0": True}
        assert s.host_coverage == ["rapl:package-0", "rapl:dram-0"]
    # Segments follow each other without gaps.
    assert trace[1].timestamp == pytest.approx(trace[0].timestamp + trace[0].duration, abs=0.01)


def test_meter_with_resume(machine):
    meter = EnergyMeter()
    meter.start("first")
    time.sleep(0.2)
    meter.stop()
    time.sleep(0.3)  # not measured
    meter.resume("second")
    time.sleep(0.2)
    meter.record("third")
    time.sleep(0.1)
    meter.stop()
    trace = meter.get_trace()
    assert [s.tag for s in trace] == ["first", "second", "third"]
    assert trace[1].timestamp >= trace[0].timestamp + trace[0].duration + 0.3
    total = sum(s.host_joules for s in trace)
    bounds = [bounds_of(machine, HOST, s) for s in trace]
    lo, hi = sum(b[0] for b in bounds), sum(b[1] for b in bounds)
    assert 0.99 * lo <= total <= 1.01 * hi, (total, lo, hi)
    with pytest.raises(RuntimeError):
        meter.stop()
    with pytest.raises(RuntimeError):
        EnergyMeter().resume("x")


def test_unknown_channel_is_an_error(machine):
    meter = EnergyMeter(channels=["gpu:9"])
    meter.start("x")
    meter.stop()
    with pytest.raises(ValueError, match="gpu:9"):
        meter.get_trace()


def test_idle_baseline_leaves_the_active_energy(machine):
    t_before = time.time()
    idle = measure_idle(0.6)
    t_after = time.time()
    # The baseline's window lies inside [t_before, t_after], a few ms from each end (the
    # client's round trips): against the mean power the emulator wrote over that span, 1 % plus
    # 10 ms of skew per end spread over the 0.6 s (3.3 %).
    span = t_after - t_before
    for zones, got, w in ((HOST, idle.host_watts, BASE_W + DRAM_W),
                          ([PKG], idle.watts["rapl:package-0"], BASE_W)):
        mean = sum(machine.energy_between(z, t_before, t_after) for z in zones) / span
        assert abs(got - mean) <= 0.01 * mean + 2 * w * 0.01 / 0.6, (zones, got, mean)
    extra_w = 30.0
    pkg = machine.zone("package-0")
    with EnergyContext(start_tag="busy") as ctx:
        t = time.monotonic()
        pkg.watts = BASE_W + extra_w  # the workload draws 30 W more while it runs
        time.sleep(0.5)
        pkg.watts = BASE_W
        load_s = time.monotonic() - t
    s = ctx.trace[0]
    # Before removal: what the emulator wrote over the segment (the step inside it included).
    assert near(s.energy["rapl:package-0"], machine, [PKG], s, BASE_W + extra_w)
    before = dict(s.energy)
    trace = ctx.trace.remove_idle(idle)
    assert trace[0] is s
    # energyd subtracts the baseline's power times the segment's own interval (its ends as
    # sent, to the microsecond): the figures are energyd's joules_above_idle.
    for ch in ("rapl:package-0", "rapl:dram-0"):
        assert s.energy[ch] == pytest.approx(before[ch] - idle.watts[ch] * s.duration,
                                             abs=idle.watts[ch] * 2e-6)
    # What remains is the workload's extra energy: what the emulator wrote minus its base
    # power over the segment (the baseline's error, 3.3 % of 20 W, over the segment included).
    lo, hi = bounds_of(machine, [PKG], s)
    base = idle.watts["rapl:package-0"] * s.duration
    baseline_error = 0.033 * BASE_W * s.duration
    assert 0.99 * (lo - base) - baseline_error <= s.energy["rapl:package-0"] <= \
        1.01 * (hi - base) + baseline_error, (s.energy, lo - base, hi - base, load_s)
    # remove_idle takes power, also as a plain dict, and subtracts power x each duration
    with EnergyContext(start_tag="quiet") as ctx2:
        time.sleep(0.3)
    q = ctx2.trace[0]
    before = q.energy["rapl:package-0"]
    ctx2.trace.remove_idle({"rapl:package-0": 10.0})
    assert q.energy["rapl:package-0"] == pytest.approx(before - 10.0 * q.duration, abs=2e-5)
    with pytest.raises(ValueError):
        ctx2.trace.remove_idle([{}, {}])


def test_clean_data_drops_negative_samples(machine):
    with EnergyContext(start_tag="a") as ctx:
        time.sleep(0.1)
        ctx.record("b")
        time.sleep(0.1)
    trace = ctx.trace
    trace[0].energy["rapl:package-0"] = -1.0
    assert [s.tag for s in trace.clean_data()] == ["b"]
    assert len(trace.clean_data(guards=[lambda s: s.tag != "b"])) == 0


def _two_samples():
    with EnergyContext(start_tag="one") as ctx:
        time.sleep(0.15)
        ctx.record("two")
        time.sleep(0.25)
    return ctx.trace


def test_csv_handler_round_trip(machine, tmp_path):
    trace = _two_samples()
    path = tmp_path / "e.csv"
    h = CSVHandler(str(path))
    h.process(trace)
    h.save_data()
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0]) == ["timestamp", "tag", "duration_s", "host_joules", "host_measured",
                             "process_joules", "emissions_g", "rapl:package-0", "rapl:dram-0"]
    for row, s in zip(rows, trace):
        assert row["tag"] == s.tag
        assert float(row["timestamp"]) == s.timestamp
        assert float(row["duration_s"]) == s.duration
        assert float(row["host_joules"]) == s.host_joules
        assert row["host_measured"] == "True"
        assert float(row["rapl:package-0"]) == s.energy["rapl:package-0"]
        assert float(row["rapl:dram-0"]) == s.energy["rapl:dram-0"]
        assert row["process_joules"] == ("" if s.process_joules is None else str(s.process_joules))
        assert near(float(row["host_joules"]), machine, HOST, s, BASE_W + DRAM_W)


def test_pandas_handler_columns_and_dtypes(machine):
    trace = _two_samples()
    h = PandasHandler()
    h.process(trace)
    df = h.get_dataframe()
    assert list(df.columns) == ["timestamp", "tag", "duration_s", "host_joules", "host_measured",
                                "process_joules", "emissions_g", "rapl:package-0", "rapl:dram-0"]
    assert str(df["tag"].dtype) == "string"
    assert str(df["host_measured"].dtype) == "bool"
    for col in ("timestamp", "duration_s", "host_joules", "process_joules", "emissions_g",
                "rapl:package-0", "rapl:dram-0"):
        assert str(df[col].dtype) == "float64", col
    assert list(df["tag"]) == ["one", "two"]
    assert df["host_joules"].tolist() == [s.host_joules for s in trace]


def test_jsonlines_and_print_handlers(machine, tmp_path):
    trace = _two_samples()
    path = tmp_path / "e.jsonl"
    JSONLinesHandler(str(path)).process(trace)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [x["tag"] for x in lines] == ["one", "two"]
    for x, s in zip(lines, trace):
        assert x["energy"] == s.energy and x["host_joules"] == s.host_joules
        assert x["duration_s"] == s.duration and x["measured"]["rapl:package-0"] is True
        assert x["host_coverage"] == ["rapl:package-0", "rapl:dram-0"]
    out = io.StringIO()
    PrintHandler(out).process(trace)
    text = out.getvalue().splitlines()
    assert text[0].startswith("one: ") and "host " in text[0]
    assert "(measured: rapl:package-0 + rapl:dram-0)" in text[0]
    assert "rapl:package-0 " in text[1] and " W" in text[1]


def test_starts_an_embedded_energyd_when_none_answers(tmp_path, monkeypatch):
    """No ENERGYD_SOCKET, no system or user socket: the API starts energyd for this process."""
    import os

    import jupyter_energy.meter as meter_mod
    from energyd_testing import energyd_binary

    monkeypatch.delenv("ENERGYD_SOCKET", raising=False)
    (tmp_path / "run").mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PATH", os.path.dirname(energyd_binary()) + ":" + os.environ["PATH"])
    monkeypatch.setattr(meter_mod, "_embedded", None)
    if os.path.exists("/run/energyd/energyd.sock"):
        pytest.skip("a system energyd runs here: it would be used instead")
    try:
        with EnergyContext(start_tag="embedded") as ctx:
            time.sleep(0.3)
        s = ctx.trace[0]
        assert meter_mod._embedded is not None and meter_mod._embedded.running
        assert str(tmp_path / "data") in meter_mod._embedded.socket_path or \
            meter_mod._embedded.socket_path.startswith("/tmp/energyd-")
        assert s.host_coverage and s.host_joules > 0 and math.isfinite(s.host_joules)
        # What it measures depends on this machine; an estimate must say so.
        if not s.host_measured:
            assert any(not m for m in s.measured.values())
    finally:
        if meter_mod._embedded is not None:
            meter_mod._embedded.stop()


def test_samples_carry_this_process_share(machine):
    """energyd attributes the package and dram energy by CPU time: a segment in which this
    process keeps one CPU busy gets host x its CPU time / all CPU time of the machine (the busy
    part of the energy split by busy time), an estimate. Bound: 25 % (the kernel accounts
    /proc/stat and per-process times separately, and other work shares the machine)."""
    import os

    # The CPU time of this process's tree (all its threads, the emulator's driver too, and the
    # energyd the fixture started: the pid scope holds it) around the segment.
    c_before = emulated_energy.tree_cpu_s(os.getpid())
    with EnergyContext(start_tag="busy") as ctx:
        c0 = time.process_time()
        while time.process_time() - c0 < 0.6:
            pass
    cpu_s = emulated_energy.tree_cpu_s(os.getpid()) - c_before
    s = ctx.trace[0]
    assert s.process_joules is not None
    expected = s.host_joules * cpu_s / (s.duration * os.cpu_count())
    assert abs(s.process_joules - expected) <= 0.25 * expected, (s.process_joules, expected)
    assert 0 < s.process_joules <= s.host_joules


def test_jsonlines_writes_unknown_figures_as_null():
    """energyd's watts are null over an interval of 0 s (and joules where a channel had no
    reading): the sample holds NaN, the JSON line null, at any depth."""
    from jupyter_energy.meter import EnergySample, EnergyTrace
    s = EnergySample(timestamp=1.0e9, tag="empty", duration=0.0,
                     energy={"rapl:package-0": math.nan}, host_joules=0.0,
                     watts={"rapl:package-0": math.nan})
    assert math.isnan(s.host_watts)
    out = io.StringIO()
    JSONLinesHandler(out).process(EnergyTrace([s]))
    line = json.loads(out.getvalue())
    assert line["host_watts"] is None and line["watts"] == {"rapl:package-0": None}
    assert line["energy"] == {"rapl:package-0": None} and line["host_joules"] == 0.0
