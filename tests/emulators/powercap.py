"""A fake sysfs tree with RAPL powercap zones, driven by a known power profile.

Laid out as the kernel does it: zone directories under
``devices/virtual/powercap/intel-rapl/`` (sub-zones nested in their parent), and symlinks to
every zone in ``class/powercap/``. Each zone has ``name``, ``energy_uj``,
``max_energy_range_uj`` and ``enabled``. ``energy_uj`` advances at the zone's constant power and
wraps to 0 after ``max_energy_range_uj`` as the hardware counter does.

Two ways to drive it:

* ``start()`` runs a thread that every ``period_s`` adds ``watts * elapsed`` to each counter
  (``counter = (start_uj + total_uj) mod (max + 1)``). Energy over an interval is then
  ``watts * (t1 - t0)`` within ``watts * period_s`` at each end (plus scheduling delay).
  ``watts`` may change while it runs (directly, or from ``on_step``).
* ``advance(zone, delta_uj)`` adds an exact amount (wrapping as needed) for tests that check the
  daemon's arithmetic to the microjoule.

Values are written in place (``pwrite`` at offset 0) because the daemon keeps the file open;
a reader may catch a write halfway, which the daemon must treat as a bad read. The text is
``"%d\\n"`` followed by spaces to a fixed width so that a shorter number fully overwrites a
longer one.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

WIDTH = 24
# The range of a real package counter (Skylake client, 2^32 units of 61 uJ): 262143328850 uJ.
DEFAULT_MAX_UJ = 262143328850


@dataclass
class Zone:
    dirname: str  # "intel-rapl:0", "intel-rapl:0:1", "intel-rapl-mmio:0"
    name: str  # contents of the name file: "package-0", "core", "dram", "psys"
    watts: float = 0.0
    max_uj: int = DEFAULT_MAX_UJ
    start_uj: int = 0
    mode: int = 0o444  # 0o400 as on Linux >= 5.10
    path: str = ""
    fd: int = -1
    total_uj: int = 0  # energy added by advance() or the driver since creation
    children: list["Zone"] = field(default_factory=list)


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
        self._write(z, z.start_uj)
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

    @staticmethod
    def _write(z: Zone, value: int) -> None:
        text = (f"{value}\n").ljust(WIDTH).encode()
        os.pwrite(z.fd, text, 0)

    def read_uj(self, key: str) -> int:
        z = self.zone(key)
        return int(os.pread(z.fd, WIDTH, 0).decode().strip())

    def advance(self, key: str, delta_uj: int) -> None:
        """Add delta_uj to a zone's counter, wrapping after max_uj as the hardware does."""
        z = self.zone(key)
        with self._lock:
            value = (self.read_uj(key) + delta_uj) % (z.max_uj + 1)
            z.total_uj += delta_uj
            self._write(z, value)

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

    def _keep_time(self) -> None:
        # With stalls programmed, the test tells them from the driver running late: ask for a
        # real-time slot for this thread (it sleeps between steps) where allowed (root).
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (OSError, AttributeError):
            pass

    def _run(self) -> None:
        # Integrate each zone's power since the last step, so that watts may change while the
        # driver runs (set zone.watts, or pass on_step to start()).
        acc = {name: float(z.total_uj) for name, z in self.zones.items()}
        t_prev = self._t_start
        if self._freeze:
            self._keep_time()
        while not self._stop.is_set():
            t = time.time()
            if self._on_step:
                self._on_step(self, t)
            frozen = self._freeze and (t - self._t_start) % self._freeze[0] < self._freeze[1]
            with self._lock:
                for name, z in self.zones.items():
                    acc[name] += z.watts * (t - t_prev) * 1e6
                    z.total_uj = int(acc[name])
                    if not frozen:
                        self._write(z, (z.start_uj + z.total_uj) % (z.max_uj + 1))
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


# -- machines -----------------------------------------------------------------------------------


def server(root: str, pkg_watts=(40.0, 30.0), dram_watts=(6.0, 4.0), mode=0o444) -> FakePowercap:
    """A two-socket server: two packages, each with a dram sub-zone."""
    zones = []
    for p, (pw, dw) in enumerate(zip(pkg_watts, dram_watts)):
        zones.append(Zone(f"intel-rapl:{p}", f"package-{p}", pw, mode=mode,
                          start_uj=123456789 * (p + 1),
                          children=[Zone(f"intel-rapl:{p}:0", "dram", dw, max_uj=65712999613,
                                         mode=mode, start_uj=1000 * (p + 7))]))
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


def wrapping(root: str, watts=10.0, max_uj=1_999_999) -> FakePowercap:
    """One package whose counter wraps every max_uj/watts microseconds (0.2 s by default)."""
    return FakePowercap(root, [Zone("intel-rapl:0", "package-0", watts, max_uj=max_uj,
                                    start_uj=max_uj - 300_000)])


def write_proc_stat(proc_root: str, busy: int, idle: int, ncpu: int = 4) -> None:
    """A fake /proc/stat with the given busy and idle jiffies (split over user and idle)."""
    os.makedirs(proc_root, exist_ok=True)
    lines = [f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0"]
    for i in range(ncpu):
        lines.append(f"cpu{i} {busy // ncpu} 0 0 {idle // ncpu} 0 0 0 0 0 0")
    text = "\n".join(lines) + "\nintr 0\nctxt 0\nbtime 0\n"
    path = os.path.join(proc_root, "stat")
    # In place, like the energy counters: the daemon keeps the file open.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, text.ljust(4096).encode(), 0)
    finally:
        os.close(fd)
