"""Idle removal keeps one meaning: the host and channel figures lose the baseline, the process
share stays a share of the host's energy with idle, and every sample and printout says which
figure is which (the report: process 0.745 J printed next to host 0.237 J with no word why)."""

import io

import pytest

from jupyter_energy import EnergyTrace, PrintHandler
from jupyter_energy.meter import EnergySample


def sample(host_j=1.0, pkg_j=0.9, process_j=0.745, duration=0.5):
    return EnergySample(timestamp=1.0e9, tag="cell", duration=duration,
                        energy={"rapl:package-0": pkg_j}, host_joules=host_j,
                        process_joules=process_j, measured={"rapl:package-0": True},
                        host_measured=True, host_coverage=["rapl:package-0"])


def test_remove_idle_subtracts_host_and_channels_not_the_share():
    s = sample()
    assert not s.idle_removed and s.host_joules_above_idle is None
    EnergyTrace([s]).remove_idle({"host": 1.526, "rapl:package-0": 1.4, "process": 0.5})
    # 1.0 J - 1.526 W x 0.5 s = 0.237 J above idle; the share is untouched.
    assert s.host_joules == pytest.approx(0.237)
    assert s.host_joules_above_idle == pytest.approx(0.237)
    assert s.energy["rapl:package-0"] == pytest.approx(0.2)
    assert s.process_joules == 0.745
    assert s.host_joules_with_idle == 1.0  # what the share is a share of
    assert s.process_share_exceeds_host
    d = s.as_dict()
    assert d["idle_removed"] is True and d["host_joules_with_idle"] == 1.0
    assert d["host_joules_above_idle"] == pytest.approx(0.237)
    # Removing a second baseline keeps the figure the share refers to.
    EnergyTrace([s]).remove_idle({"host": 0.1})
    assert s.host_joules_with_idle == 1.0


def test_printout_says_why_a_share_exceeds_the_host_figure():
    s = sample()
    out = io.StringIO()
    PrintHandler(out).process(EnergyTrace([s]))
    assert "above idle" not in out.getvalue() and "with idle" not in out.getvalue()
    EnergyTrace([s]).remove_idle({"host": 1.526})
    out = io.StringIO()
    PrintHandler(out).process(EnergyTrace([s]))
    text = out.getvalue()
    assert "host above idle" in text
    assert "a share of the host's" in text and "with idle" in text
    assert "more than the host's energy above idle" in text
    # A share below the host figure above idle gets the reference, not the warning.
    s2 = sample(process_j=0.1)
    EnergyTrace([s2]).remove_idle({"host": 1.0})
    out = io.StringIO()
    PrintHandler(out).process(EnergyTrace([s2]))
    assert "with idle" in out.getvalue() and "more than" not in out.getvalue()
