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

A task may run in a cgroup v2 directory (``cgroup``, a path under ``cgroup_root``): its cgroup's
counters (perf_event_open with PERF_FLAG_PID_CGROUP, one per CPU) are ``cgroup/INO/cpu/N/EVENT``,
INO being the directory's inode number (the shim finds it by ``fstat`` on energyd's descriptor).
On the task's CPU they count what the task counts, with time_enabled the cgroup's time there
(its busy time, as the kernel's perf cgroup time) and time_running that times ``mux``; on the
other CPUs they stay at 0 (the cgroup never runs there). Tasks on different CPUs may share a
cgroup: its counters on each CPU are that CPU's task's (one task per CPU). ``idle_cgroups`` (paths under
``cgroup_root``) get counter files that stay at 0 on every CPU: cgroups no task runs in.
``paranoid``, when given, is written
to the shim's ``paranoid`` file: it plays kernel.perf_event_paranoid for CPU-wide and cgroup
events (above 0, refused to an energyd that dropped root).

A task's counters may be multiplexed: with ``mux`` < 1 its counters run that fraction of the
time and count only then (time_running = mux x time_enabled), as the kernel does when more
events than hardware counters are asked for; a reader must scale by enabled / running.

With ``freqs`` (MHz, e.g. ``(1650, 3250)``), the package's clock is instead one of those
frequencies, alternating every ``freq_phase_s`` seconds, and its power per event is the phase's
(``coef_by_freq``, ``static_by_freq``: power per event and static power grow with the voltage).
The perf ``msr`` PMU is played too (arch/x86/events/msr.c): sysfs gets
``bus/event_source/devices/msr/{type,events/{aperf,mperf,tsc}}`` and the shim's root
``msr_type`` and ``cpu/N/{aperf,mperf,tsc}``: APERF advances at the phase's clock and MPERF at
the TSC's (``tsc_mhz``), both only while the CPU's task is busy, and the TSC always. Each
task is busy a fraction of the time (``busy``: uniform in ``busy_range`` every ``phase_s``,
told to ``FakeProc`` as its process's rate and the machine's busy time), and its cycles are its
busy time at the clock. The package's energy is split into active and idle by the busy share as
energyd does (docs/attribution.md), so a task's true energy is the active energy of each step
shared in proportion to the tasks' true dynamic power. ``windows`` has, per step, what a test
needs to compute another model from the script: ``(t, dt, mhz, rates per task, package W,
active fraction, dynamic W per task)``.

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
MSR_EVENTS = {"aperf": 0x01, "mperf": 0x02, "tsc": 0x00}  # arch/x86/events/msr.c


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
    busy: float = 1.0  # fraction of the time it runs (with freqs)
    cgroup: str | None = None  # its cgroup v2 directory (under FakeHwpc's cgroup_root)
    cg_enabled_ns: float = 0.0  # its cgroup's time on its CPU
    cg_running_ns: float = 0.0


class FakeHwpc:
    def __init__(self, shim_root, sysfs_root, powercap, zone: str, proc, tasks: list[Task],
                 ncpu: int, coef=(1.5e-9, 2e-9, 1e-7), static_w=8.0, noise_w=1.0, phase_s=2.0,
                 seed=19, period_s=0.01, freqs=None, coef_by_freq=None, static_by_freq=None,
                 freq_phase_s=4.0, tsc_mhz=2000.0, busy_range=(0.2, 1.0), msr_type=42,
                 cgroup_root=None, paranoid=None, idle_cgroups=(), packages=None,
                 sockets=None):
        """sysfs_root gets the CPUs' topology, so that energyd opens the CPU counters of
        exactly these ncpu CPUs: one package, or ``packages[cpu]`` (CPU -> physical package).

        ``sockets`` (with ``packages``; not with ``freqs``): ``{package: (zone, coef,
        static_w)}``, each package its own RAPL zone, power per event and static power: a
        package draws its static power, its own noise and the dynamic power of the tasks on its
        CPUs, and its zone advances by exactly that (``zone`` is then unused). A task's truth
        is its share of its own package's energy, in proportion to its dynamic power (all of
        it active: give the FakeProc every CPU busy). With several packages, each task's
        counters are also served per CPU (pid/P/cpu/N: counting only on its own CPU).
        ``socket_windows`` logs per step
        ``(t, dt, {package: (summed rates of its CPUs, package W)}, {pid: its rates})``."""
        self.root = str(shim_root)
        for cpu in range(ncpu):
            tdir = os.path.join(str(sysfs_root), f"devices/system/cpu/cpu{cpu}/topology")
            os.makedirs(tdir, exist_ok=True)
            pkg = packages[cpu] if packages else 0
            for name, value in (("physical_package_id", pkg), ("core_id", cpu)):
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
        self.freqs = tuple(freqs) if freqs else None
        self.coef_by_freq, self.static_by_freq = coef_by_freq, static_by_freq
        self.freq_phase_s, self.tsc_mhz, self.busy_range = freq_phase_s, tsc_mhz, busy_range
        self.mhz = self.freqs[0] if self.freqs else None
        self._freq_i, self._next_freq = 0, 0.0
        self.msr_counts = [[0.0, 0.0, 0.0] for _ in range(ncpu)]  # aperf, mperf, tsc
        self.windows: list[tuple] = []
        self.packages = list(packages) if packages else [0] * ncpu
        # Several packages: energyd counts a process per CPU (pid, cpu), served per CPU.
        self._pid_cpus = ncpu if len(set(self.packages)) > 1 else 0
        self.sockets = dict(sockets) if sockets else None
        self.socket_carry = {p: 0.0 for p in (self.sockets or {})}
        self.socket_windows: list[tuple] = []
        if self.freqs:
            self._play_msr_pmu(str(sysfs_root), msr_type)
        for cpu in range(ncpu):
            for ev in EVENTS:
                self._open(f"cpu/{cpu}/{ev}")
        for t in tasks:
            for ev in EVENTS:
                self._open(f"pid/{t.pid}/{ev}")
                for cpu in range(self._pid_cpus):
                    self._open(f"pid/{t.pid}/cpu/{cpu}/{ev}")
        self._cgroup_dir = {}  # pid -> its cgroup's directory in the shim's root
        for t in tasks:
            if t.cgroup:
                d = os.path.join(str(cgroup_root), t.cgroup.lstrip("/"))
                os.makedirs(d, exist_ok=True)
                self._cgroup_dir[t.pid] = f"cgroup/{os.stat(d).st_ino}"
                for cpu in range(ncpu):
                    for ev in EVENTS:
                        if f"{self._cgroup_dir[t.pid]}/cpu/{cpu}/{ev}" not in self._fds:
                            self._open(f"{self._cgroup_dir[t.pid]}/cpu/{cpu}/{ev}")
        for path in idle_cgroups:
            d = os.path.join(str(cgroup_root), path.lstrip("/"))
            os.makedirs(d, exist_ok=True)
            for cpu in range(ncpu):
                for ev in EVENTS:
                    rel = f"cgroup/{os.stat(d).st_ino}/cpu/{cpu}/{ev}"
                    self._open(rel)
                    self._store(rel, 0, 0, 0)
        if paranoid is not None:
            os.makedirs(self.root, mode=0o755, exist_ok=True)
            with open(os.path.join(self.root, "paranoid"), "w") as f:
                f.write(f"{paranoid}\n")
        self._write_all()

    def _play_msr_pmu(self, sysfs_root: str, msr_type: int) -> None:
        pmu = os.path.join(sysfs_root, "bus/event_source/devices/msr")
        os.makedirs(os.path.join(pmu, "events"), exist_ok=True)
        with open(os.path.join(pmu, "type"), "w") as f:
            f.write(f"{msr_type}\n")
        for ev, enc in MSR_EVENTS.items():
            with open(os.path.join(pmu, "events", ev), "w") as f:
                f.write(f"event=0x{enc:02x}\n")
        os.makedirs(self.root, mode=0o755, exist_ok=True)
        with open(os.path.join(self.root, "msr_type"), "w") as f:
            f.write(f"{msr_type}\n")
        for cpu in range(self.ncpu):
            for ev in MSR_EVENTS:
                self._open(f"cpu/{cpu}/{ev}")

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
            for k, ev in enumerate(MSR_EVENTS if self.freqs else ()):
                self._store(f"cpu/{cpu}/{ev}", self.msr_counts[cpu][k], self.cpu_ns, self.cpu_ns)
        # A cgroup's counter on a CPU: its task there (one task per CPU), else nothing.
        on_cpu = {(self._cgroup_dir[t.pid], t.cpu): t for t in self.tasks.values()
                  if t.pid in self._cgroup_dir}
        for cg in set(self._cgroup_dir.values()):
            for cpu in range(self.ncpu):
                t = on_cpu.get((cg, cpu))
                for k, ev in enumerate(EVENTS):
                    self._store(f"{cg}/cpu/{cpu}/{ev}", t.counts[k] if t else 0,
                                t.cg_enabled_ns if t else 0, t.cg_running_ns if t else 0)
        for t in self.tasks.values():
            for k, ev in enumerate(EVENTS):
                self._store(f"pid/{t.pid}/{ev}", t.counts[k], t.enabled_ns, t.running_ns)
                for cpu in range(self._pid_cpus):
                    mine = cpu == t.cpu  # (pid, cpu): counts only while it runs there
                    self._store(f"pid/{t.pid}/cpu/{cpu}/{ev}", t.counts[k] if mine else 0,
                                t.enabled_ns if mine else 0, t.running_ns if mine else 0)

    def set_coef(self, coef) -> None:
        """The hardware's power per event changes (a frequency/voltage step): the model must
        re-learn."""
        with self.lock:
            self.coef = tuple(coef)

    def _rates(self, t: Task) -> tuple:
        cyc = self.mhz * 1e6 * t.busy if self.freqs else t.ghz * t.factors[0] * 1e9
        ins = cyc * t.ipc * t.factors[1]
        llc = ins / 1000 * t.llc_per_kinstr * t.factors[2]
        return cyc, ins, llc

    def _phase(self, now: float) -> None:
        if self.freqs and now >= self._next_freq:
            self.mhz = self.freqs[self._freq_i % len(self.freqs)]
            self._freq_i += 1
            self._next_freq = now + self.freq_phase_s
        if now < self._next_phase:
            return
        # The package's clock is shared by its cores (DVFS): one factor for all.
        clock = self.rng.uniform(0.5, 1.4)
        for t in self.tasks.values():
            t.factors = (clock, self.rng.uniform(0.5, 1.5), self.rng.uniform(0.3, 1.7))
            if self.freqs:
                t.busy = self.rng.uniform(*self.busy_range)
                self.proc.set_rate(t.pid, 100.0 * t.busy)
        if self.freqs:
            with self.proc.lock:
                self.proc.busy_rate = 100.0 * sum(t.busy for t in self.tasks.values())
        self._next_phase = now + self.phase_s * self.rng.uniform(0.5, 1.5)

    def step(self, dt: float, now: float) -> None:
        with self.lock:
            self._phase(now)
            if self.sockets:
                self._step_sockets(dt)
                return
            coef = self.coef_by_freq[self.mhz] if self.freqs else self.coef
            static_w = self.static_by_freq[self.mhz] if self.freqs else self.static_w
            dyn, rates_of = {}, {}
            for t in self.tasks.values():
                rates = rates_of[t.pid] = self._rates(t)
                dyn[t.pid] = sum(c * r for c, r in zip(coef, rates))
                for k in range(3):
                    self.cpu_counts[t.cpu][k] += rates[k] * dt
                    t.counts[k] += rates[k] * dt * t.mux
                t.enabled_ns += dt * 1e9
                t.running_ns += dt * 1e9 * t.mux
                t.cg_enabled_ns += dt * 1e9 * t.busy
                t.cg_running_ns += dt * 1e9 * t.busy * t.mux
                if self.freqs:
                    m = self.msr_counts[t.cpu]
                    m[0] += self.mhz * 1e6 * t.busy * dt
                    m[1] += self.tsc_mhz * 1e6 * t.busy * dt
            for m in self.msr_counts:
                m[2] += self.tsc_mhz * 1e6 * dt
            self.cpu_ns += dt * 1e9
            rest_w = static_w + self.rng.uniform(-self.noise_w, self.noise_w)
            total_dyn = sum(dyn.values())
            # The share energyd calls active (its busy share); all of it without freqs.
            active = self.proc.busy_rate / (100.0 * self.ncpu) if self.freqs else 1.0
            for pid, w in dyn.items():
                self.truth[pid] += (rest_w + total_dyn) * active * w / total_dyn * dt
            self.carry_uj += (rest_w + total_dyn) * dt * 1e6
            whole = int(self.carry_uj)
            self.carry_uj -= whole
            self._write_all()
            self.pc.advance(self.zone, whole)
            self.proc.step(dt)
            self.log_t.append(time.time())
            self.log_truth.append(dict(self.truth))
            if self.freqs:
                self.windows.append((self.log_t[-1], dt, self.mhz, rates_of, rest_w + total_dyn,
                                     active, dyn))

    def _step_sockets(self, dt: float) -> None:
        """One step of a machine of several packages (``sockets``), with the lock held."""
        per_pkg = {}
        task_rates = {}
        for pkg, (zone, coef, static_w) in self.sockets.items():
            mine = [t for t in self.tasks.values() if self.packages[t.cpu] == pkg]
            rates_of = {t.pid: self._rates(t) for t in mine}
            task_rates.update(rates_of)
            dyn = {pid: sum(c * r for c, r in zip(coef, rates)) for pid, rates in rates_of.items()}
            watts = static_w + self.rng.uniform(-self.noise_w, self.noise_w) + sum(dyn.values())
            total = sum(dyn.values())
            for pid, w in dyn.items():
                self.truth[pid] += watts * w / total * dt if total > 0 else 0.0
            summed = [0.0, 0.0, 0.0]
            for t in mine:
                for k in range(3):
                    r = rates_of[t.pid][k]
                    self.cpu_counts[t.cpu][k] += r * dt
                    t.counts[k] += r * dt * t.mux
                    summed[k] += r
                t.enabled_ns += dt * 1e9
                t.running_ns += dt * 1e9 * t.mux
                t.cg_enabled_ns += dt * 1e9 * t.busy
                t.cg_running_ns += dt * 1e9 * t.busy * t.mux
            self.socket_carry[pkg] += watts * dt * 1e6
            whole = int(self.socket_carry[pkg])
            self.socket_carry[pkg] -= whole
            per_pkg[pkg] = (zone, whole, tuple(summed), watts)
        self.cpu_ns += dt * 1e9
        self._write_all()
        for zone, whole, _, _ in per_pkg.values():
            self.pc.advance(zone, whole)
        self.proc.step(dt)
        self.log_t.append(time.time())
        self.log_truth.append(dict(self.truth))
        self.socket_windows.append((self.log_t[-1], dt,
                                    {p: (v[2], v[3]) for p, v in per_pkg.items()}, task_rates))

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
