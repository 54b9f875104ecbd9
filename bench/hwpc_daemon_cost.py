#!/usr/bin/env python3
"""What the hardware-counter model (hwpc-model) adds to energyd's CPU time, side by side.

One emulated machine (tests/emulators: a RAPL package on a fake powercap tree, a fake /proc of
2 CPUs, and tests/emulators/hwpc.py's counters of 8 busy processes whose true power is a linear
function of their counters, served by the LD_PRELOAD shim hwpc_shim.c) is read by five release
energyds at once (build-rel/, default configuration: 0.1 s samples, store, carbon, attribution
with the default error window of 60 windows of 1 s unless WINDOW is given):

    hwpc off, 0 watches | hwpc on, 0 watches | hwpc on, 1 watch | hwpc on, 8 watches |
    hwpc off, 8 watches

"hwpc on, 0 watches" is the floor of the same work (the machine's counters are read and the
model learns, no scope is counted); "hwpc off" are the same daemons without counters.
Each round starts the five daemons (their start order rotates from round to round, so that a
slot does not pass for a cost), registers the watches, waits until every daemon with counters
has a usable model (the method is hwpc-model: fitted with its intercept, error under 2 W),
then reads the CPU time of all five (schedstat, all threads) over the same DURATION seconds.
Prints each round, then the median and range of each daemon's CPU load and of the ratios.

usage: bench/hwpc_daemon_cost.py [ROUNDS] [DURATION_S] [WINDOW]   (default 5 rounds of 30 s, 60)
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from daemon_cost import UnixConn, proc_cpu_s  # noqa: E402
from emulators import hwpc, powercap  # noqa: E402
from emulators.procfs import FakeProc  # noqa: E402

BUILD = ROOT / "build-rel"
ENERGYD = BUILD / "energyd"
PIDS = list(range(100, 108))
# name, --hwpc, watched pids
CONFIGS = [("off, 0 watches", "off", []), ("on, 0 watches", "on", []),
           ("on, 1 watch", "on", PIDS[:1]), ("on, 8 watches", "on", PIDS),
           ("off, 8 watches", "off", PIDS)]


def request(sock, method, path, body=None):
    c = UnixConn(sock)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    return r.status, json.loads(r.read())


def machine(tmp):
    """The emulated machine: one package (45 W limit), 2 CPUs, 8 busy processes."""
    pc = powercap.FakePowercap(Path(tmp) / "sys",
                               [powercap.Zone("intel-rapl:0", "package-0", 0.0)])
    with open(Path(tmp) / "sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw",
              "w") as f:
        f.write("45000000\n")
    proc = FakeProc(Path(tmp) / "proc", ncpu=2, busy_rate=200.0, period_s=3600)
    proc.add(1, 0, 0, 0.0, "init")
    tasks = []
    for k, pid in enumerate(PIDS):
        proc.add(pid, 1, 0, 25.0, f"task{k}")
        tasks.append(hwpc.Task(pid, k % 2, ghz=2.4, ipc=0.4 + 0.35 * k,
                               llc_per_kinstr=0.05 + 2.5 * k))
    hw = hwpc.FakeHwpc(Path(tmp) / "hwpc", Path(tmp) / "sys", pc, "package-0", proc, tasks, 2,
                       period_s=0.02)
    return pc, proc, hw.start()


def start(tmp, name, hwpc_switch, pids, hw, window):
    sock = f"{tmp}/run/{name}.sock"  # in a directory only root may write
    cmd = [str(ENERGYD), "--sysfs-root", f"{tmp}/sys", "--proc-root", f"{tmp}/proc",
           "--listen", f"unix:{sock}", "--interval", "0.1", "--state-dir", f"{tmp}/state/{name}",
           "--hwpc", hwpc_switch, "--hwpc-error-window", str(window)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/{name}.log", "w"),
                            env={**os.environ, **hw.shim_env(BUILD, ENERGYD)})
    for _ in range(500):
        if proc.poll() is not None:
            raise RuntimeError(f"energyd exited: {open(f'{tmp}/{name}.log').read()}")
        try:
            if request(sock, "GET", "/api/v1/info")[0] == 200:
                break
        except OSError:
            time.sleep(0.02)
    for pid in pids:
        status, body = request(sock, "POST", "/api/v1/watch",
                               json.dumps({"pid": pid, "label": f"task{pid}"}))
        assert status == 201, body
    return proc, sock


def run(tmp, k, duration, hw, window):
    order = [(k + i) % len(CONFIGS) for i in range(len(CONFIGS))]
    daemons = {}
    try:
        for i in order:
            name, switch, pids = CONFIGS[i]
            daemons[i] = start(tmp, f"r{k}c{i}", switch, pids, hw, window)
        deadline = time.time() + 4 * window + 60
        while True:
            methods = {i: request(daemons[i][1], "GET", "/api/v1/model")[1]["method"]
                       for i in daemons if CONFIGS[i][1] == "on"}
            if all(m == "hwpc-model" for m in methods.values()):
                break
            if time.time() > deadline:
                raise TimeoutError(f"the model did not become usable: {methods}")
            time.sleep(1.0)
        time.sleep(2.0)  # the watches' first windows split by the model
        c0 = {i: proc_cpu_s(daemons[i][0].pid) for i in daemons}
        time.sleep(duration)
        c1 = {i: proc_cpu_s(daemons[i][0].pid) for i in daemons}
        # What each daemon with watches did in the round: the watches' methods, descriptors.
        split = {}
        for i in daemons:
            ws = request(daemons[i][1], "GET", "/api/v1/watch")[1]
            ws = ws.get("watches", ws) if isinstance(ws, dict) else ws
            split[i] = sum(1 for w in ws if w.get("method") == "hwpc-model")
        fds = {i: request(daemons[i][1], "GET", "/api/v1/model")[1]["counters"]["descriptors"]
               for i in daemons}
    finally:
        for proc, _ in daemons.values():
            proc.terminate()
            proc.wait()
    return {i: (c1[i] - c0[i]) / duration * 100 for i in daemons}, split, fds


def med_range(v, fmt):
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release"], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.node()}, {cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {rounds} rounds of "
          f"{duration:.0f} s, --hwpc-error-window {window}")
    names = [c[0] for c in CONFIGS]
    print("| round | " + " | ".join(f"hwpc {n}" for n in names) + " | on 1 ÷ on 0 | on 8 ÷ on 0 "
          "| on 8 ÷ off 8 | watches split by hwpc-model (1 / 8) | descriptors (0 / 1 / 8) |")
    print("| --- " * (len(names) + 6) + "|")
    loads, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # The sockets in directories only root may write (energyd checks), the records where
        # energyd, dropped to nobody, may write.
        os.chmod(tmp, 0o755)
        os.mkdir(f"{tmp}/run", 0o755)
        os.mkdir(f"{tmp}/state", 0o755)
        os.chmod(f"{tmp}/state", 0o777)
        pc, proc, hw = machine(tmp)
        try:
            for k in range(rounds):
                load, split, fds = run(tmp, k, duration, hw, window)
                loads.append(os.getloadavg()[0])
                r = {"load": load, "r1": load[2] / load[1], "r8": load[3] / load[1],
                     "r8off": load[3] / load[4]}
                results.append(r)
                print(f"| {k + 1} | " + " | ".join(f"{load[i]:.3f} %" for i in range(len(names)))
                      + f" | {r['r1']:.2f}× | {r['r8']:.2f}× | {r['r8off']:.2f}× | "
                      f"{split[2]} / {split[3]} | {fds[1]} / {fds[2]} / {fds[3]} |", flush=True)
        finally:
            hw.close()
            proc.close()
            pc.close()
    print(f"\nload average after each round: {' '.join(f'{x:.2f}' for x in loads)}")
    for i, n in enumerate(names):
        print(f"hwpc {n}: CPU load median and range "
              f"{med_range([r['load'][i] for r in results], '{:.3f}')} % of a core")
    for key, label in (("r1", "on, 1 watch ÷ on, 0 watches"),
                       ("r8", "on, 8 watches ÷ on, 0 watches"),
                       ("r8off", "on, 8 watches ÷ off, 8 watches")):
        print(f"{label}: {med_range([r[key] for r in results], '{:.2f}')}×")
    extra8 = [(r["load"][3] - r["load"][4]) for r in results]
    extra0 = [(r["load"][1] - r["load"][0]) for r in results]
    print(f"hwpc on - off, 0 watches: {med_range(extra0, '{:+.3f}')} % of a core")
    print(f"hwpc on - off, 8 watches: {med_range(extra8, '{:+.3f}')} % of a core")


if __name__ == "__main__":
    main()
