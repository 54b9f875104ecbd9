"""The IPython magics, in IPython's own InteractiveShell, against a real energyd on emulated
RAPL (package-0 at PACKAGE_W + dram at DRAM_W; bounds as in test_meter: 50 ms per segment end)."""

from __future__ import annotations

import re

import pytest
from IPython.core.interactiveshell import InteractiveShell

from energyd_testing import DRAM_W, PACKAGE_W, Energyd
from jupyter_energy import EnergyTrace

HOST_W = PACKAGE_W + DRAM_W
BOUND_S = 0.1


@pytest.fixture
def shell(energyd, monkeypatch):
    monkeypatch.setenv("ENERGYD_SOCKET", energyd.sock)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "jupyter_energy")
    yield sh
    InteractiveShell.clear_instance()


def test_cell_magic_energy(shell, capsys):
    shell.run_cell("%%energy\nimport time\ntime.sleep(0.4)\nanswer = 42\n")
    out = capsys.readouterr().out
    assert shell.user_ns["answer"] == 42  # the cell ran in the user's namespace
    m = re.search(r"⚡ ([\d.]+) s, host ([\d.]+) (m?J) \(measured: rapl:package-0 \+ "
                  r"rapl:dram-0\), mean ([\d.]+) W; kernel share", out)
    assert m, out
    dur, joules = float(m.group(1)), float(m.group(2)) * (1e-3 if m.group(3) == "mJ" else 1)
    assert 0.4 <= dur < 0.55
    assert abs(joules - HOST_W * dur) <= HOST_W * BOUND_S
    assert abs(float(m.group(4)) - HOST_W) <= HOST_W * BOUND_S / dur
    # The kernel's share: energyd attributes (a number, estimated) or says it does not.
    assert ("estimated from CPU time" in out) or ("not available" in out)
    # Emissions in the notation of the UI and the CLI (energyd's default static provider).
    assert re.search(r"; [\d.]+ (µ|m)?g CO₂e \(estimated\)", out), out


def test_cell_magic_reports_even_when_the_cell_fails(shell, capsys):
    shell.run_cell("%%energy\nraise ValueError('boom')\n")
    out = capsys.readouterr()
    assert "⚡" in out.out and "ValueError" in out.out + out.err


def test_line_magic_bench(shell, capsys):
    shell.run_cell("import time")
    trace = shell.run_line_magic("energy_bench", "-n 3 -w 1 -o time.sleep(0.2)")
    out = capsys.readouterr().out
    assert isinstance(trace, EnergyTrace) and len(trace) == 3
    assert [s.tag for s in trace] == ["run 1", "run 2", "run 3"]
    assert out.startswith("3 runs after 1 warm-up run(s): mean ± sd")
    m = re.search(r"time\s+([\d.]+) s ± ([\d.]+) s", out)
    assert m and 0.2 <= float(m.group(1)) < 0.3
    for s in trace:
        assert abs(s.host_joules - HOST_W * s.duration) <= HOST_W * BOUND_S
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
