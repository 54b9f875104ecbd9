#!/usr/bin/env python3
"""energyd's own cost against the floor of its work, measured side by side (bench/RESULTS.md,
"energyd's own cost").

Builds a release energyd and the floor program (bench/floor.c) in BUILD_DIR (default
build-bench/: `--buildtype=release -Dtests=true`, only those two targets), lays out one fake
powercap tree with 4 RAPL counters (package-0 with core, uncore and dram inside it, the kernel's
layout and links) whose counters the emulator's thread advances every 5 ms, and in each round,
for each sample interval, starts energyd in its default configuration (the store, the
attribution scanning the real /proc and the machine's cgroup tree every second, carbon from the
static table, the sandbox, the drop to nobody; only the sensors' root and the socket differ)
and the floor program on the same counter files at the same interval, at the same time, so that
both see the same machine. Over the same window of SECONDS it reads both processes' CPU time
(all threads, ended ones included: the process CPU clock, nanoseconds) and each one's own count
of samples taken and the times of its samples (energyd's `tick` and `time` in /api/v1/now, the
floor's report on SIGUSR1): the samples in the window are that count at that rate, so a late or
missed wake-up is not counted as a sample. CPU time per sample of each, and energyd's over the
floor's, per round; the tables give the median and the range (min to max) over the rounds. The
intervals' order rotates from round to round and the two programs' start order alternates.

Then, unless --peer-rounds 0, the peers' overhead: CodeCarbon (measuring every second) and
pyJoules (a sample every 0.1 s), each installed from PyPI in its own venv under
BUILD_DIR/peers/ (created here on first use, pinned versions), each run in a private mount
namespace (unshare -m) where /sys/class/powercap is the same fake tree, at the same time as
energyd (0.1 s) and the floor: CPU load (% of one core) and memory of each over the same window,
and the power each one measured, to show it read the fake counters (the tree's package draws
30 W).

Beside each round's whole-process figure, each of energyd's threads by its name (energyd names
them: energy-sampler, energy-attrib, energy-store, ...), from its scheduler run time
(/proc/PID/task/TID/schedstat) over the same window: the sampler thread does the floor's work,
so energy-sampler ÷ floor is the sampling's own overhead and the other threads are the rest.

Prints Markdown tables ready for bench/RESULTS.md, with the machine (CPUs, model, kernel), the
load average and the number of processes at the start and the end, the date, the commit and the
command; writes the same figures as JSON to BUILD_DIR/floor_ratio/.

usage: bench/floor_ratio.py [--rounds 5] [--seconds 20] [--intervals 0.1,0.01,0.001]
                            [--peer-rounds 3] [--build-dir build-bench]
       bench/floor_ratio.py --perf SECONDS [--perf-interval 0.01]
       either with --energyd-arg=ARG (repeated): energyd in another configuration
With the defaults it takes about 8 minutes (the first run also builds and installs the peers).
Run it as root (energyd drops to nobody itself; the peers' namespaces need it).

--perf: where energyd's CPU goes instead. A release build with frame pointers
(BUILD_DIR-fp/), energyd in the same configuration on the same tree at --perf-interval, and
`perf record -g -F 40000` on it for SECONDS; prints the thread and symbol pairs that take at
least 1 % of its samples, by their own time and with what they call.
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from daemon_cost import _libc, get, proc_mem_kib, process_cpu_s  # noqa: E402
from emulators.powercap import UNIT_2_14_NJ, FakePowercap, Zone  # noqa: E402

PEERS = {"codecarbon": "codecarbon==3.3.2", "pyjoules": "pyJoules==0.5.1"}
PEER_SAMPLING = {"codecarbon": "1 s (measure_power_secs=1)", "pyjoules": "0.1 s"}
PACKAGE_WATTS = 30.0
WARMUP_S = 3.0  # past energyd's start: the first scan, the store's first batch
TARGETS = {0.1: 2.0, 0.01: 1.5}  # issue: energyd at most this many times the floor
PERF_FREQ = 40000  # samples a second of CPU time: energyd runs about 1 ms a second
EXTRA_ARGS = []  # --energyd-arg: energyd away from its default configuration

# In the peer's private mount namespace: /sys/class becomes a tmpfs holding the real classes
# (bound back one by one) and powercap, a link to the fake tree's class/powercap, whose own
# relative links then lead into the fake devices/ tree as the kernel's lead into /sys/devices.
NAMESPACE_SH = r"""
set -e
fake=$1 stash=$2; shift 2
mount --make-rprivate /
mount --bind /sys/class "$stash"
mount -t tmpfs -o mode=0755 energy-bench /sys/class
for e in "$stash"/*; do
    n=${e##*/}
    mkdir "/sys/class/$n"
    mount --bind "$e" "/sys/class/$n"
done
ln -s "$fake/class/powercap" /sys/class/powercap
exec "$@"
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def build(build_dir):
    """Release energyd and floor; an existing build dir is switched to release with tests."""
    if not (build_dir / "build.ninja").exists():
        sh(["meson", "setup", str(build_dir), "--buildtype=release", "-Dtests=true"],
           stdout=subprocess.DEVNULL)
    else:
        opts = json.loads((build_dir / "meson-info" / "intro-buildoptions.json").read_text())
        val = {o["name"]: o["value"] for o in opts}
        if val.get("buildtype") != "release" or not val.get("tests") or val.get("b_sanitize") \
                not in ("none", [], None):
            sh(["meson", "configure", str(build_dir), "--buildtype=release", "-Dtests=true",
                "-Db_sanitize=none"], stdout=subprocess.DEVNULL)
    sh(["ninja", "-C", str(build_dir), "energyd", "bench/floor"], stdout=subprocess.DEVNULL)
    return build_dir / "energyd", build_dir / "bench" / "floor"


def peer_python(build_dir, name):
    venv = build_dir / "peers" / name
    py = venv / "bin" / "python"
    if not py.exists():
        sh([sys.executable, "-m", "venv", str(venv)])
    check = subprocess.run([str(py), "-m", "pip", "show", "-q", PEERS[name].split("==")[0]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if check.returncode != 0:
        sh([str(py), "-m", "pip", "install", "-q", PEERS[name]])
    return py


def fake_tree(root):
    """One socket's counters in the unit of real packages (2^-14 J: a wrap every 262 kJ, over
    two hours at 30 W; the emulator's default unit would wrap every 2 minutes, which pyJoules,
    that does not undo wraps, would report as negative energy)."""
    u = UNIT_2_14_NJ
    zones = [Zone("intel-rapl:0", "package-0", PACKAGE_WATTS, unit_nj=u, children=[
        Zone("intel-rapl:0:0", "core", 20.0, unit_nj=u),
        Zone("intel-rapl:0:1", "uncore", 2.0, unit_nj=u),
        Zone("intel-rapl:0:2", "dram", 5.0, unit_nj=u)])]
    fake = FakePowercap(str(root), zones, period_s=0.005)
    # The kernel's links between the class and the control type (CodeCarbon follows them).
    os.symlink("../../devices/virtual/powercap/intel-rapl",
               root / "class" / "powercap" / "intel-rapl")
    os.symlink("../../../../class/powercap",
               root / "devices" / "virtual" / "powercap" / "intel-rapl" / "subsystem")
    return fake.start()


def cgroup_root():
    """What energyd's default would be on the real /sys (main.c: default_cgroup_root)."""
    for c in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(c + "/cgroup.controllers"):
            return c
    return None


def private_tmpfs(prefix):
    """A temporary directory on a tmpfs mounted noatime in this process's own mount namespace
    (unshare(CLONE_NEWNS) while the process has one thread; everything it starts inherits the
    namespace, and the mount ends with it). sysfs does not update access times; a counter file
    on ext4 would cost every read an inode update and a journal entry (touch_atime, about 5 %
    of energyd's samples at 0.01 s in perf), for energyd and the floor alike."""
    if _libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    sh(["mount", "--make-rprivate", "/"])
    path = tempfile.mkdtemp(prefix=prefix)
    sh(["mount", "-t", "tmpfs", "-o", "noatime,mode=0700,size=256m", "floor-ratio", path])
    return path


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    return {"nproc": len(os.sched_getaffinity(0)), "cpus": os.cpu_count(), "model": model,
            "kernel": platform.release(), "mem_gib": round(mem / 2**20, 1)}


def conditions():
    return {"loadavg": [round(x, 2) for x in os.getloadavg()],
            "processes": sum(1 for d in os.listdir("/proc") if d.isdigit()),
            "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}


def commit():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"],
                           cwd=ROOT, text=True, capture_output=True).stdout.strip()
    return head + (" (src/ modified)" if dirty else "")


class Energyd:
    def __init__(self, binary, fake, run, tag, interval):
        self.sock = str(run / f"energyd-{tag}.sock")
        self.log = run / f"energyd-{tag}.log"
        cmd = [str(binary), "--sysfs-root", fake.root, "--listen", f"unix:{self.sock}",
               "--state-dir", str(run / f"state-{tag}"), "--interval", str(interval)]
        if interval < 0.01:
            cmd += ["--min-interval", str(interval)]
        cmd += EXTRA_ARGS
        cg = cgroup_root()
        if cg:
            cmd += ["--cgroup-root", cg]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.pid = self.proc.pid

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"energyd exited: {self.log.read_text()[-2000:]}")
            try:
                if get(self.sock, "/api/v1/now")["tick"] >= 1:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise TimeoutError(self.log.read_text()[-2000:])

    def now(self):
        """The sample count and the time of the latest sample."""
        n = get(self.sock, "/api/v1/now")
        return {"tick": n["tick"], "time": n["time"]}

    def stop(self):
        stop_proc(self.proc)


class Floor:
    def __init__(self, binary, fake, interval):
        files = [z.path + "/energy_uj" for z in fake.zones.values()]
        self.proc = subprocess.Popen([str(binary), "-i", str(interval), *files],
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline().strip()
        if line != f"ready {len(files)}":
            raise RuntimeError(f"floor: {line!r}")

    def report(self):
        self.proc.send_signal(signal.SIGUSR1)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("floor ended")
        return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}

    def stop(self):
        stop_proc(self.proc)


class Peer:
    def __init__(self, name, python, fake, run):
        stash = run / f"class-{name}"
        stash.mkdir(exist_ok=True)
        self.name = name
        self.log = run / f"{name}.log"
        self.proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", NAMESPACE_SH, "sh", fake.root, str(stash),
             str(python), str(ROOT / "bench" / "peer_driver.py"), name],
            stdout=subprocess.PIPE, stderr=open(self.log, "w"), text=True)
        self.pid = self.proc.pid  # unshare and sh exec: the peer's python has this pid

    def wait_ready(self):
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.wait()
            raise RuntimeError(f"{self.name} did not start ({line!r}): "
                               f"{self.log.read_text()[-3000:]}")

    def finish(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        lines = out.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}


def thread_cpu_ns(pid):
    """Each live thread's CPU time by its name (/proc/PID/task/TID/comm; energyd names its
    threads), in nanoseconds: the first field of /proc/PID/task/TID/schedstat (the scheduler's
    run time, not the 10 ms ticks of stat). Threads of one name are added up (the HTTP
    workers)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # ended in between
        out[name] = out.get(name, 0) + ns
    return out


def stop_proc(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pair_round(energyd_bin, floor_bin, fake, run, tag, interval, seconds, energyd_first):
    """energyd and the floor at one interval, side by side over the same window."""
    started = []
    try:
        for which in (("energyd", "floor") if energyd_first else ("floor", "energyd")):
            started.append(Energyd(energyd_bin, fake, run, tag, interval) if which == "energyd"
                           else Floor(floor_bin, fake, interval))
        e = next(p for p in started if isinstance(p, Energyd))
        f = next(p for p in started if isinstance(p, Floor))
        e.wait_ready()
        time.sleep(WARMUP_S)
        n0, r0 = e.now(), f.report()
        t0 = thread_cpu_ns(e.pid)
        ce0, cf0, w0 = process_cpu_s(e.pid), process_cpu_s(f.pid), time.monotonic()
        time.sleep(seconds)
        ce1, cf1, w1 = process_cpu_s(e.pid), process_cpu_s(f.pid), time.monotonic()
        t1 = thread_cpu_ns(e.pid)
        r1, n1 = f.report(), e.now()
        me, mf = proc_mem_kib(e.pid), proc_mem_kib(f.pid)
        procs = get(e.sock, "/api/v1/processes")
        channels = len(get(e.sock, "/api/v1/sources")["channels"])
    finally:
        for p in reversed(started):
            p.stop()
    # Each program's samples over the CPU window: its own count between its own reports, at
    # the rate its own sample times give (a report comes a request or a wake-up after the
    # CPU time is read, so the count alone would include that delay).
    window = w1 - w0
    e_rate = (n1["tick"] - n0["tick"]) / (n1["time"] - n0["time"])
    f_rate = (r1["samples"] - r0["samples"]) / ((r1["t_ns"] - r0["t_ns"]) / 1e9)
    es, fs = e_rate * window, f_rate * window
    e_us, f_us = (ce1 - ce0) / es * 1e6, (cf1 - cf0) / fs * 1e6
    threads = {name: (t1[name] - t0.get(name, 0)) / es / 1e3 for name in t1}
    return {"interval_s": interval, "window_s": window, "channels": channels,
            "energyd_samples": es, "floor_samples": fs,
            "energyd_ticks_counted": n1["tick"] - n0["tick"],
            "floor_samples_counted": r1["samples"] - r0["samples"],
            "floor_failed_reads": r1["failed"] - r0["failed"],
            "energyd_cpu_s": ce1 - ce0, "floor_cpu_s": cf1 - cf0,
            "energyd_us_per_sample": e_us, "floor_us_per_sample": f_us, "ratio": e_us / f_us,
            "energyd_threads_us_per_sample": threads,
            "energyd_rss_kib": me["VmRSS"], "floor_rss_kib": mf["VmRSS"],
            "processes_scanned": procs.get("processes_scanned"),
            "scan_cost_s": procs.get("scan_cost_s")}


def peer_round(energyd_bin, floor_bin, fake, run, tag, seconds, pythons):
    """energyd (0.1 s), the floor and each peer on the same tree over the same window."""
    e, f, peers = None, None, []
    try:
        e = Energyd(energyd_bin, fake, run, tag, 0.1)
        f = Floor(floor_bin, fake, 0.1)
        peers = [Peer(name, py, fake, run) for name, py in pythons.items()]
        e.wait_ready()
        for p in peers:
            p.wait_ready()
        time.sleep(WARMUP_S)
        procs = {"energyd": e.pid, "floor": f.pid, **{p.name: p.pid for p in peers}}
        c0, w0 = {k: process_cpu_s(pid) for k, pid in procs.items()}, time.monotonic()
        time.sleep(seconds)
        c1, w1 = {k: process_cpu_s(pid) for k, pid in procs.items()}, time.monotonic()
        mem = {k: proc_mem_kib(pid)["VmRSS"] for k, pid in procs.items()}
        scanned = get(e.sock, "/api/v1/processes").get("processes_scanned")
        results = {p.name: p.finish() for p in peers}
    finally:
        for p in peers:
            stop_proc(p.proc)
        for p in (f, e):
            if p:
                p.stop()
    out = {}
    for k in procs:
        r = results.get(k, {})
        out[k] = {"cpu_percent": (c1[k] - c0[k]) / (w1 - w0) * 100, "rss_kib": mem[k],
                  "measured_watts": r.get("watts"), "samples": r.get("samples")}
    out["energyd"]["processes_scanned"] = scanned
    return out


def med_range(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def print_head(columns):
    """A markdown table's header row and its rule."""
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))


def print_pairs(rows, intervals):
    print("| interval | rounds | energyd CPU per sample | floor CPU per sample | "
          "**energyd ÷ floor** | target | energyd CPU load | floor CPU load | "
          "samples per round (energyd / floor) | RSS energyd / floor |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for iv in intervals:
        rs = [r for r in rows if r["interval_s"] == iv]
        ratios = [r["ratio"] for r in rs]
        target = TARGETS.get(iv)
        verdict = (f"≤ {target}×: {'met' if statistics.median(ratios) <= target else 'not met'}"
                   if target else "—")
        e_us = [r["energyd_us_per_sample"] for r in rs]
        print(f"| {iv} s | {len(rs)} | {med_range(e_us, '{:.1f}')} µs"
              f" | {med_range([r['floor_us_per_sample'] for r in rs], '{:.1f}')} µs"
              f" | **{med_range(ratios, '{:.2f}')}×** | {verdict}"
              f" | {statistics.median(r['energyd_cpu_s'] / r['window_s'] * 100 for r in rs):.2f} %"
              f" | {statistics.median(r['floor_cpu_s'] / r['window_s'] * 100 for r in rs):.2f} %"
              f" | {statistics.median(r['energyd_samples'] for r in rs):.0f} / "
              f"{statistics.median(r['floor_samples'] for r in rs):.0f}"
              f" | {statistics.median(r['energyd_rss_kib'] for r in rs) / 1024:.1f} / "
              f"{statistics.median(r['floor_rss_kib'] for r in rs) / 1024:.1f} MiB |")
    print()
    print("Per round (CPU µs per sample energyd / floor, ratio; processes in energyd's last "
          "scan):")
    print()
    print_head(["round"] + [f"{iv} s" for iv in intervals])
    for k in sorted({r["round"] for r in rows}):
        cells = []
        for iv in intervals:
            r = next(r for r in rows if r["round"] == k and r["interval_s"] == iv)
            cells.append(f"{r['energyd_us_per_sample']:.1f} / {r['floor_us_per_sample']:.1f}"
                         f" = {r['ratio']:.2f}× ({r['processes_scanned']})")
        print(f"| {k} | " + " | ".join(cells) + " |")
    print()
    print("energyd's CPU per sample by thread (the thread's name, its scheduler run time over "
          "the window; the sampler does the floor's work), median (range) over the rounds:")
    print()
    print_head(["thread"] + [f"{iv} s" for iv in intervals])
    names = sorted({n for r in rows for n in r["energyd_threads_us_per_sample"]},
                   key=lambda n: -statistics.median(
                       r["energyd_threads_us_per_sample"].get(n, 0) for r in rows))
    for name in names:
        cells = []
        for iv in intervals:
            xs = [r["energyd_threads_us_per_sample"].get(name, 0.0)
                  for r in rows if r["interval_s"] == iv]
            cells.append(f"{med_range(xs, '{:.1f}')} µs")
        print(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for iv in intervals:
        xs = [r["energyd_threads_us_per_sample"].get("energy-sampler", 0.0)
              / r["floor_us_per_sample"] for r in rows if r["interval_s"] == iv]
        cells.append(f"{med_range(xs, '{:.2f}')}×")
    print("| *energy-sampler ÷ floor* | " + " | ".join(cells) + " |")
    scanned = [r["processes_scanned"] for r in rows if r["processes_scanned"]]
    costs = [r["scan_cost_s"] * 1e3 for r in rows if r["scan_cost_s"]]
    failed = sum(r["floor_failed_reads"] for r in rows)
    print()
    print(f"energyd's attribution scanned {min(scanned)}–{max(scanned)} processes of this "
          f"machine, {med_range(costs, '{:.2f}')} ms per scan (its own scan_cost_s); "
          f"{rows[0]['channels']} channels; the floor's failed reads (a counter caught "
          f"mid-write): {failed}.")


def print_peers(peer_rows):
    names = list(peer_rows[0].keys())
    print("| program | sampling | CPU load (% of one core) | ÷ energyd | RSS | "
          "package power it measured (written: 30 W) |")
    print("| --- | --- | --- | --- | --- | --- |")
    sampling = {"energyd": "0.1 s (default configuration)", "floor": "0.1 s", **PEER_SAMPLING}
    for n in names:
        load = [r[n]["cpu_percent"] for r in peer_rows]
        ratio = [r[n]["cpu_percent"] / r["energyd"]["cpu_percent"] for r in peer_rows]
        watts = [r[n]["measured_watts"] for r in peer_rows if r[n]["measured_watts"]]
        print(f"| {n} | {sampling[n]} | {med_range(load, '{:.3f}')} % | "
              f"{med_range(ratio, '{:.2f}')}× | "
              f"{statistics.median(r[n]['rss_kib'] for r in peer_rows) / 1024:.1f} MiB | "
              f"{med_range(watts, '{:.2f}') + ' W' if watts else '—'} |")
    scanned = [r["energyd"]["processes_scanned"] for r in peer_rows]
    print()
    print("Per round, CPU load (% of one core) and the processes in energyd's last scan:")
    print()
    print_head(["round"] + names + ["processes"])
    for k, r in enumerate(peer_rows):
        print(f"| {k + 1} | " + " | ".join(f"{r[n]['cpu_percent']:.3f} %" for n in names)
              + f" | {scanned[k]} |")


def perf_profile(build_dir, seconds, interval):
    fp_dir = build_dir.with_name(build_dir.name + "-fp")
    if not (fp_dir / "build.ninja").exists():
        sh(["meson", "setup", str(fp_dir), "--buildtype=release", "-Dtests=false",
            "-Dc_args=-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer"],
           stdout=subprocess.DEVNULL)
    sh(["ninja", "-C", str(fp_dir), "energyd"], stdout=subprocess.DEVNULL)
    tmp = private_tmpfs("floor-perf-")
    try:
        run = Path(tmp)
        fake = fake_tree(run / "sys")
        e = Energyd(fp_dir / "energyd", fake, run, "perf", interval)
        try:
            e.wait_ready()
            time.sleep(WARMUP_S)
            data = str(run / "perf.data")
            sh(["perf", "record", "-q", "-g", "-F", str(PERF_FREQ), "-p", str(e.pid), "-o", data,
                "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            e.stop()
            fake.close()
        print(f"energyd ({fp_dir.name}/energyd) at {interval} s, "
              f"`perf record -g -F {PERF_FREQ}` for "
              f"{seconds:.0f} s, {conditions()['utc']} UTC, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}:")
        for title, extra in (("self", ["--no-children"]), ("with callees", ["--children"])):
            print(f"\n--- {title} ---")
            out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                                  "--sort", "comm,sym", "--percent-limit", "1", *extra],
                                 capture_output=True, text=True).stdout
            print("\n".join(line for line in out.splitlines()
                            if line.strip() and not line.startswith("#")))
    finally:
        subprocess.run(["umount", tmp])
        os.rmdir(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    ap.add_argument("--intervals", default="0.1,0.01,0.001")
    ap.add_argument("--peer-rounds", type=int, default=3, help="0: no peers")
    ap.add_argument("--build-dir", default="build-bench")
    ap.add_argument("--perf", type=float, metavar="SECONDS", help="profile energyd instead")
    ap.add_argument("--perf-interval", type=float, default=0.01)
    ap.add_argument("--energyd-arg", action="append", default=[], metavar="ARG",
                    help="one more energyd argument (repeat it): another configuration than "
                         "the default, to see what a part costs; the headline uses none")
    args = ap.parse_args()
    EXTRA_ARGS.extend(args.energyd_arg)
    if os.geteuid() != 0:
        sys.exit("run as root: energyd drops to nobody itself, the peers need a mount namespace")
    intervals = [float(x) for x in args.intervals.split(",")]
    build_dir = (ROOT / args.build_dir).resolve()
    if args.perf:
        perf_profile(build_dir, args.perf, args.perf_interval)
        return
    energyd_bin, floor_bin = build(build_dir)
    pythons = {n: peer_python(build_dir, n) for n in PEERS} if args.peer_rounds else {}

    command = "bench/floor_ratio.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    start = conditions()
    rows, peer_rows = [], []
    tmp = private_tmpfs("floor-ratio-")
    try:
        run = Path(tmp)
        fake = fake_tree(run / "sys")
        try:
            for k in range(args.rounds):
                order = intervals[k % len(intervals):] + intervals[:k % len(intervals)]
                for j, iv in enumerate(order):
                    r = pair_round(energyd_bin, floor_bin, fake, run, f"{k}-{iv}", iv,
                                   args.seconds, (k + j) % 2 == 0)
                    r["round"] = k + 1
                    rows.append(r)
                    print(f"# round {k + 1}, {iv} s: energyd {r['energyd_us_per_sample']:.1f} "
                          f"µs, floor {r['floor_us_per_sample']:.1f} µs per sample, "
                          f"{r['ratio']:.2f}×", file=sys.stderr, flush=True)
            for k in range(args.peer_rounds):
                peer_rows.append(peer_round(energyd_bin, floor_bin, fake, run, f"peers-{k}",
                                            args.seconds, pythons))
                print(f"# peers round {k + 1}: " + ", ".join(
                    f"{n} {v['cpu_percent']:.3f} %" for n, v in peer_rows[-1].items())
                    + f" ({peer_rows[-1]['energyd']['processes_scanned']} processes)",
                    file=sys.stderr, flush=True)
        finally:
            fake.close()
    finally:
        subprocess.run(["umount", tmp])
        os.rmdir(tmp)
    end = conditions()
    m = machine()

    print(f"Recorded {start['utc']} to {end['utc'][11:]} UTC, commit {commit()}, "
          f"`{command}`.")
    print(f"Machine: {m['nproc']} CPUs ({m['model']}), {m['mem_gib']} GiB, kernel "
          f"{m['kernel']}; load average {' '.join(map(str, start['loadavg']))} at the start, "
          f"{' '.join(map(str, end['loadavg']))} at the end; {start['processes']} processes at "
          f"the start, {end['processes']} at the end. Release build ({args.build_dir}/); the fake "
          "tree on a tmpfs mounted noatime.")
    if rows:
        print()
        print_pairs(rows, intervals)
    if peer_rows:
        print()
        print(f"Peers, {len(peer_rows)} rounds of {args.seconds:.0f} s, all at the same time "
              "on the same tree (median and range):")
        print()
        print_peers(peer_rows)
    out = build_dir / "floor_ratio"
    out.mkdir(exist_ok=True)
    stamp = start["utc"].replace(" ", "T").replace(":", "")
    (out / f"{stamp}.json").write_text(json.dumps(
        {"command": command, "commit": commit(), "machine": m, "start": start, "end": end,
         "pairs": rows, "peers": peer_rows}, indent=1))


if __name__ == "__main__":
    main()
