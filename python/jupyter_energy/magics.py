"""IPython magics: ``%load_ext jupyter_energy``, then

* ``%%energy``: run the cell, then print its duration, the host's energy (measured or
  estimated, and what it covers), the kernel's attributed share and the mean power;
* ``%energy_bench [-n N] [-w W] [-o] statement`` and ``%%energy_bench [-n N] [-w W] [-o]``:
  W warm-up runs (default 1), then N measured runs (default 5); prints mean ± standard
  deviation of time and energy (host and every channel); ``-o`` returns the EnergyTrace.

They print plain text, so they work in every Jupyter front end and in IPython itself.
"""

from __future__ import annotations

import math
import statistics
from typing import List, Optional

from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .meter import EnergyMeter, EnergyTrace
from .output import _fmt_g, _fmt_j
from .settings import energy_unit


def _mean_sd(values: List[float]):
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, sd


def describe_cell(trace: EnergyTrace, unit: str = "J") -> str:
    s = trace[0]
    what = "measured" if s.host_measured else "estimated"
    cov = " + ".join(s.host_coverage) or "nothing"
    line = f"⚡ {s.duration:.3f} s, host {_fmt_j(s.host_joules, unit=unit)} ({what}: {cov})"
    if s.duration > 0 and math.isfinite(s.host_joules):
        line += f", mean {s.host_joules / s.duration:.2f} W"
    if s.process_joules is None:
        line += "; kernel share: not available (this energyd does not attribute energy)"
    else:
        whole = s.host_joules_with_idle if s.idle_removed else s.host_joules
        share = s.process_joules / whole if whole else math.nan
        line += (f"; kernel share {_fmt_j(s.process_joules, unit=unit)}"
                 + (f" ({share * 100:.0f} % of the host's energy"
                    + (" with idle" if s.idle_removed else "") + ")"
                    if math.isfinite(share) else "")
                 + " (estimated from CPU time)")
    if s.emissions_g is not None:
        line += f"; {_fmt_g(s.emissions_g)} (estimated)"
    return line


def describe_bench(trace: EnergyTrace, warmup: int, unit: str = "J") -> str:
    samples = list(trace)
    n = len(samples)
    t_m, t_sd = _mean_sd([s.duration for s in samples])
    h_m, h_sd = _mean_sd([s.host_joules for s in samples])
    what = "measured" if samples[0].host_measured else "estimated"
    # One column of labels as wide as the longest channel id, mean and sd in one unit.
    width = max([len("kernel")] + [len(ch) for ch in samples[0].energy])

    def row(label: str, m: float, sd: float, fmt, note: str = "") -> str:
        return f"  {label:<{width}}  {fmt(m, m):>12} ± {fmt(sd, m):<12}{note}"

    seconds = lambda v, ref: f"{v:.4f} s"  # noqa: E731
    fmt_j = lambda v, ref: _fmt_j(v, ref, unit)  # noqa: E731
    lines = [f"{n} runs after {warmup} warm-up run(s): mean ± sd",
             row("time", t_m, t_sd, seconds).rstrip(),
             row("host", h_m, h_sd, fmt_j,
                 f" ({what}: {' + '.join(samples[0].host_coverage) or 'nothing'})")]
    for ch in samples[0].energy:
        m, sd = _mean_sd([s.energy[ch] for s in samples])
        est = "" if samples[0].measured.get(ch) else " (estimated)"
        lines.append(row(ch, m, sd, fmt_j, est).rstrip())
    if all(s.process_joules is not None for s in samples):
        m, sd = _mean_sd([s.process_joules for s in samples])
        lines.append(row("kernel", m, sd, fmt_j, " (estimated from CPU time)"))
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
        if args.n < 1 or args.w < 0:
            raise ValueError("%energy_bench: -n must be at least 1 and -w at least 0")
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
        trace = meter.get_trace()
        print(describe_bench(trace, args.w, unit))
        return trace if args.o else None
