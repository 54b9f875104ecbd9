"""Idle removal keeps one meaning: the host and channel figures lose the baseline, the process
share stays a share of the host's energy with idle, and every sample and printout says which
figure is which (the report: process 0.745 J printed next to host 0.237 J with no word why).

The figures above idle are energyd's (``energy?…&idle_watts=``: ``joules_above_idle``,
``watts_above_idle``), asked again for each sample's interval; a real energyd on emulated RAPL
(package-0 at PACKAGE_W, dram at DRAM_W) answers here.
"""

import io
import time

import pytest

from energyd_testing import HOST_W
from jupyter_energy import EnergyMeter, EnergyTrace, PrintHandler
from jupyter_energy.client import EnergydClient, EnergydError
from jupyter_energy.meter import EnergySample


@pytest.fixture
def client(energyd):
    time.sleep(0.3)  # a few samples before the first interval
    return EnergydClient(energyd.sock)


def busy_sample(client: EnergydClient, seconds: float = 0.5) -> EnergySample:
    """A real sample of this process keeping one CPU busy: its share is a sizeable number."""
    meter = EnergyMeter(client=client)
    meter.start("cell")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    meter.stop()
    s = meter.get_trace()[0]
    assert s.process_joules is not None and s.process_joules > 0.1 * s.host_joules, s
    return s


def interval(s: EnergySample) -> dict:
    return {"from": f"{s.timestamp:.6f}", "to": f"{s.timestamp + s.duration:.6f}"}


def test_remove_idle_is_energyds_figure_above_idle(client):
    s = busy_sample(client)
    with_idle, share = s.host_joules, s.process_joules
    assert not s.idle_removed and s.host_joules_above_idle is None
    EnergyTrace([s], client).remove_idle({"host": 20.0, "rapl:package-0": 15.0, "process": 0.5})
    api = client.get("energy", idle_watts="host:20,rapl:package-0:15", **interval(s))
    assert s.host_joules == api["host"]["joules_above_idle"]
    assert s.host_joules_above_idle == api["host"]["joules_above_idle"]
    assert s.host_watts == api["host"]["watts_above_idle"]
    assert s.energy["rapl:package-0"] == api["channels"]["rapl:package-0"]["joules_above_idle"]
    assert s.watts["rapl:package-0"] == api["channels"]["rapl:package-0"]["watts_above_idle"]
    # The baseline is power: 20 W over the sample's own interval, to the microsecond of the
    # interval's ends as sent; a channel without a baseline keeps its figure.
    assert s.host_joules == pytest.approx(with_idle - 20.0 * s.duration, abs=20.0 * 2e-6)
    assert s.energy["rapl:dram-0"] == api["channels"]["rapl:dram-0"]["joules"]
    assert s.process_joules == share  # the share is untouched
    assert s.host_joules_with_idle == with_idle  # what the share is a share of
    d = s.as_dict()
    assert d["idle_removed"] is True and d["host_joules_with_idle"] == with_idle
    assert d["host_joules_above_idle"] == s.host_joules
    # A second baseline replaces the first (energyd subtracts it from the measured figure):
    # never twice, and the figure the share refers to stays.
    EnergyTrace([s], client).remove_idle({"host": 1.0})
    assert s.host_joules == pytest.approx(with_idle - 1.0 * s.duration, abs=2e-6)
    assert s.host_joules_with_idle == with_idle


def test_printout_says_why_a_share_exceeds_the_host_figure(client):
    s = busy_sample(client)
    out = io.StringIO()
    PrintHandler(out).process(EnergyTrace([s]))
    assert "above idle" not in out.getvalue() and "with idle" not in out.getvalue()
    # Nearly all the host's power as baseline: the share exceeds what is left above idle.
    EnergyTrace([s], client).remove_idle({"host": HOST_W - 0.5})
    assert s.process_share_exceeds_host, s
    out = io.StringIO()
    PrintHandler(out).process(EnergyTrace([s]))
    text = out.getvalue()
    assert "host above idle" in text
    assert "a share of the host's" in text and "with idle" in text
    assert "more than the host's energy above idle" in text
    assert f"mean {s.host_watts:.2f} W" in text  # energyd's watts above idle
    # A share below the host figure above idle gets the reference, not the warning.
    s2 = busy_sample(client)
    EnergyTrace([s2], client).remove_idle({"host": 0.5})
    out = io.StringIO()
    PrintHandler(out).process(EnergyTrace([s2]))
    assert "with idle" in out.getvalue() and "more than" not in out.getvalue()


def test_an_interval_that_left_the_history_is_a_clear_error(client):
    old = EnergySample(timestamp=time.time() - 3600, tag="yesterday's cell", duration=0.5,
                       energy={"rapl:package-0": 9.0}, host_joules=12.0)
    with pytest.raises(EnergydError) as info:
        EnergyTrace([old], client).remove_idle({"host": 1.0})
    assert "yesterday's cell" in info.value.error and "left energyd's history" in info.value.error
    assert "history_s" in info.value.hint
    assert old.host_joules == 12.0 and old.energy["rapl:package-0"] == 9.0  # untouched
