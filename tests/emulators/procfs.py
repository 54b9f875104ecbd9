"""A fake /proc and cgroup v2 tree whose CPU counters advance at known rates.

``/proc/stat`` (kept open by energyd, so rewritten in place like the powercap counters) has every
CPU-time column the kernel prints (fs/proc/stat.c: user nice system idle iowait irq softirq
steal guest guest_nice, in USER_HZ jiffies, guest time also counted in user): ``busy_rate``
jiffies/s are split over the busy columns by ``busy_columns`` (fractions; default all user),
``iowait_rate`` jiffies/s go to iowait and the rest of ``ncpu * 100`` to idle. Each fake process
has ``PID/stat`` (utime, stime, cutime, cstime, ppid, starttime, as in fs/proc/array.c) and
``PID/status`` (Uid); each cgroup has ``cpu.stat`` (usage_usec). A driver thread
sets every counter to ``rate * (t - t_start)`` (plus what it held before a rate changed) every
``period_s``, so that over a window the counters advanced by ``rate * window`` to within one
period. Per-process files are replaced atomically (rename), as energyd opens them afresh.

While the driver runs, changes (``add``, ``set_rate``, ``reap``, ``add_cgroup``) are made in
memory and written by the driver at its next step, which the call waits for; several changes
made inside ``with proc.changes():`` are written in one step. So a reader never sees half of a
change (a child reaped into its parent's cutime while its directory is still there, or one
process stopped while the one that takes over has not started yet) for longer than one step's
writes take, as with the kernel's own counters, however late the test's thread runs. The
driver thread asks for a real-time slot (emulators/realtime.py).

Every write of ``/proc/stat`` is logged with the time it became visible (``time.time()`` just
after the write) and the busy and total jiffies it showed (busy = user + nice + system + irq +
softirq + steal, total = busy + idle + iowait: docs/model.md): ``share_between(t0, t1)`` is the
busy share a reader of the file saw over [t0, t1].
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from . import realtime


@dataclass
class Proc:
    pid: int
    ppid: int
    uid: int
    rate: float  # utime jiffies per second
    comm: str = "busy"
    utime: float = 0.0
    cutime: float = 0.0
    starttime: int = 0
    srate: float = 0.0  # stime (system time) jiffies per second
    stime: float = 0.0
    cstime: float = 0.0


STAT_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest",
                "guest_nice")


BUSY_COLUMNS = ("user", "nice", "system", "irq", "softirq", "steal")  # guest is inside user
LOG_MAX = 200_000  # logged writes of /proc/stat kept


def stat_line(name: str, cols: dict) -> str:
    return name + " " + " ".join(str(int(cols.get(c, 0))) for c in STAT_COLUMNS)


class FakeProc:
    def __init__(self, root, ncpu=40, busy_rate=2000.0, cgroup_root=None, period_s=0.005,
                 busy_columns=None, iowait_rate=0.0):
        self.root = str(root)
        self.busy_columns = busy_columns or {"user": 1.0}
        assert abs(sum(self.busy_columns.values()) - 1.0) < 1e-9
        assert set(self.busy_columns) <= {"user", "nice", "system", "irq", "softirq", "steal",
                                          "guest", "guest_nice"}
        self.iowait_rate = iowait_rate
        self.cols = {c: 0.0 for c in STAT_COLUMNS}
        self.cgroup_root = str(cgroup_root) if cgroup_root else None
        self.ncpu = ncpu
        self.busy_rate = busy_rate
        self.period_s = period_s
        self.procs: dict[int, Proc] = {}
        self.cgroups: dict[str, list[float]] = {}  # path -> [rate_usec_per_s, usage]
        self.busy = 0.0
        self.idle = 0.0
        self.lock = threading.RLock()
        self._stepped = threading.Condition(self.lock)
        self._steps = 0  # steps written by the driver
        self._gone: list[int] = []  # reaped pids whose directories the next write removes
        self._reaper: dict[int, int] = {}  # reaped pid -> the living process that reaped it
        self._batch = 0  # depth of changes() blocks
        self._stop = threading.Event()
        self._thread = None
        self._last = time.time()
        self._log_t: list[float] = []
        self._log_busy: list[int] = []
        self._log_total: list[int] = []
        os.makedirs(self.root, exist_ok=True)
        self._stat_fd = os.open(os.path.join(self.root, "stat"), os.O_RDWR | os.O_CREAT, 0o644)
        self._write_all()

    @staticmethod
    def boot_ticks() -> int:
        return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 100)

    def add(self, pid, ppid, uid, rate, comm="busy", new=False, srate=0.0):
        with self.lock:
            p = Proc(pid, ppid, uid, rate, comm, starttime=self.boot_ticks() if new else 100,
                     srate=srate)
            self.procs[pid] = p
        self._publish()
        return p

    def set_rate(self, pid, rate):
        with self.lock:
            self.procs[pid].rate = rate
        self._publish()

    def reap(self, pid):
        """The process exits and its parent waits for it: its time moves to the parent's
        cutime and its directory disappears, in one step."""
        with self.lock:
            p = self.procs.pop(pid)
            parent = self.procs[p.ppid]
            parent.cutime += p.utime + p.cutime
            parent.cstime += p.stime + p.cstime
            self._gone.append(pid)
            self._reaper[pid] = p.ppid
        self._publish()

    def _alive_ancestor(self, pid):
        """The living process that reaped pid, through parents reaped in the same step."""
        while pid in self._reaper:
            pid = self._reaper[pid]
        return pid

    def add_cgroup(self, path, rate_usec_per_s):
        with self.lock:
            self.cgroups[path] = [rate_usec_per_s, 0.0]
        self._publish()

    @contextmanager
    def changes(self):
        """The changes made inside are written together, in one step."""
        with self.lock:
            self._batch += 1
        try:
            yield self
        finally:
            with self.lock:
                self._batch -= 1
            self._publish()

    def _publish(self):
        """Write what changed: at the driver's next step while it runs, else now."""
        with self.lock:
            if self._batch:
                return
            if not (self._thread and self._thread.is_alive()):
                self._write_all()
                return
            target = self._steps + 1
            if not self._stepped.wait_for(lambda: self._steps >= target, timeout=10.0):
                raise TimeoutError("the fake /proc driver did not write a step in 10 s")

    def _write_proc(self, p: Proc):
        d = os.path.join(self.root, str(p.pid))
        os.makedirs(d, exist_ok=True)
        stat = (f"{p.pid} ({p.comm}) R {p.ppid} {p.pid} {p.pid} 0 -1 4194304 0 0 0 0 "
                f"{int(p.utime)} {int(p.stime)} {int(p.cutime)} {int(p.cstime)} 20 0 1 0 "
                f"{p.starttime} 1000000 100 "
                "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
        status = f"Name:\t{p.comm}\nState:\tR (running)\nUid:\t{p.uid}\t{p.uid}\t{p.uid}\t{p.uid}\n"
        for name, text in (("stat", stat), ("status", status)):
            tmp = os.path.join(d, f".{name}.tmp")
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, os.path.join(d, name))

    def _write_cgroup(self, path):
        d = os.path.join(self.cgroup_root, path.lstrip("/"))
        os.makedirs(d, exist_ok=True)
        usage = int(self.cgroups[path][1])
        tmp = os.path.join(d, ".cpu.stat.tmp")
        with open(tmp, "w") as f:
            f.write(f"usage_usec {usage}\nuser_usec {usage}\nsystem_usec 0\n")
        os.replace(tmp, os.path.join(d, "cpu.stat"))

    def _write_stat(self):
        lines = [stat_line("cpu ", self.cols)]
        for i in range(self.ncpu):
            lines.append(stat_line(f"cpu{i}", {c: v / self.ncpu for c, v in self.cols.items()}))
        text = "\n".join(lines) + "\nintr 0\nctxt 0\nbtime 0\n"
        os.pwrite(self._stat_fd, text.ljust(8192).encode(), 0)
        busy = sum(int(self.cols[c]) for c in BUSY_COLUMNS)
        self._log_t.append(time.time())
        self._log_busy.append(busy)
        self._log_total.append(busy + int(self.cols["idle"]) + int(self.cols["iowait"]))
        if len(self._log_t) > LOG_MAX:
            for log in (self._log_t, self._log_busy, self._log_total):
                del log[:LOG_MAX // 2]

    def jiffies_at(self, t: float) -> tuple[int, int]:
        """(busy, total) jiffies the "cpu" line showed at time t: the last write at or before."""
        with self.lock:
            i = bisect.bisect_right(self._log_t, t)
            if i == 0:
                raise ValueError(f"no /proc/stat written at or before {t}")
            return self._log_busy[i - 1], self._log_total[i - 1]

    def longest_step(self, t0: float, t1: float) -> float:
        """The longest time between two writes of the tree that ends or begins inside [t0, t1]:
        how far apart, in the counters' time, a reader's reads of two files over that window can
        be (each step writes /proc/stat, then the processes' files)."""
        with self.lock:
            i = max(bisect.bisect_left(self._log_t, t0) - 1, 0)
            j = bisect.bisect_right(self._log_t, t1)
            ts = self._log_t[i:j + 1]
            gaps = [b - a for a, b in zip(ts, ts[1:])]
            if t1 > ts[-1]:  # no write since the last one logged: a step still to come
                gaps.append(time.time() - ts[-1])
            return max(gaps, default=self.period_s)

    def share_between(self, t0: float, t1: float) -> float:
        """The busy share of all CPU time over [t0, t1] as written (each step adds ncpu * 100
        jiffies per second in all, so this is the time-weighted mean share)."""
        b0, n0 = self.jiffies_at(t0)
        b1, n1 = self.jiffies_at(t1)
        if n1 <= n0:
            raise ValueError(f"/proc/stat did not move over [{t0}, {t1}]")
        return (b1 - b0) / (n1 - n0)

    def _write_all(self):
        self._write_stat()
        # A reaped child's directory goes right after its parent's new cutime is written, so
        # that a reader finds both within a few microseconds at most (the kernel updates the
        # parent's cutime and releases the child at one wait, too).
        gone = {}
        for pid in self._gone:
            gone.setdefault(self._alive_ancestor(pid), []).append(pid)
        self._gone.clear()
        self._reaper.clear()
        for p in self.procs.values():
            self._write_proc(p)
            for pid in gone.pop(p.pid, []):
                d = os.path.join(self.root, str(pid))
                for f in ("stat", "status"):
                    os.unlink(os.path.join(d, f))
                os.rmdir(d)
        if self.cgroup_root:
            for path in self.cgroups:
                self._write_cgroup(path)

    def step(self, dt):
        with self.lock:
            self.busy += self.busy_rate * dt
            self.idle += (self.ncpu * 100 - self.busy_rate) * dt
            for c, share in self.busy_columns.items():
                self.cols[c] += self.busy_rate * share * dt
                if c in ("guest", "guest_nice"):  # the kernel counts guest time in user too
                    self.cols["user" if c == "guest" else "nice"] += self.busy_rate * share * dt
            self.cols["iowait"] += self.iowait_rate * dt
            self.cols["idle"] += (self.ncpu * 100 - self.busy_rate - self.iowait_rate) * dt
            for p in self.procs.values():
                p.utime += p.rate * dt
                p.stime += p.srate * dt
            for c in self.cgroups.values():
                c[1] += c[0] * dt
            self._write_all()
            self._steps += 1
            self._stepped.notify_all()

    def start(self):
        self._last = time.time()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        realtime.keep_time()  # the kernel's counters are never late (emulators/realtime.py)
        while not self._stop.is_set():
            now = time.time()
            self.step(now - self._last)
            self._last = now
            time.sleep(self.period_s)

    def close(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        os.close(self._stat_fd)
