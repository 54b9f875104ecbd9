"""A fake RAPL perf PMU: the sysfs files of arch/x86/events/rapl.c and the counts behind them.

The kernel's power PMU is described in sysfs as

    bus/event_source/devices/power/type                 the PMU's perf type number
    bus/event_source/devices/power/events/energy-pkg    "event=0x02"
    bus/event_source/devices/power/events/energy-pkg.scale  "2.3283064365386962890625e-10"
    bus/event_source/devices/power/events/energy-pkg.unit   "Joules"

with energy-cores 0x01, energy-pkg 0x02, energy-ram 0x03, energy-gpu 0x04, energy-psys 0x05, each
listed only when the CPU has the domain. The kernel reads the 32-bit RAPL MSR, handles its wrap,
and keeps a 64-bit count in units of 2^-32 J ("we compute in 0.23 nJ increments regardless of
MSR": a hardware count of 2^-ESU J is 2^(32-ESU) event counts). The events are package-scope and
system-wide only.

perf_event_open cannot be faked in sysfs, so energyd runs under ``perf_shim.c`` (``shim_env``),
which answers perf_event_open for this PMU's type from the files written here: under
``<shim_root>/cpu/N/0xCC`` the event's 64-bit count, one file per package shared by the
package's CPUs (hard links). ``advance`` adds hardware counts as the MSR would and keeps the exact
total; ``joules`` is what the hardware counted.
"""

from __future__ import annotations

import os
import struct

from emulators.preload import preload_env

SCALE_TEXT = "2.3283064365386962890625e-10"  # 2^-32 J, as the kernel prints it
EVENTS = {"energy-cores": 0x01, "energy-pkg": 0x02, "energy-ram": 0x03, "energy-gpu": 0x04,
          "energy-psys": 0x05}
# A type number no kernel hands out: without the shim the kernel refuses it.
FAKE_TYPE = 2147483001


class FakePerfRapl:
    def __init__(self, sysfs_root, shim_root, topology=((0, 0), (0, 1)),
                 events=("energy-pkg", "energy-ram"), pmu_type=FAKE_TYPE, write_topology=True):
        """topology: (package, core) of cpu0, cpu1, ...; events: the domains the CPU has."""
        self.shim_root = str(shim_root)
        self.pmu_type = pmu_type
        self.topology = list(topology)
        self.events = list(events)
        self.counts: dict[tuple[int, str], int] = {}  # (package, event) -> 2^-32 J since start
        self._fds: dict[tuple[int, str], int] = {}
        base = os.path.join(str(sysfs_root), "bus/event_source/devices/power")
        os.makedirs(os.path.join(base, "events"), exist_ok=True)
        self._text(os.path.join(base, "type"), f"{pmu_type}\n")
        for ev in self.events:
            for suffix, text in (("", f"event=0x{EVENTS[ev]:02x}"), (".scale", SCALE_TEXT),
                                 (".unit", "Joules")):
                self._text(os.path.join(base, "events", ev + suffix), text + "\n")
        os.makedirs(self.shim_root, exist_ok=True)
        self._text(os.path.join(self.shim_root, "type"), f"{pmu_type}\n")
        packages = sorted({p for p, _ in self.topology})
        for pkg in packages:
            for ev in self.events:
                d = os.path.join(self.shim_root, "package", str(pkg))
                os.makedirs(d, exist_ok=True)
                path = os.path.join(d, f"0x{EVENTS[ev]:02x}")
                self._fds[(pkg, ev)] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                # Start from an arbitrary count: reads are relative to the open.
                self._store(pkg, ev, 0x1234_5678_9ABC + (pkg << 20))
                self.counts[(pkg, ev)] = 0
        for cpu, (pkg, core) in enumerate(self.topology):
            d = os.path.join(self.shim_root, "cpu", str(cpu))
            os.makedirs(d, exist_ok=True)
            for ev in self.events:
                # energy-psys is one platform counter: every CPU reads package 0's.
                src_pkg = packages[0] if ev == "energy-psys" else pkg
                name = f"0x{EVENTS[ev]:02x}"
                os.link(os.path.join(self.shim_root, "package", str(src_pkg), name),
                        os.path.join(d, name))
            if write_topology:
                tdir = os.path.join(str(sysfs_root), f"devices/system/cpu/cpu{cpu}/topology")
                os.makedirs(tdir, exist_ok=True)
                for name, value in (("physical_package_id", pkg), ("core_id", core)):
                    self._text(os.path.join(tdir, name), f"{value}\n")

    @staticmethod
    def _text(path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)

    def _store(self, pkg: int, ev: str, value: int) -> None:
        os.pwrite(self._fds[(pkg, ev)], struct.pack("<Q", value & (2**64 - 1)), 0)

    def _load(self, pkg: int, ev: str) -> int:
        return struct.unpack("<Q", os.pread(self._fds[(pkg, ev)], 8, 0))[0]

    def advance(self, pkg: int, ev: str, hw_counts: int, esu: int = 14) -> None:
        """The MSR of a domain advanced by hw_counts units of 2^-esu J."""
        counts = hw_counts << (32 - esu)
        self._store(pkg, ev, self._load(pkg, ev) + counts)
        self.counts[(pkg, ev)] += counts

    def joules(self, pkg: int, ev: str) -> float:
        return self.counts[(pkg, ev)] / 2**32

    def expected_uj(self, pkg: int, ev: str) -> int:
        """counts x scale in microjoules, rounded down as energyd converts the whole count."""
        return self.counts[(pkg, ev)] * 1_000_000 >> 32

    def shim_env(self, build_dir, energyd) -> dict:
        return {**preload_env(build_dir, energyd, "libperfshim.so"),
                "PERF_SHIM_ROOT": self.shim_root}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
