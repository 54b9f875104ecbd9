"""Fake MSR device files for energyd's MSR RAPL family.

``<dev>/cpu/N/msr`` are regular files holding each register's 8 bytes (little-endian) at the
register's number as file offset, which is how the msr driver presents them to ``pread``. Files
are sparse, so AMD's registers near offset 0xC0010299 cost nothing. Registers not written read
as 0 (energyd treats a domain that reads 0 as absent). Also written: the sysfs CPU topology
(``devices/system/cpu/cpuN/topology/{physical_package_id,core_id}``) and ``<proc>/cpuinfo``.

Counters are 32-bit and wrap like the hardware: ``advance`` adds counts modulo 2**32 and keeps
the exact total, from which tests compute the joules energyd must report.

AMD's registers are adjacent (0xC0010299, 0xC001029A, 0xC001029B) and would overlap in a file
addressed by byte; the msr driver addresses by register. For them the fake stores register N at
byte N * 8 (``stride=8``) and energyd runs under ``msr_shim.c`` (``shim_env``), which turns
pread(fd, 8, N) on these files into a read at N * 8. Intel's registers are 8 or more apart and
use plain files at the register offsets (``stride=1``).
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

INTEL = {"unit": 0x606, "package": 0x611, "core": 0x639, "uncore": 0x641, "dram": 0x619,
         "psys": 0x64D}
AMD = {"unit": 0xC0010299, "core": 0xC001029A, "package": 0xC001029B}
# Energy status unit in bits 12:8: Intel client parts use 14 (61.035 uJ), AMD Zen uses 16.
INTEL_UNIT = 0x000A0E03
AMD_UNIT = 0x000A1003


class FakeMsr:
    def __init__(self, dev_root, sysfs_root, proc_root, vendor="intel",
                 topology=((0, 0), (0, 1), (1, 0), (1, 1)), stride=None):
        """topology: (package, core) for cpu0, cpu1, ...; stride: see the module doc."""
        self.dev_root, self.vendor = str(dev_root), vendor
        self.stride = stride or (1 if vendor == "intel" else 8)
        self.regs = INTEL if vendor == "intel" else AMD
        self.topology = list(topology)
        self.totals: dict[tuple[int, int], int] = {}  # (cpu, reg) -> counts added
        self._fds: dict[int, int] = {}
        for cpu, (pkg, core) in enumerate(self.topology):
            tdir = os.path.join(str(sysfs_root), f"devices/system/cpu/cpu{cpu}/topology")
            os.makedirs(tdir, exist_ok=True)
            for name, value in (("physical_package_id", pkg), ("core_id", core)):
                with open(os.path.join(tdir, name), "w") as f:
                    f.write(f"{value}\n")
            d = os.path.join(self.dev_root, f"cpu/{cpu}")
            os.makedirs(d, exist_ok=True)
            self._fds[cpu] = os.open(os.path.join(d, "msr"), os.O_RDWR | os.O_CREAT, 0o600)
            self.write(cpu, self.regs["unit"], INTEL_UNIT if vendor == "intel" else AMD_UNIT)
        os.makedirs(str(proc_root), exist_ok=True)
        vendor_id = "GenuineIntel" if vendor == "intel" else "AuthenticAMD"
        with open(os.path.join(str(proc_root), "cpuinfo"), "w") as f:
            for cpu in range(len(self.topology)):
                f.write(f"processor\t: {cpu}\nvendor_id\t: {vendor_id}\n\n")

    @property
    def esu(self) -> int:
        return ((INTEL_UNIT if self.vendor == "intel" else AMD_UNIT) >> 8) & 0x1F

    def write(self, cpu: int, reg: int, value: int) -> None:
        os.pwrite(self._fds[cpu], struct.pack("<Q", value), reg * self.stride)

    def read(self, cpu: int, reg: int) -> int:
        data = os.pread(self._fds[cpu], 8, reg * self.stride)
        return struct.unpack("<Q", data.ljust(8, b"\0"))[0]  # past the end: never written

    def shim_env(self, build_dir, energyd) -> dict:
        """Environment that runs energyd under msr_shim.c for this fake (stride 8)."""
        shim = str(Path(build_dir) / "tests/emulators/libmsrshim.so")
        # A sanitizer runtime must come first in the preload list when energyd uses one.
        ldd = subprocess.run(["ldd", str(energyd)], capture_output=True, text=True).stdout
        first = [line.split("=>")[1].split()[0] for line in ldd.splitlines()
                 if "libasan" in line and "=>" in line]
        return {"LD_PRELOAD": " ".join(first + [shim]), "MSR_SHIM_ROOT": self.dev_root}

    def set_counter(self, cpu: int, domain: str, raw: int) -> None:
        """Start a counter at raw (e.g. just below 2**32 to force a wrap)."""
        self.write(cpu, self.regs[domain], raw & 0xFFFFFFFF)
        self.totals[(cpu, self.regs[domain])] = 0

    def advance(self, cpu: int, domain: str, counts: int) -> None:
        reg = self.regs[domain]
        # The upper half of an energy MSR is reserved and reads 0; only 32 bits count.
        self.write(cpu, reg, (self.read(cpu, reg) + counts) & 0xFFFFFFFF)
        self.totals[(cpu, reg)] = self.totals.get((cpu, reg), 0) + counts

    def total(self, cpu: int, domain: str) -> int:
        return self.totals.get((cpu, self.regs[domain]), 0)

    def expected_uj(self, counts: int) -> int:
        """What energyd reports for a total of counts: floor(counts * 1e6 / 2**esu)."""
        return counts * 1_000_000 >> self.esu

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
