"""IPython magics: ``%load_ext jupyter_energy``, then

* ``%%energy``: run the cell, then print its duration, the host's energy (measured or
  estimated, and what it covers), the kernel's attributed share and the mean power;
* ``%energy_bench [-n N] [-w W] [-o] statement`` and ``%%energy_bench [-n N] [-w W] [-o]``:
  W warm-up runs (default 1), then N measured runs (default 5); prints energyd's statistics
  over the runs (``GET /api/v1/runs``): mean ± standard deviation and the 95 % confidence
  interval of time, host energy and power, every channel's energy and the kernel's share;
  ``-o`` returns the EnergyTrace.

Every figure is energyd's (mean power ``watts``, statistics ``/runs``); this module formats.

They print plain text, so they work in every Jupyter front end and in IPython itself.
"""

from __future__ import annotations

import math
from typing import Optional

from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .meter import RUNS_MAX, EnergyMeter, EnergyTrace
from .output import _fmt_g, _fmt_j
from .settings import energy_unit


def describe_cell(trace: EnergyTrace, unit: str = "J") -> str:
    s = trace[0]
    what = "measured" if s.host_measured else "estimated"
    cov = " + ".join(s.host_coverage) or "nothing"
    line = f"⚡ {s.duration:.3f} s, host {_fmt_j(s.host_joules, unit=unit)} ({what}: {cov})"
    if math.isfinite(s.host_watts):
        line += f", mean {s.host_watts:.2f} W"
    if s.process_joules is None:
        line += "; kernel share: not available (this energyd does not attribute energy)"
    else:
        line += (f"; kernel share {_fmt_j(s.process_joules, unit=unit)}"
                 + (f" ({s.process_share * 100:.0f} % of the host's energy"
                    + (" with idle" if s.idle_removed else "") + ")"
                    if s.process_share is not None else "")
                 + " (estimated from CPU time)")
    if s.emissions_g is not None:
        line += f"; {_fmt_g(s.emissions_g)} (estimated)"
    return line


def describe_bench(trace: EnergyTrace, stats: dict, warmup: int, unit: str = "J") -> str:
    """energyd's statistics over the runs (``GET /api/v1/runs``: ``stats``), formatted: mean ±
    sample standard deviation, and the 95 % confidence interval of the mean."""
    first = trace[0]
    what = "measured" if first.host_measured else "estimated"
    channels = [ch for ch in first.energy if ch in stats.get("channels", {})]
    # One column of labels as wide as the longest channel id; mean, sd and interval in one unit.
    width = max([len("host power")] + [len(ch) for ch in channels])

    def row(label: str, st: dict, fmt, note: str = "") -> str:
        m = st.get("mean")
        interval = (f"[{fmt(st['ci95_low'], m)}, {fmt(st['ci95_high'], m)}]"
                    if st.get("ci95_low") is not None else "")
        return (f"  {label:<{width}}  {fmt(m, m):>12} ± {fmt(st.get('sd'), m):<12} "
                f"{interval:<28}{note}").rstrip()

    seconds = lambda v, ref: "n/a" if v is None else f"{v:.4f} s"  # noqa: E731
    watts = lambda v, ref: "n/a" if v is None else f"{v:.2f} W"  # noqa: E731
    fmt_j = lambda v, ref: _fmt_j(v, ref, unit)  # noqa: E731
    host = stats["host"]
    lines = [f"{stats['seconds']['n']} runs after {warmup} warm-up run(s): "
             "mean ± sd [95 % confidence interval of the mean]",
             row("time", stats["seconds"], seconds),
             row("host", host["joules"], fmt_j,
                 f" ({what}: {' + '.join(first.host_coverage) or 'nothing'})"),
             row("host power", host["watts"], watts)]
    for ch in channels:
        est = "" if first.measured.get(ch) else " (estimated)"
        lines.append(row(ch, stats["channels"][ch]["joules"], fmt_j, est))
    if stats.get("scope") and stats["scope"].get("joules", {}).get("mean") is not None:
        lines.append(row("kernel", stats["scope"]["joules"], fmt_j, " (estimated from CPU time)"))
    return "\n".join(lines)


@magics_class
class EnergyMagics(Magics):
    @magic_arguments()
    @argument("-u", "--unit", help="J, Wh or kWh (default: the front end's energy unit)")
    @cell_magic
    def energy(self, line: str, cell: str):
        """%%energy [-u UNIT]: measure the energy of this cell."""
        unit = energy_unit(parse_argstring(self.energy, line).unit)
        meter = EnergyMeter()
        meter.start("cell")
        try:
            self.shell.run_cell(cell)
        finally:
            meter.stop()
        print(describe_cell(meter.get_trace(), unit))

    @magic_arguments()
    @argument("-n", type=int, default=5, help="measured runs (default 5)")
    @argument("-w", type=int, default=1, help="warm-up runs (default 1)")
    @argument("-o", action="store_true", help="return the EnergyTrace")
    @argument("-u", "--unit", help="J, Wh or kWh (default: the front end's energy unit)")
    @argument("statement", nargs="*", help="code to run (line magic)")
    @line_cell_magic
    def energy_bench(self, line: str, cell: Optional[str] = None):
        """%energy_bench [-n N] [-w W] [-o] [-u UNIT] statement, or %%energy_bench [...]."""
        args = parse_argstring(self.energy_bench, line)
        unit = energy_unit(args.unit)
        code = cell if cell is not None else " ".join(args.statement)
        if not code.strip():
            raise ValueError("%energy_bench: nothing to run")
        if not 1 <= args.n <= RUNS_MAX or args.w < 0:
            raise ValueError(f"%energy_bench: -n must be 1 to {RUNS_MAX} (energyd's statistics "
                             "take at most that many runs) and -w at least 0")
        compiled = compile(code, "<energy_bench>", "exec")
        ns = self.shell.user_ns
        for _ in range(args.w):
            exec(compiled, ns)
        meter = EnergyMeter()
        meter.start("run 1")
        for i in range(args.n):
            if i:
                meter.record(f"run {i + 1}")
            exec(compiled, ns)
        meter.stop()
        trace, stats = meter.get_runs()
        print(describe_bench(trace, stats, args.w, unit))
        return trace if args.o else None
