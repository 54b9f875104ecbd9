"""The IPython magics, in IPython's own InteractiveShell, against a real energyd on emulated
RAPL (package-0 at PACKAGE_W + dram at DRAM_W). Energy is compared with what the emulator wrote
over each segment (emulated_energy.py: 1 % plus 5 ms per end at the segment's power)."""

from __future__ import annotations

import os
import re

import pytest
from IPython.core.interactiveshell import InteractiveShell

import jupyter_energy.magics as magics_mod
from emulated_energy import HOST, near, tree_cpu_s
from energyd_testing import DRAM_W, PACKAGE_W, Energyd
from jupyter_energy import EnergyTrace

HOST_W = PACKAGE_W + DRAM_W
SLEEP_LATE_S = 1.0  # how late a sleep may end on a machine loaded by stress-ng


@pytest.fixture
def shell(energyd, monkeypatch):
    monkeypatch.setenv("ENERGYD_SOCKET", energyd.sock)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "jupyter_energy")
    yield sh
    InteractiveShell.clear_instance()


def test_cell_magic_energy(shell, capsys, energyd, emulated, monkeypatch):
    traces = []
    describe = magics_mod.describe_cell
    monkeypatch.setattr(magics_mod, "describe_cell", lambda t, *a: traces.append(t) or describe(t, *a))
    # The cell keeps this process's CPU busy for 0.4 s, so its share is a number. The CPU time
    # of this process's tree (all its threads, the emulator's too, and the energyd it started)
    # is taken around the whole cell.
    c0 = tree_cpu_s(os.getpid())
    shell.run_cell("%%energy\nimport time\nc0 = time.process_time()\n"
                   "while time.process_time() - c0 < 0.4:\n    pass\nanswer = 42\n")
    cpu_s = tree_cpu_s(os.getpid()) - c0
    out = capsys.readouterr().out
    assert shell.user_ns["answer"] == 42  # the cell ran in the user's namespace
    m = re.search(r"⚡ ([\d.]+) s, host ([\d.]+) (m?J) \(measured: rapl:package-0 \+ "
                  r"rapl:dram-0\), mean ([\d.]+) W; kernel share ([\d.]+) (m?J) \((\d+) % of the host's energy\) "
                  r"\(estimated from CPU time\)", out)
    assert m, out
    s = traces[0][0]
    dur, joules = float(m.group(1)), float(m.group(2)) * (1e-3 if m.group(3) == "mJ" else 1)
    # The line prints the sample's own figures (to its rounding).
    assert dur == pytest.approx(s.duration, abs=5e-4)
    assert joules == pytest.approx(s.host_joules, rel=5e-3)
    assert float(m.group(4)) == pytest.approx(s.host_joules / s.duration, abs=0.005)
    assert near(s.host_joules, emulated, HOST, s.timestamp, s.timestamp + s.duration, HOST_W,
                energyd.sock), s
    # The kernel's share: this process's CPU time over all CPU time, of the host's energy.
    # Bound 25 %, as in test_meter.test_samples_carry_this_process_share (the kernel accounts
    # /proc/stat and per-process times separately, and other work shares the machine).
    expected = s.host_joules * cpu_s / (s.duration * os.cpu_count())
    assert abs(s.process_joules - expected) <= 0.25 * expected, (s.process_joules, expected)
    assert int(m.group(7)) == round(100 * s.process_joules / s.host_joules)
    # Emissions in the notation of the UI and the CLI (energyd's default static provider).
    assert re.search(r"; [\d.]+ (µ|m)?g CO₂e \(estimated\)", out), out


def test_cell_magic_reports_even_when_the_cell_fails(shell, capsys):
    shell.run_cell("%%energy\nraise ValueError('boom')\n")
    out = capsys.readouterr()
    assert "⚡" in out.out and "ValueError" in out.out + out.err


def test_line_magic_bench(shell, capsys, energyd, emulated):
    shell.run_cell("import time")
    trace = shell.run_line_magic("energy_bench", "-n 3 -w 1 -o time.sleep(0.2)")
    out = capsys.readouterr().out
    assert isinstance(trace, EnergyTrace) and len(trace) == 3
    assert [s.tag for s in trace] == ["run 1", "run 2", "run 3"]
    assert out.startswith("3 runs after 1 warm-up run(s): mean ± sd")
    m = re.search(r"time\s+([\d.]+) s ± ([\d.]+) s", out)
    # A sleep never ends early; on a loaded machine it may end late (stress-test.sh).
    assert m and 0.2 <= float(m.group(1)) < 0.2 + SLEEP_LATE_S
    for s in trace:
        # 0.2 s runs: 5 ms per end at 25 W is 5 % of each (1 % + 0.25 J of 5 J in all).
        assert near(s.host_joules, emulated, HOST, s.timestamp, s.timestamp + s.duration,
                    HOST_W, energyd.sock), s
    # Mean and sd share one unit ("3.233 J ± 0.619 J", never "3.233 J ± 619.131 mJ").
    m = re.search(r"host\s+[\d.]+ (m?J) ± [\d.]+ (m?J)\s+\(measured", out)
    assert m and m.group(1) == m.group(2), out
    m = re.search(r"rapl:package-0\s+[\d.]+ (m?J) ± [\d.]+ (m?J)", out)
    assert m and m.group(1) == m.group(2), out
    # Aligned columns: every figure line has its "±" in the same column.
    columns = {line.index("±") for line in out.splitlines()[1:] if "±" in line}
    assert len(columns) == 1, out


def test_cell_magic_bench(shell, capsys):
    shell.run_cell("import time")
    shell.run_cell("%%energy_bench -n 2 -w 0\ncount = globals().get('count', 0) + 1\n"
                   "time.sleep(0.1)\n")
    out = capsys.readouterr().out
    assert out.startswith("2 runs after 0 warm-up run(s)")
    assert shell.user_ns["count"] == 2  # no warm-up, two runs


def test_bench_rejects_bad_arguments(shell):
    with pytest.raises(ValueError):
        shell.run_line_magic("energy_bench", "-n 0 pass")
    with pytest.raises(ValueError):
        shell.run_line_magic("energy_bench", "")
