"""A log of the values an emulator wrote, with the time each became visible.

Power-only sensors (hwmon power, battery power_now, NVML power usage) are integrated by energyd
with the trapezoid rule over its own samples. A test that steps the power inside a window
computes the expected energy from what the emulator wrote: the value each sample read (the last
one written at or before the sample's time) and the trapezoid between consecutive samples. A
rectangle rule differs from it by half the step times one sample interval.
"""

from __future__ import annotations

import bisect
import time


class ValueLog:
    def __init__(self):
        self._t: dict[str, list[float]] = {}
        self._v: dict[str, list[float]] = {}

    def record(self, key: str, value) -> None:
        """Call just after writing value: its time is when a reader could first see it."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")  # garbage: no power
        self._t.setdefault(key, []).append(time.time())
        self._v.setdefault(key, []).append(v)

    def at(self, key: str, t: float) -> float:
        """The value a reader saw at time t."""
        i = bisect.bisect_right(self._t[key], t)
        if i == 0:
            raise ValueError(f"{key}: nothing written before {t}")
        return self._v[key][i - 1]

    def trapezoid(self, key: str, samples: list, scale: float = 1.0) -> float:
        """sum((v[k-1] + v[k]) / 2 * (t[k] - t[k-1])) over the sample times, values times
        scale (e.g. 1e-6 for microwatts to watts)."""
        v = [self.at(key, t) * scale for t in samples]
        return sum((a + b) / 2 * (t1 - t0)
                   for a, b, t0, t1 in zip(v, v[1:], samples, samples[1:]))

    def rectangle(self, key: str, samples: list, scale: float = 1.0) -> float:
        """The left-rectangle sum over the same samples (what a wrong integration gives)."""
        v = [self.at(key, t) * scale for t in samples]
        return sum(a * (t1 - t0) for a, t0, t1 in zip(v, samples, samples[1:]))
