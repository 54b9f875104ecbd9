"""A fake sysfs tree with RAPL powercap zones, driven by a known power profile.

Laid out as the kernel does it: zone directories under
``devices/virtual/powercap/intel-rapl/`` (sub-zones nested in their parent), and symlinks to
every zone in ``class/powercap/``. Each zone has ``name``, ``energy_uj``,
``max_energy_range_uj`` and ``enabled``.

The counters follow drivers/powercap/intel_rapl_common.c: behind each zone is the 32-bit RAPL
status register, counting units of ``unit_nj`` nanojoules (the kernel's 10^9 / 2^ESU: 61035 for
2^-14 J, 15300 for the fixed DRAM unit of Haswell-EP servers), and the kernel shows
``energy_uj = raw * unit_nj // 1000`` and ``max_energy_range_uj = 0xFFFFFFFF * unit_nj // 1000``.
The register wraps after 2^32 units, one unit more than ``max_energy_range_uj``. The default
unit is 953 nJ (ESU 20), below a microjoule so that every microjoule step is reachable and exact
tests can add any number of microjoules; the wrap tests use the real 61035.

``total_uj`` is the energy the counter shows as added since creation (the difference of the
unwrapped readings, floor(R * unit_nj / 1000)); a reader that undoes the wraps as the kernel
defines them reports it within 1 uJ (each side of a wrap is floored to the microjoule).

Two ways to drive it:

* ``start()`` runs a thread that every ``period_s`` adds ``watts * elapsed`` to each counter.
  Energy over an interval is then
  ``watts * (t1 - t0)`` within ``watts * period_s`` at each end (plus scheduling delay).
  ``watts`` may change while it runs (directly, or from ``on_step``).
* ``advance(zone, delta_uj)`` moves the reading by an exact amount (wrapping as needed) for tests
  that check the daemon's arithmetic to the microjoule; ``advance_counts`` adds hardware units.

Every value written is logged with the time it became visible (``time.time()`` just after the
write, the clock energyd stamps its samples with): ``total_at(zone, t)`` is what the counter
showed at t, and ``energy_between(zone, t0, t1)`` the energy it added over [t0, t1]. Tests compare
energyd with these, not with the nominal power: on a loaded machine the driver thread runs late
and the counters then show less (and later more) than watts x time.

Values are written in place (``pwrite`` at offset 0) because the daemon keeps the file open;
a reader may catch a write halfway, which the daemon must treat as a bad read. The text is
``"%d\\n"`` followed by spaces to a fixed width so that a shorter number fully overwrites a
longer one.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass, field

from . import realtime

WIDTH = 24
LOG_MAX = 200_000  # logged writes per zone kept (over 6 min at the driver's 2 ms)
COUNTER = 2**32  # the RAPL status register is 32 bits wide
UNIT_2_14_NJ = 61035  # the kernel's unit for 2^-14 J (Intel client and server packages)
UNIT_DRAM_HSW_NJ = 15300  # the kernel's fixed DRAM unit of Haswell-EP and later servers
DEFAULT_UNIT_NJ = 953  # 2^-20 J: finer than a microjoule (see the module doc)


def max_energy_range_uj(unit_nj: int) -> int:
    """What the kernel shows in max_energy_range_uj for a unit (rapl_unit_xlate of 0xFFFFFFFF)."""
    return (COUNTER - 1) * unit_nj // 1000


@dataclass
class Zone:
    dirname: str  # "intel-rapl:0", "intel-rapl:0:1", "intel-rapl-mmio:0"
    name: str  # contents of the name file: "package-0", "core", "dram", "psys"
    watts: float = 0.0
    unit_nj: int = DEFAULT_UNIT_NJ
    start_uj: int = 0  # the first reading (rounded up to a whole unit)
    mode: int = 0o444  # 0o400 as on Linux >= 5.10
    path: str = ""
    fd: int = -1
    raw: int = 0  # the register's units since creation, unwrapped (start included)
    raw0: int = 0
    children: list["Zone"] = field(default_factory=list)

    @property
    def max_uj(self) -> int:
        return max_energy_range_uj(self.unit_nj)

    def uj(self, raw: int) -> int:
        """The unwrapped reading for an unwrapped raw count."""
        return raw * self.unit_nj // 1000

    @property
    def reading(self) -> int:
        return (self.raw % COUNTER) * self.unit_nj // 1000

    @property
    def total_uj(self) -> int:
        """Energy the counter shows as added since creation (unwrapped readings)."""
        return self.uj(self.raw) - self.uj(self.raw0)

    @property
    def wraps(self) -> int:
        return self.raw // COUNTER - self.raw0 // COUNTER

    def raw_for_total(self, total_uj: int) -> int:
        """The smallest unwrapped raw count whose reading shows total_uj added (exactly, when
        a unit is at most a microjoule)."""
        return -(-(self.uj(self.raw0) + total_uj) * 1000 // self.unit_nj)


def _weights(samples, t: float) -> list[tuple[float, float]]:
    """The samples around t and their weights in the linear interpolation at t (one sample
    when t falls on it)."""
    k = bisect.bisect_right(samples, t)
    if k == 0 or (k == len(samples) and t > samples[-1]):
        raise ValueError(f"{t} outside the samples [{samples[0]}, {samples[-1]}]")
    if samples[k - 1] == t or k == len(samples):
        return [(samples[k - 1], 1.0)]
    a, b = samples[k - 1], samples[k]
    return [(a, (b - t) / (b - a)), (b, (t - a) / (b - a))]


class FakePowercap:
    def __init__(self, root: str, zones: list[Zone], period_s: float = 0.002):
        self.root = str(root)
        self.zones: dict[str, Zone] = {}
        self.period_s = period_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t_start = 0.0
        self._on_step = None
        self._log_t: dict[str, list[float]] = {}  # each write's end: visible by then
        self._log_begin: dict[str, list[float]] = {}  # its start: not visible before
        self._log_uj: dict[str, list[int]] = {}
        self._freeze: tuple[float, float] | None = None
        self.truth: list[tuple[float, dict[str, float]]] = []
        self.writes: list[float] = []
        base = os.path.join(self.root, "devices/virtual/powercap/intel-rapl")
        cls = os.path.join(self.root, "class/powercap")
        os.makedirs(base, exist_ok=True)
        os.makedirs(cls, exist_ok=True)
        for z in zones:
            self._make(z, base, cls)

    def _make(self, z: Zone, parent: str, cls: str) -> None:
        z.path = os.path.join(parent, z.dirname)
        os.makedirs(z.path, exist_ok=True)
        for fname, text in (("name", z.name), ("max_energy_range_uj", str(z.max_uj)),
                            ("enabled", "1")):
            with open(os.path.join(z.path, fname), "w") as f:
                f.write(text + "\n")
        energy = os.path.join(z.path, "energy_uj")
        z.fd = os.open(energy, os.O_RDWR | os.O_CREAT, 0o644)
        z.raw = z.raw0 = -(-z.start_uj * 1000 // z.unit_nj) % COUNTER
        self._write(z)
        os.chmod(energy, z.mode)
        link = os.path.join(cls, z.dirname)
        if not os.path.lexists(link):
            os.symlink(os.path.relpath(z.path, cls), link)
        self.zones[z.dirname] = z
        for c in z.children:
            self._make(c, z.path, cls)

    def zone(self, key: str) -> Zone:
        """A zone by name ("package-0", "psys") or directory name ("intel-rapl:0:1")."""
        if key in self.zones:
            return self.zones[key]
        named = [z for z in self.zones.values()
                 if z.name == key and z.dirname.startswith("intel-rapl:")]
        if len(named) != 1:
            raise KeyError(key)
        return named[0]

    def _write(self, z: Zone) -> None:
        text = (f"{z.reading}\n").ljust(WIDTH).encode()
        # A reader may see the value from some moment inside pwrite: log both ends. The end can
        # be well after that moment (pwrite lets go of the GIL, and a busy thread of this
        # process, such as a cell under %%energy, or a loaded machine may keep this one waiting
        # for it), and a late driver's write carries all the energy since its last one.
        begin = time.time()
        os.pwrite(z.fd, text, 0)
        end = time.time()
        ts, us = self._log_t.setdefault(z.dirname, []), self._log_uj.setdefault(z.dirname, [])
        bs = self._log_begin.setdefault(z.dirname, [])
        ts.append(end)
        bs.append(begin)
        us.append(z.total_uj)
        if len(ts) > LOG_MAX:
            del ts[:LOG_MAX // 2], bs[:LOG_MAX // 2], us[:LOG_MAX // 2]

    def total_at(self, key: str, t: float) -> int:
        """The energy (uJ since creation) the zone's counter showed at wall-clock time t: the
        last value written at or before t (whose write had ended by t)."""
        z = self.zone(key)
        with self._lock:
            ts, us = self._log_t[z.dirname], self._log_uj[z.dirname]
            i = bisect.bisect_right(ts, t)
            if i == 0:
                raise ValueError(f"{key}: no value logged at or before {t} (log from {ts[0]})")
            return us[i - 1]

    def total_seen(self, key: str, earliest: float, latest: float) -> tuple[int, int]:
        """(lo, hi): the least and the most energy (uJ since creation) a reader that read the
        zone's counter at some time in [earliest, latest] can have seen. lo: the last value
        whose write had ended by earliest; hi: the last value whose write had begun by latest."""
        z = self.zone(key)
        with self._lock:
            ends, begins = self._log_t[z.dirname], self._log_begin[z.dirname]
            us = self._log_uj[z.dirname]
            i = bisect.bisect_right(ends, earliest)
            j = bisect.bisect_right(begins, latest)
            if i == 0:
                raise ValueError(f"{key}: no value logged at or before {earliest} "
                                 f"(log from {ends[0]})")
            return us[i - 1], us[max(i, j) - 1]

    def stale_at(self, t: float) -> float:
        """How long the counters had gone unwritten at time t beyond the driver's own step
        (every zone is written in the same step): what a reader at t misses, in seconds."""
        with self._lock:
            ts = next(iter(self._log_t.values()))
            k = bisect.bisect_right(ts, t)
            if k == 0:
                raise ValueError(f"no write logged at or before {t}")
            return max(0.0, t - ts[k - 1] - self.period_s)

    def energy_between(self, key: str, t0: float, t1: float, samples=None) -> float:
        """Joules the zone's counter added between wall-clock times t0 and t1.

        With samples (a reader's sample times, ascending), the counter is taken at those times
        and interpolated linearly in between, as energyd answers an interval whose ends fall
        between its samples; then the only difference left is each sample's skew between
        reading the counter and stamping the sample."""
        return (self._at(key, t1, samples) - self._at(key, t0, samples)) / 1e6

    def _at(self, key: str, t: float, samples) -> float:
        if not samples:
            return float(self.total_at(key, t))
        return sum(w * self.total_at(key, s) for s, w in _weights(samples, t))

    def energy_bounds(self, key: str, t0: float, t1: float, samples,
                      read_skew_s: float) -> tuple[float, float]:
        """(lo, hi) joules a reader that samples the zone at the times samples (ascending) and
        interpolates between them, as energyd does, can answer for [t0, t1], when each of its
        samples read the counter at most read_skew_s before stamping it. Unlike energy_between
        it needs no assumption on when a write became visible: each sample's counter lies
        between what total_seen gives over its read window."""
        def end(t: float) -> tuple[float, float]:
            lo = hi = 0.0
            for s, w in _weights(samples, t):
                a, b = self.total_seen(key, s - read_skew_s, s)
                lo, hi = lo + w * a, hi + w * b
            return lo, hi
        (lo0, hi0), (lo1, hi1) = end(t0), end(t1)
        return (lo1 - hi0) / 1e6, (hi1 - lo0) / 1e6

    def energy_range(self, keys, first_start: float, last_start: float, duration: float,
                     n: int = 21) -> tuple[float, float]:
        """(lo, hi) joules the zones got over [t, t + duration] for starts t from first_start
        to last_start: for an interval whose length is known but whose start is only known to
        lie in that range (a command run by `energy run`, which reports durations only)."""
        if last_start < first_start:
            raise ValueError(f"no start in [{first_start}, {last_start}]")
        starts = [first_start + (last_start - first_start) * k / (n - 1) for k in range(n)]
        e = [sum(self.energy_between(k, t, t + duration) for k in keys) for t in starts]
        return min(e), max(e)

    def host_between(self, t0: float, t1: float, samples=None, keys=None) -> float:
        """energy_between summed over zones (default: the top-level zones but intel-rapl-mmio
        and psys, plus dram: what energyd's host total counts without psys)."""
        keys = keys or [z.dirname for z in self.zones.values()
                        if not z.dirname.startswith("intel-rapl-mmio")
                        and (z.name.startswith("package") or z.name == "dram")]
        return sum(self.energy_between(k, t0, t1, samples) for k in keys)

    def read_uj(self, key: str) -> int:
        z = self.zone(key)
        return int(os.pread(z.fd, WIDTH, 0).decode().strip())

    def advance(self, key: str, delta_uj: int) -> None:
        """Move a zone's reading on by delta_uj (exact when a unit is at most 1 uJ), wrapping
        as the hardware does."""
        z = self.zone(key)
        with self._lock:
            z.raw = max(z.raw, z.raw_for_total(z.total_uj + delta_uj))
            self._write(z)

    def advance_counts(self, key: str, counts: int) -> None:
        """Add hardware units to a zone's register."""
        z = self.zone(key)
        with self._lock:
            z.raw += counts
            self._write(z)

    def reading_after(self, key: str, delta_uj: int) -> int:
        """What energy_uj would show delta_uj after the current reading (for write_raw)."""
        z = self.zone(key)
        raw = z.raw_for_total(z.total_uj + delta_uj)
        return (raw % COUNTER) * z.unit_nj // 1000

    def write_raw(self, key: str, text: bytes) -> None:
        """Put arbitrary bytes in energy_uj (garbage injection)."""
        z = self.zone(key)
        os.pwrite(z.fd, text.ljust(WIDTH), 0)

    # -- constant-power driver ------------------------------------------------------------

    def start(self, on_step=None) -> "FakePowercap":
        """Run the driver; on_step(fake, t) is called before every step (may change watts)."""
        self._on_step = on_step
        self._t_start = time.time()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def freeze(self, every_s: float, for_s: float) -> "FakePowercap":
        """A driver that stalls: for for_s out of every every_s seconds (from start()) the
        counters are not written, then they catch up at once (the energy is counted, late).
        While set, ``truth`` logs (time, {zone: energy in uJ since creation}) at every step:
        the energy as it was used, whether or not it was written yet; ``writes`` the times the
        counters were written (a gap outside the stalls is the driver running late)."""
        self._freeze = (every_s, for_s)
        return self

    def _run(self) -> None:
        # Integrate each zone's power since the last step, so that watts may change while the
        # driver runs (set zone.watts, or pass on_step to start()).
        acc = {name: float(z.total_uj) for name, z in self.zones.items()}
        t_prev = self._t_start
        # RAPL is never late (emulators/realtime.py); with stalls programmed, the test also
        # tells them from the driver running late.
        realtime.keep_time()
        while not self._stop.is_set():
            t = time.time()
            if self._on_step:
                self._on_step(self, t)
            frozen = self._freeze and (t - self._t_start) % self._freeze[0] < self._freeze[1]
            with self._lock:
                for name, z in self.zones.items():
                    acc[name] += z.watts * (t - t_prev) * 1e6
                    z.raw = max(z.raw, z.raw_for_total(int(acc[name])))
                    if not frozen:
                        self._write(z)
            if self._freeze:
                self.truth.append((t, dict(acc)))
                if not frozen:
                    self.writes.append(t)
            t_prev = t
            time.sleep(self.period_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        for z in self.zones.values():
            if z.fd >= 0:
                os.close(z.fd)
                z.fd = -1

    def __enter__(self) -> "FakePowercap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def history_within_power(fake: "FakePowercap", t: list, watts: list, power_w: float,
                         skew_s: float, rel: float = 0.01):
    """A history series (t[], watts[]) of zones driven at the constant power_w, point by point.

    The emulator integrates power_w over real time, so the energy it writes between two of its
    writes is exactly power_w x their distance; a reader sees less only while the counters go
    unwritten (the driver's thread running late on a loaded machine). energyd shows each point's
    watts over a window of at least 0.9 x the points' spacing that ends at or before the point
    (history_watts_window): its error is at most the counters' staleness at the window's two
    ends plus energyd's own skew between reading a counter and stamping the sample, each end.
    So each point must lie within rel x power_w + power_w x 2 x (stale + skew) / (0.9 x
    spacing), where stale is how long the counters had gone unwritten (beyond the driver's
    step) at the samples that may end the point's window (the point and the three before it),
    taken from the emulator's write log. Returns (violations, shown, tight):
    the points outside their bound, the points with a value, and those where the driver's
    lateness added at most 5 % to the bound (a run where every bound is wide tested little;
    callers check tight)."""
    bad, shown, tight = [], 0, 0
    for k in range(1, len(t)):
        if watts[k] is None:
            continue
        shown += 1
        spacing = t[k] - t[k - 1]
        # The window's ends are energyd's own samples: at most a few points back.
        stale = max(fake.stale_at(x) for x in t[max(k - 3, 0):k + 1])
        allowance = power_w * 2 * (stale + skew_s) / (0.9 * spacing)
        if abs(watts[k] - power_w) > rel * power_w + allowance:
            bad.append((t[k], watts[k], allowance))
        if power_w * 2 * stale / (0.9 * spacing) <= 0.05 * power_w:
            tight += 1
    return bad, shown, tight


# -- machines -----------------------------------------------------------------------------------


def server(root: str, pkg_watts=(40.0, 30.0), dram_watts=(6.0, 4.0), mode=0o444) -> FakePowercap:
    """A two-socket server: two packages, each with a dram sub-zone."""
    zones = []
    for p, (pw, dw) in enumerate(zip(pkg_watts, dram_watts)):
        zones.append(Zone(f"intel-rapl:{p}", f"package-{p}", pw, mode=mode,
                          start_uj=123456789 * (p + 1),
                          children=[Zone(f"intel-rapl:{p}:0", "dram", dw, mode=mode,
                                         start_uj=1000 * (p + 7))]))
    return FakePowercap(root, zones)


def laptop(root: str, package=12.0, core=7.0, uncore=1.5, psys=20.0) -> FakePowercap:
    """A laptop: package-0 with core and uncore, a psys zone, and an intel-rapl-mmio
    duplicate of the package (which must not be counted)."""
    return FakePowercap(root, [
        Zone("intel-rapl:0", "package-0", package, start_uj=5_000_000,
             children=[Zone("intel-rapl:0:0", "core", core),
                       Zone("intel-rapl:0:1", "uncore", uncore)]),
        Zone("intel-rapl:1", "psys", psys, start_uj=77_000_000),
        Zone("intel-rapl-mmio:0", "package-0", package),
    ])


def wrapping(root: str, watts=10.0, unit_nj=1) -> FakePowercap:
    """One package whose counter wraps after 2^32 units of unit_nj nJ: every 0.43 s at 10 W
    with the smallest unit the kernel can express (1 nJ, ESU 29); it starts 0.3 J before the
    wrap."""
    return FakePowercap(root, [Zone("intel-rapl:0", "package-0", watts, unit_nj=unit_nj,
                                    start_uj=max_energy_range_uj(unit_nj) - 300_000)])


def write_proc_stat(proc_root: str, busy: int = 0, idle: int = 0, ncpu: int = 4,
                    columns: dict | None = None) -> None:
    """A fake /proc/stat: busy jiffies in user and idle jiffies in idle, plus any other
    columns (procfs.STAT_COLUMNS: nice, system, iowait, irq, softirq, steal, guest...)."""
    from emulators.procfs import stat_line

    cols = dict(columns or {})
    cols["user"] = cols.get("user", 0) + busy
    cols["idle"] = cols.get("idle", 0) + idle
    os.makedirs(proc_root, exist_ok=True)
    lines = [stat_line("cpu ", cols)]
    for i in range(ncpu):
        lines.append(stat_line(f"cpu{i}", {c: v // ncpu for c, v in cols.items()}))
    text = "\n".join(lines) + "\nintr 0\nctxt 0\nbtime 0\n"
    path = os.path.join(proc_root, "stat")
    # In place, like the energy counters: the daemon keeps the file open.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, text.ljust(4096).encode(), 0)
    finally:
        os.close(fd)
