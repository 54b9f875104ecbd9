"""The IPython magics, in IPython's own InteractiveShell, against a real energyd on emulated
RAPL (package-0 at PACKAGE_W + dram at DRAM_W). Energy is compared with what energyd can have
read of the emulator's writes over each segment at its sample times, plus 1 %
(emulated_energy.written_bounds)."""

from __future__ import annotations

import os
import re
import statistics

import pytest

import jupyter_energy.magics as magics_mod
from emulated_energy import HOST, near, tree_cpu_s
from energyd_testing import DRAM_W, PACKAGE_W, Energyd
from jupyter_energy import EnergyTrace
from jupyter_energy.client import EnergydClient
from jupyter_energy.output import _fmt_j

HOST_W = PACKAGE_W + DRAM_W
SLEEP_LATE_S = 1.0  # how late a sleep may end on a machine loaded by stress-ng


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
    # The mean power printed is energyd's `watts` over the cell's interval (asked again here),
    # and the sample's joules are energyd's joules.
    api = EnergydClient(energyd.sock).get("energy", **interval(s))
    assert api["seconds"] == pytest.approx(s.duration, abs=2e-6)
    assert s.host_watts == api["host"]["watts"] and s.host_joules == api["host"]["joules"]
    assert m.group(4) == f"{api['host']['watts']:.2f}"
    assert near(s.host_joules, emulated, HOST, s.timestamp, s.timestamp + s.duration, HOST_W,
                energyd.sock), s
    # The kernel's share: this process's CPU time over all CPU time, of the host's energy.
    # Bound 25 %, as in test_meter.test_samples_carry_this_process_share (the kernel accounts
    # /proc/stat and per-process times separately, and other work shares the machine).
    expected = s.host_joules * cpu_s / (s.duration * os.cpu_count())
    assert abs(s.process_joules - expected) <= 0.25 * expected, (s.process_joules, expected)
    # The percentage is energyd's share, which is the scope's joules over the host's.
    assert s.process_share == pytest.approx(s.process_joules / s.host_joules, rel=1e-9)
    assert int(m.group(7)) == round(100 * s.process_share)
    # Emissions in the notation of the UI and the CLI (energyd's default static provider).
    assert re.search(r"; [\d.]+ (µ|m)?g CO₂e \(estimated\)", out), out


def test_cell_magic_reports_even_when_the_cell_fails(shell, capsys):
    shell.run_cell("%%energy\nraise ValueError('boom')\n")
    out = capsys.readouterr()
    assert "⚡" in out.out and "ValueError" in out.out + out.err


def interval(s) -> dict:
    """The query of a sample's interval, as the meter asks it."""
    return {"from": f"{s.timestamp:.6f}", "to": f"{s.timestamp + s.duration:.6f}"}


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
    # Every figure printed is energyd's statistics over the three runs (/runs, asked again
    # here with the runs' intervals), formatted: nothing is averaged in Python.
    runs = ",".join(f"{i['from']}/{i['to']}" for i in map(interval, trace))
    stats = EnergydClient(energyd.sock).get("runs", runs=runs)["stats"]
    st = stats["seconds"]
    assert m.group(1) == f"{st['mean']:.4f}" and m.group(2) == f"{st['sd']:.4f}"
    for label, fig in (("host", stats["host"]["joules"]),
                       ("rapl:package-0", stats["channels"]["rapl:package-0"]["joules"])):
        mean, sd = _fmt_j(fig["mean"], fig["mean"]), _fmt_j(fig["sd"], fig["mean"])
        lo, hi = _fmt_j(fig["ci95_low"], fig["mean"]), _fmt_j(fig["ci95_high"], fig["mean"])
        assert re.search(rf"{re.escape(label)}\s+{re.escape(mean)} ± {re.escape(sd)}\s+"
                         rf"\[{re.escape(lo)}, {re.escape(hi)}\]", out), (label, fig, out)
    power = stats["host"]["watts"]
    assert re.search(rf"host power\s+{power['mean']:.2f} W ± {power['sd']:.2f} W", out), out
    # energyd's statistics are those of the runs' own figures: mean, sample sd (n - 1) and
    # mean ± t(0.975, 2) sd / sqrt(3), computed here only to check the server.
    host = [s.host_joules for s in trace]
    fig = stats["host"]["joules"]
    assert fig["n"] == 3
    assert fig["mean"] == pytest.approx(statistics.mean(host), rel=1e-9)
    assert fig["sd"] == pytest.approx(statistics.stdev(host), rel=1e-6)
    # t(0.975, 2) = 4.3027; energyd's table holds it to 3 decimals (docs/api.md: within 2e-4).
    half = 4.302652729911275 * statistics.stdev(host) / 3 ** 0.5
    assert fig["ci95_high"] - fig["mean"] == pytest.approx(half, rel=2e-4)
    assert fig["mean"] - fig["ci95_low"] == pytest.approx(half, rel=2e-4)
    for s in trace:
        # 0.2 s runs (5 J): the bounds are as wide as the writes around each end (up to
        # about 0.125 J an end at the driver's 5 ms step); a missing dram channel is 1 J off.
        assert near(s.host_joules, emulated, HOST, s.timestamp, s.timestamp + s.duration,
                    HOST_W, energyd.sock), s
    # Mean and sd share one unit ("3.233 J ± 0.619 J", never "3.233 J ± 619.131 mJ").
    m = re.search(r"host\s+[\d.]+ (m?J) ± [\d.]+ (m?J)\s+\[[^]]+\]\s+\(measured", out)
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
    with pytest.raises(ValueError, match="1 to 300"):  # energyd's /runs takes at most 300
        shell.run_line_magic("energy_bench", "-n 301 pass")
    with pytest.raises(ValueError):
        shell.run_line_magic("energy_bench", "")
