"""Hardware performance counters of a scripted workload, consistent with RAPL and /proc.

The kernel's generic hardware events (PERF_TYPE_HARDWARE cycles, instructions, cache misses of
include/uapi/linux/perf_event.h) are served to energyd by ``hwpc_shim.c`` from the files this
driver writes under ``shim_root``: ``cpu/N/EVENT`` (the CPU-wide counters) and ``pid/P/EVENT``
(a process's, with inherit), each five little-endian uint64: sequence, count, time_enabled
(ns), time_running (ns), sequence (a seqlock against torn reads).

The workload: tasks pinned to one CPU each, busy all the time (``FakeProc`` is told the same:
``rate`` jiffies/s each), whose clock rate (one factor for the package, as DVFS does),
instructions per cycle and LLC misses per thousand instructions (one factor per task) change
every ``phase_s`` seconds (0.5 to 1.5 times it) by seeded random factors. Each task's true
dynamic power is the linear function ``coef . (cycles/s, instructions/s, misses/s)``; the package
draws ``static_w`` plus the tasks' power plus uniform noise of +-``noise_w``. A driver thread
advances, in one step, the counters, the package zone of a ``FakePowercap`` (``advance``, exact
microjoules with the fraction carried) and ``FakeProc`` (``step``). Each task's **true energy** is
its dynamic energy plus the static and noise energy shared in proportion to the dynamic power
(SmartWatts' rule), so the tasks' truths add up to the package energy.

A task's counters may be multiplexed: with ``mux`` < 1 its counters run that fraction of the
time and count only then (time_running = mux x time_enabled), as the kernel does when more
events than hardware counters are asked for; a reader must scale by enabled / running.

Every step is logged after its writes with ``time.time()`` (the clock energyd stamps samples
with): ``truth_between(pid, t0, t1)`` is a task's true energy over [t0, t1] in joules.
"""

from __future__ import annotations

import bisect
import os
import random
import struct
import threading
import time
from dataclasses import dataclass, field

from emulators.preload import preload_env

EVENTS = ("cycles", "instructions", "cache-misses")


@dataclass
class Task:
    pid: int
    cpu: int
    ghz: float  # mean clock when busy (cycles per ns)
    ipc: float  # mean instructions per cycle
    llc_per_kinstr: float  # mean LLC misses per 1000 instructions
    mux: float = 1.0  # fraction of the time its counters run
    counts: list = field(default_factory=lambda: [0.0, 0.0, 0.0])
    enabled_ns: float = 0.0
    running_ns: float = 0.0
    factors: tuple = (1.0, 1.0, 1.0)  # this phase's factors on ghz, ipc, llc


class FakeHwpc:
    def __init__(self, shim_root, sysfs_root, powercap, zone: str, proc, tasks: list[Task],
                 ncpu: int, coef=(1.5e-9, 2e-9, 1e-7), static_w=8.0, noise_w=1.0, phase_s=2.0,
                 seed=19, period_s=0.01):
        """sysfs_root gets the CPUs' topology (one package), so that energyd opens the CPU
        counters of exactly these ncpu CPUs."""
        self.root = str(shim_root)
        for cpu in range(ncpu):
            tdir = os.path.join(str(sysfs_root), f"devices/system/cpu/cpu{cpu}/topology")
            os.makedirs(tdir, exist_ok=True)
            for name, value in (("physical_package_id", 0), ("core_id", cpu)):
                with open(os.path.join(tdir, name), "w") as f:
                    f.write(f"{value}\n")
        self.pc, self.zone, self.proc = powercap, zone, proc
        self.tasks = {t.pid: t for t in tasks}
        self.ncpu = ncpu
        self.coef = tuple(coef)
        self.static_w, self.noise_w, self.phase_s = static_w, noise_w, phase_s
        self.period_s = period_s
        self.rng = random.Random(seed)
        self.cpu_counts = [[0.0, 0.0, 0.0] for _ in range(ncpu)]
        self.cpu_ns = 0.0
        self.truth = {pid: 0.0 for pid in self.tasks}  # joules since start
        self.log_t: list[float] = []
        self.log_truth: list[dict] = []
        self.seq = 0
        self.carry_uj = 0.0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._fds: dict[str, int] = {}
        self._next_phase = 0.0
        for cpu in range(ncpu):
            for ev in EVENTS:
                self._open(f"cpu/{cpu}/{ev}")
        for t in tasks:
            for ev in EVENTS:
                self._open(f"pid/{t.pid}/{ev}")
        self._write_all()

    def _open(self, rel: str) -> None:
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        self._fds[rel] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def _store(self, rel: str, count: float, enabled: float, running: float) -> None:
        self.seq += 1
        data = struct.pack("<5Q", self.seq, int(count), int(enabled), int(running), self.seq)
        os.pwrite(self._fds[rel], data, 0)

    def _write_all(self) -> None:
        for cpu in range(self.ncpu):
            for k, ev in enumerate(EVENTS):
                self._store(f"cpu/{cpu}/{ev}", self.cpu_counts[cpu][k], self.cpu_ns, self.cpu_ns)
        for t in self.tasks.values():
            for k, ev in enumerate(EVENTS):
                self._store(f"pid/{t.pid}/{ev}", t.counts[k], t.enabled_ns, t.running_ns)

    def set_coef(self, coef) -> None:
        """The hardware's power per event changes (a frequency/voltage step): the model must
        re-learn."""
        with self.lock:
            self.coef = tuple(coef)

    def _rates(self, t: Task) -> tuple:
        cyc = t.ghz * t.factors[0] * 1e9
        ins = cyc * t.ipc * t.factors[1]
        llc = ins / 1000 * t.llc_per_kinstr * t.factors[2]
        return cyc, ins, llc

    def step(self, dt: float, now: float) -> None:
        with self.lock:
            if now >= self._next_phase:
                # The package's clock is shared by its cores (DVFS): one factor for all.
                clock = self.rng.uniform(0.5, 1.4)
                for t in self.tasks.values():
                    t.factors = (clock, self.rng.uniform(0.5, 1.5), self.rng.uniform(0.3, 1.7))
                self._next_phase = now + self.phase_s * self.rng.uniform(0.5, 1.5)
            dyn = {}
            for t in self.tasks.values():
                rates = self._rates(t)
                dyn[t.pid] = sum(c * r for c, r in zip(self.coef, rates))
                for k in range(3):
                    self.cpu_counts[t.cpu][k] += rates[k] * dt
                    t.counts[k] += rates[k] * dt * t.mux
                t.enabled_ns += dt * 1e9
                t.running_ns += dt * 1e9 * t.mux
            self.cpu_ns += dt * 1e9
            rest_w = self.static_w + self.rng.uniform(-self.noise_w, self.noise_w)
            total_dyn = sum(dyn.values())
            for pid, w in dyn.items():
                self.truth[pid] += (w + rest_w * w / total_dyn) * dt
            self.carry_uj += (rest_w + total_dyn) * dt * 1e6
            whole = int(self.carry_uj)
            self.carry_uj -= whole
            self._write_all()
            self.pc.advance(self.zone, whole)
            self.proc.step(dt)
            self.log_t.append(time.time())
            self.log_truth.append(dict(self.truth))

    def truth_between(self, pid: int, t0: float, t1: float) -> float:
        with self.lock:
            return self._truth_at(pid, t1) - self._truth_at(pid, t0)

    def _truth_at(self, pid: int, t: float) -> float:
        i = bisect.bisect_right(self.log_t, t)
        if i == 0:
            raise ValueError(f"nothing logged at or before {t}")
        return self.log_truth[i - 1][pid]

    def start(self) -> "FakeHwpc":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last = time.time()
        while not self._stop.is_set():
            time.sleep(self.period_s)
            now = time.time()
            self.step(now - last, now)
            last = now

    def shim_env(self, build_dir, energyd) -> dict:
        return {**preload_env(build_dir, energyd, "libhwpcshim.so"), "HWPC_SHIM_ROOT": self.root}

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
