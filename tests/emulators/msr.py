"""Fake MSR device files for energyd's MSR RAPL family.

``<dev>/cpu/N/msr`` are regular files holding each register's 8 bytes (little-endian) at the
register's number as file offset, which is how the msr driver presents them to ``pread``. Files
are sparse, so AMD's registers near offset 0xC0010299 cost nothing. Registers not written read
as 0 (energyd treats a domain that reads 0 as absent). Also written: the sysfs CPU topology
(``devices/system/cpu/cpuN/topology/{physical_package_id,core_id}``) and ``<proc>/cpuinfo``.

Counters are 32-bit and wrap like the hardware: ``advance`` adds counts modulo 2**32 and keeps
the exact total, from which tests compute the joules energyd must report.

The unit of a count is the unit register's energy status unit (bits 12:8), except for the DRAM
domain of the Intel server models Linux lists with ``rapl_defaults_hsw_server`` in
drivers/powercap/intel_rapl_common.c (Haswell-X 0x3F, Broadwell-X 0x4F, Skylake-X 0x55, Ice
Lake-X 0x6A, Ice Lake-D 0x6C, Xeon Phi 0x57 and 0x85): their DRAM counter counts 2^-16 J
(15.3 uJ) whatever the register says. ``model`` (family 6) is written to ``cpuinfo``;
``joules_per_count`` tells what a count of each domain is worth on that model.

AMD's registers are adjacent (0xC0010299, 0xC001029A, 0xC001029B) and would overlap in a file
addressed by byte; the msr driver addresses by register. For them the fake stores register N at
byte N * 8 (``stride=8``) and energyd runs under ``msr_shim.c`` (``shim_env``), which turns
pread(fd, 8, N) on these files into a read at N * 8. Intel's registers are 8 or more apart and
use plain files at the register offsets (``stride=1``).
"""

from __future__ import annotations

import os
import struct

from emulators.preload import preload_env

INTEL = {"unit": 0x606, "package": 0x611, "core": 0x639, "uncore": 0x641, "dram": 0x619,
         "psys": 0x64D}
AMD = {"unit": 0xC0010299, "core": 0xC001029A, "package": 0xC001029B}
# Energy status unit in bits 12:8: Intel client parts use 14 (61.035 uJ), AMD Zen uses 16.
INTEL_UNIT = 0x000A0E03
AMD_UNIT = 0x000A1003
# Intel family 6 models whose DRAM domain counts 2^-16 J (kernel: rapl_defaults_hsw_server).
DRAM_FIXED_UNIT_MODELS = {0x3F, 0x4F, 0x55, 0x6A, 0x6C, 0x57, 0x85}
DRAM_FIXED_ESU = 16
HASWELL_X = 0x3F
SKYLAKE_L = 0x4E  # a client part: every domain in the register's unit


class FakeMsr:
    def __init__(self, dev_root, sysfs_root, proc_root, vendor="intel",
                 topology=((0, 0), (0, 1), (1, 0), (1, 1)), stride=None, model=None):
        """topology: (package, core) for cpu0, cpu1, ...; stride: see the module doc;
        model: the Intel family 6 model number in cpuinfo (None: no model line)."""
        self.dev_root, self.vendor, self.model = str(dev_root), vendor, model
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
                f.write(f"processor\t: {cpu}\nvendor_id\t: {vendor_id}\n")
                if model is not None:
                    f.write(f"cpu family\t: 6\nmodel\t\t: {model}\n"
                            f"model name\t: emulated family 6 model 0x{model:X}\n")
                f.write("\n")

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
        return {**preload_env(build_dir, energyd, "libmsrshim.so"),
                "MSR_SHIM_ROOT": self.dev_root}

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

    def domain_esu(self, domain: str) -> int:
        """The energy status unit a domain's counter really counts in on this CPU model."""
        if (domain == "dram" and self.vendor == "intel"
                and self.model in DRAM_FIXED_UNIT_MODELS):
            return DRAM_FIXED_ESU
        return self.esu

    def joules(self, cpu: int, domain: str) -> float:
        """The energy the emulated hardware counted on a domain since set_counter."""
        return self.total(cpu, domain) / 2 ** self.domain_esu(domain)

    def expected_uj(self, counts: int, domain: str = "package") -> int:
        """What energyd reports for a total of counts: floor(counts * 1e6 / 2**esu)."""
        return counts * 1_000_000 >> self.domain_esu(domain)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
