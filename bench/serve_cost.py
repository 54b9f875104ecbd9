#!/usr/bin/env python3
"""GET /api/v1/now served by two energyd binaries side by side, measured with wrk (Debian's):
typically one built before the epoll thread pool (a thread per connection) and one after.

Both run at the same time on one fake powercap tree (tests/emulators/powercap.py's `server`: two
packages, each with its dram: 4 counters) at --interval 0.1, with --store off and no process scans, each on
a loopback TCP port (wrk speaks no unix sockets). Each round runs wrk against each binary in
turn, alternating which goes first, for every case: a new connection per request
(`Connection: close`) and keep-alive, with 1 and 8 connections (one wrk thread). Prints, per
case, the requests per second of each (median and range over the rounds) and the ratio
new / old of each round (median and range), and energyd's CPU time per request (utime + stime of
/proc/PID/stat over the wrk run, ended threads included, divided by the requests wrk completed;
it includes the sampling of that time, 1-2 % of a request's cost here), which the machine's
other load disturbs less than the rate. Two more cases per round, on each daemon in turn: idle
(no client) and STREAMS event streams read for SECONDS: the daemon's CPU ms per second of wall
time (the sum of its threads' schedstat, all of which live through the measurement), and the
events the streams received. --connections-per-user is raised to 64 for both, so
that connections closing while new ones open are never refused; wrk's count of non-2xx answers
and socket errors is printed too (it must be 0).

usage: bench/serve_cost.py ENERGYD_OLD ENERGYD_NEW [ROUNDS [SECONDS [STREAMS]]]
"""
import contextlib
import os
import platform
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from emulators import powercap  # noqa: E402

PATH = "/api/v1/now"
CASES = [("new connection per request", 1), ("new connection per request", 8),
         ("keep-alive", 1), ("keep-alive", 8)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(proc, port, mode, conns, seconds):
    """(requests per second, CPU µs per request, non-2xx answers + socket errors, p99)."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if mode != "keep-alive":
        cmd += ["-H", "Connection: close"]
    c0 = cpu_s(proc.pid)
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{PATH}"], capture_output=True,
                         text=True, timeout=seconds + 30).stdout
    cpu = cpu_s(proc.pid) - c0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errs:
        # wrk counts the server's close after each `Connection: close` answer as a read error
        # on some versions: count only connect, write and timeout errors.
        bad += int(errs.group(1)) + int(errs.group(3)) + int(errs.group(4))
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return rps, cpu / max(done, 1) * 1e6, bad, p99.group(1) if p99 else "?"


def start(exe, tmp, k):
    """energyd on a free loopback port, once it accepts connections: (process, port)."""
    port = free_port()
    state = Path(tmp, f"state{k}")
    state.mkdir()
    state.chmod(0o777)  # started as root, energyd drops to another account
    proc = subprocess.Popen(
        [exe, "--sysfs-root", f"{tmp}/sys", "--listen", f"127.0.0.1:{port}", "--interval",
         "0.1", "--store", "off", "--scan-interval", "86400", "--connections-per-user", "64",
         "--state-dir", str(state)], stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{exe} ended: {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc, port
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def threads_cpu_s(pid):
    """CPU time of the daemon's live threads (/proc/PID/task/*/schedstat, nanoseconds): finer
    than the 10 ms ticks of cpu_s, for threads that live through the measurement."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def read_streams(socks, seconds):
    """Read every stream for `seconds`: the events received."""
    events = 0
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if not socks:
            time.sleep(left)
            continue
        for s in select.select(socks, [], [], left)[0]:
            events += s.recv(1 << 16).count(b"data: ")
    return events


def streams_cpu(proc, port, n, seconds):
    """(CPU ms per second of the daemon, events received per stream) while n event streams are
    read for `seconds`; n = 0: idle."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), 10)
        s.sendall(f"GET /api/v1/stream HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        socks.append(s)
    read_streams(socks, 0.5)  # the streams' threads (old build) exist before the measurement
    c0, t0 = threads_cpu_s(proc.pid), time.monotonic()
    events = read_streams(socks, seconds)
    cpu = (threads_cpu_s(proc.pid) - c0) / (time.monotonic() - t0) * 1e3
    for s in socks:
        s.close()
    return cpu, events / max(n, 1)


def span(values, fmt):
    """The median and (range) of values."""
    return (f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–"
            f"{max(values):{fmt}})")


def stop(proc):
    proc.terminate()
    proc.wait()


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    binaries = sys.argv[1:3]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    n_streams = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    idle = [[], []]
    streaming = [[], []]
    events = [[], []]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as cleanup:
        fake = powercap.server(f"{tmp}/sys").start()
        cleanup.callback(fake.close)
        procs, ports = [], []
        for k, exe in enumerate(binaries):
            proc, port = start(exe, tmp, k)
            cleanup.callback(stop, proc)
            procs.append(proc)
            ports.append(port)
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{platform.node()} {platform.machine()}, nproc {os.cpu_count()}, load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start", flush=True)
        rps = {c: [[], []] for c in CASES}
        us = {c: [[], []] for c in CASES}
        p99 = {c: [[], []] for c in CASES}
        bad = [0, 0]
        for r in range(rounds):
            for case in CASES:
                for k in ([0, 1] if r % 2 == 0 else [1, 0]):
                    v, u, b, p = wrk(procs[k], ports[k], case[0], case[1], seconds)
                    rps[case][k].append(v)
                    us[case][k].append(u)
                    p99[case][k].append(p)
                    bad[k] += b
            for k in ([0, 1] if r % 2 == 0 else [1, 0]):
                idle[k].append(streams_cpu(procs[k], ports[k], 0, seconds)[0])
                cpu, ev = streams_cpu(procs[k], ports[k], n_streams, seconds)
                streaming[k].append(cpu)
                events[k].append(ev)
            print(f"# round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}",
                  flush=True)
        print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; "
              f"{rounds} rounds of wrk -t1 -d{seconds}s per case and binary; non-2xx "
              f"answers and socket errors: old {bad[0]}, new {bad[1]}")
        print("| case | conns | old req/s | new req/s | new ÷ old req/s | old CPU µs/req "
              "| new CPU µs/req | new ÷ old CPU/req | p99 old / new (last round) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for case in CASES:
            o, n = rps[case]
            uo, un = us[case]
            print(f"| {case[0]} | {case[1]} | {span(o, '.0f')} | {span(n, '.0f')} | "
                  f"{span([b / a for a, b in zip(o, n)], '.2f')} | {span(uo, '.0f')} | "
                  f"{span(un, '.0f')} | {span([b / a for a, b in zip(uo, un)], '.2f')} | "
                  f"{p99[case][0][-1]} / {p99[case][1][-1]} |")
        print(f"\n| daemon | idle: CPU ms/s | {n_streams} streams: CPU ms/s | events per stream "
              f"in {seconds} s |")
        print("| --- | --- | --- | --- |")
        for k, name in enumerate(("old", "new")):
            print(f"| {name} | {span(idle[k], '.1f')} | {span(streaming[k], '.1f')} | "
                  f"{span(events[k], '.0f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
