"""Handlers for energy traces: print, CSV, pandas DataFrame, JSON lines.

Each has ``process(trace)``; the file-based ones write as they process (CSV writes its header
once, from the channels of the first trace). pandas is optional: only PandasHandler needs it.

CSV columns (also the DataFrame's):

=================  ==========================================================================
``timestamp``      Unix seconds at the sample's start
``tag``            the segment's tag
``duration_s``     seconds
``host_joules``    the whole machine (no double counting; see ``host_coverage``)
``host_measured``  true when every channel of the host total is measured, false for estimates
``process_joules`` energy attributed to the measuring process tree (estimated); empty if none
``emissions_g``    grams CO₂e of the host energy; empty if energyd reports none
``<channel>``      joules of that channel, e.g. ``rapl:package-0``
=================  ==========================================================================
"""

from __future__ import annotations

import csv
import json
import math
import sys
from typing import IO, List, Optional, Union

from .meter import EnergyTrace
from .settings import check_unit, energy_unit

FIXED_COLUMNS = ["timestamp", "tag", "duration_s", "host_joules", "host_measured",
                 "process_joules", "emissions_g"]


def _si(value: Optional[float], unit: str, reference: Optional[float] = None) -> str:
    """``value`` with the SI prefix chosen for ``reference`` (default: the value itself), so
    that "3.233 J ± 0.619 J" keeps one prefix for a mean and its deviation."""
    if value is None or not math.isfinite(value):
        return "n/a"
    ref = abs(value if reference is None or not math.isfinite(reference) else reference)
    for scale, prefix in ((1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ")):
        if ref >= scale * 0.9995 or scale == 1e-6:
            break
    if ref == 0:
        scale, prefix = 1.0, ""
    return f"{value / scale:.3f} {prefix}{unit}"


JOULES_PER = {"Wh": 3600.0, "kWh": 3.6e6}


def _fmt_j(j: Optional[float], reference: Optional[float] = None, unit: str = "J") -> str:
    """Energy in ``unit`` (jupyter_energy.settings.UNITS): "J" is SI-prefixed joules (mJ, J, kJ,
    MJ), "Wh" and "kWh" are fixed, with four significant digits of ``reference`` (default: the
    value), so that a mean and its deviation share one unit and one number of decimals."""
    if unit == "J":
        return _si(j, "J", reference)
    if j is None or not math.isfinite(j):
        return "n/a"
    ref = abs(j if reference is None or not math.isfinite(reference) else reference)
    scaled_ref = ref / JOULES_PER[unit]
    decimals = 3 if scaled_ref == 0 else max(0, 3 - math.floor(math.log10(scaled_ref)))
    return f"{j / JOULES_PER[unit]:.{decimals}f} {unit}"


def _fmt_g(grams: Optional[float]) -> str:
    """Grams CO₂e in the notation of the UI and the CLI: "1.234 mg CO₂e"."""
    return f"{_si(grams, 'g')} CO₂e"


class PrintHandler:
    """One human-readable line per sample. ``unit``: "J", "Wh" or "kWh"; default: the front
    end's setting (jupyter_energy.settings)."""

    def __init__(self, file: Optional[IO[str]] = None, unit: Optional[str] = None):
        self.file = file
        self.unit = None if unit is None else check_unit(unit)

    def process(self, trace: EnergyTrace) -> None:
        out = self.file or sys.stdout
        unit = energy_unit(self.unit)
        fmt_j = lambda j: _fmt_j(j, unit=unit)  # noqa: E731
        for s in trace:
            what = "measured" if s.host_measured else "estimated"
            cov = " + ".join(s.host_coverage) or "nothing"
            above = " above idle" if s.idle_removed else ""
            parts = [f"{s.tag}: {s.duration:.3f} s, host{above} {fmt_j(s.host_joules)} "
                     f"({what}: {cov})"]
            if math.isfinite(s.host_watts):
                parts.append(f"mean {s.host_watts:.2f} W")
            if s.process_joules is not None:
                parts.append(f"this process {fmt_j(s.process_joules)} (estimated"
                             + _share_note(s, unit) + ")")
            if s.emissions_g is not None:
                parts.append(f"{_fmt_g(s.emissions_g)} (estimated)")
            for ch, j in s.energy.items():
                parts.append(f"{ch} {fmt_j(j)}" + ("" if s.measured.get(ch) else " (estimated)"))
            print(", ".join(parts), file=out)


def _share_note(s, unit: str = "J") -> str:
    """Why a process share may exceed the host figure printed before it."""
    if not s.idle_removed:
        return ""
    note = f", a share of the host's {_fmt_j(s.host_joules_with_idle, unit=unit)} with idle"
    if s.process_share_exceeds_host:
        note += ": more than the host's energy above idle, which has the baseline removed"
    return note


def _row(s) -> dict:
    row = {"timestamp": s.timestamp, "tag": s.tag, "duration_s": s.duration,
           "host_joules": s.host_joules, "host_measured": s.host_measured,
           "process_joules": s.process_joules, "emissions_g": s.emissions_g}
    row.update(s.energy)
    return row


class CSVHandler:
    """Appends one row per sample to a CSV file (columns in the module docstring)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.columns: Optional[List[str]] = None

    def process(self, trace: EnergyTrace) -> None:
        samples = list(trace)
        if not samples:
            return
        new_file = self.columns is None
        if new_file:
            channels: List[str] = []
            for s in samples:
                channels += [c for c in s.energy if c not in channels]
            self.columns = FIXED_COLUMNS + channels
        with open(self.filename, "w" if new_file else "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                w.writeheader()
            for s in samples:
                w.writerow({k: ("" if v is None else v) for k, v in _row(s).items()})

    def save_data(self) -> None:
        """pyJoules compatibility: rows are written by process() already."""


class PandasHandler:
    """Collects samples; ``get_dataframe()`` returns them as a pandas DataFrame."""

    def __init__(self):
        self.rows: List[dict] = []

    def process(self, trace: EnergyTrace) -> None:
        self.rows += [_row(s) for s in trace]

    def get_dataframe(self):
        try:
            import pandas as pd
        except ImportError as exc:  # pandas is optional
            raise ImportError("PandasHandler needs pandas: pip install pandas") from exc
        channels: List[str] = []
        for r in self.rows:
            channels += [c for c in r if c not in FIXED_COLUMNS and c not in channels]
        df = pd.DataFrame(self.rows, columns=FIXED_COLUMNS + channels)
        floats = ["timestamp", "duration_s", "host_joules", "process_joules", "emissions_g"]
        df[floats + channels] = df[floats + channels].astype("float64")
        df["host_measured"] = df["host_measured"].astype("bool")
        df["tag"] = df["tag"].astype("string")
        return df


class JSONLinesHandler:
    """Writes one JSON object per sample (EnergySample.as_dict()) to a file or stream."""

    def __init__(self, target: Union[str, IO[str]]):
        self.target = target

    def process(self, trace: EnergyTrace) -> None:
        lines = "".join(json.dumps(_nan_free(s.as_dict()), allow_nan=False) + "\n"
                        for s in trace)
        if isinstance(self.target, str):
            with open(self.target, "a") as f:
                f.write(lines)
        else:
            self.target.write(lines)


def _nan_free(value):
    """``value`` with every NaN or infinity, at any depth, replaced by None (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_free(v) for v in value]
    return value
