#!/usr/bin/env python3
"""`now` through Jupyter against jupyter-power-usage's endpoint, side by side with wrk.

Starts, on one fake RAPL tree (4 counters: package-0 and its core, uncore and dram, driven by
tests/emulators/powercap.py):

- a release energyd (build-bench-api/), listening on a unix socket and on 127.0.0.1 (the
  "energyd direct" reference);
- a Jupyter server with our extension (the worktree's python/ first on PYTHONPATH, in the
  Python of --python, default .venv/ after `./run.sh --install-only`), pointed at that energyd:
  GET /api/energy/v1/now; with --before DIR, a second one with DIR/python instead (another
  commit's tree: `git archive COMMIT python | tar -x -C DIR`), old and new side by side;
- a Jupyter server with jupyter-power-usage (PyPI, its own venv in bench/out/venv-jpu, made on
  first use), its default configuration, reading the same tree bound over /sys in a private
  mount namespace (unshare -m): GET /api/metrics/v1/power_usage;
- and, as the floor of any Jupyter route, Jupyter's own cheapest API answer from the server of
  our extension: GET /api (its version, a constant; the same authentication, headers and log as
  any API request of that server, nothing else).

Every Jupyter server gets a token and wrk sends it in the Authorization header, with no cookie,
for every server alike (a browser sends Jupyter's login cookie instead; without it, Jupyter
signs a new one for each request, which costs every server the same). Each round runs wrk
(Debian's) for SECONDS on each target at 1 connection and at 8, the targets' order rotating from
round to round so that each sees the same noise; an answer of ours or energyd's that is not a
2xx stops the benchmark (jupyter-power-usage's are counted and reported). Reported: the median
and range over the rounds of requests/s, of wrk's p99 latency and of the serving process's CPU
time per request, and the median and range of the per-round ratio to jupyter-power-usage
(measured in the same round), counting all its answers and, when some were errors, its 2xx
answers only (its rate times its share of 2xx answers in that round: an error answers at once
and carries no figure; on an idle machine 40 % of them were errors), and the same ratio of our
route to Jupyter's own /api.

usage: bench/api_cost.py [--rounds N] [--seconds S] [--python PY] [--before DIR]
                         [--profile OUT]
       --profile: after the rounds, sample our Jupyter server with py-spy (PyPI, in
       bench/out/venv-tools) during one more 1-connection run and write where its time goes
       to OUT.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from emulators.powercap import FakePowercap, Zone  # noqa: E402

BUILD = ROOT / "build-bench-api"
JPU_VENV = ROOT / "bench" / "out" / "venv-jpu"
JPU_VERSION = "1.2.1"
TOKEN = "api-cost-bench-token"
CONNECTIONS = (1, 8)
OURS = "through Jupyter (ours)"
BEFORE = "through Jupyter (--before)"
JPU = "jupyter-power-usage"
DIRECT = "energyd direct"
JFLOOR = "Jupyter's own /api (floor)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 90.0, headers=None) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout_s:g} s")
        time.sleep(0.25)


def jupyter_env(tmp: Path, name: str) -> dict:
    """A Jupyter of its own: config, data and runtime directories under tmp (none of the
    user's), so that only the venv's own extensions load."""
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        d = tmp / name / var.lower()
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    env["HOME"] = str(tmp / name)
    env.pop("ENERGYD_SOCKET", None)
    return env


def jupyter_args(port: int, root_dir: Path) -> list:
    root_dir.mkdir(parents=True, exist_ok=True)
    return ["--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
            "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root_dir}",
            "--ServerApp.log_level=WARN", "--allow-root"]


def ensure_jpu_venv() -> Path:
    py = JPU_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(JPU_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"jupyter-power-usage=={JPU_VERSION}"], check=True)
    return py


def cpu_s(pid: int) -> float:
    """CPU time of a process, seconds: utime + stime of /proc/PID/stat, which keep the time of
    its threads that ended (energyd's connection threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, connections: int, seconds: float, server_pid: int = 0,
        errors_allowed: bool = False) -> dict:
    """wrk's rate and p99, and the server's CPU time per request. Every answer counts in the
    rate; with errors_allowed (jupyter-power-usage, whose handler fails now and then with a
    ZeroDivisionError when two requests come close together), its non-2xx answers are
    counted and reported, otherwise any non-2xx answer stops the benchmark."""
    threads = min(connections, os.cpu_count() or 1)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
           "--timeout", "30s", "-H", f"Authorization: token {TOKEN}", url]
    cpu0 = cpu_s(server_pid) if server_pid else 0.0
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    cpu1 = cpu_s(server_pid) if server_pid else 0.0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    p99_ms = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if (bad and not errors_allowed) or errors or rate <= 0:
        raise RuntimeError(f"wrk on {url}: not every answer was a 2xx:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rate": rate, "p99_ms": p99_ms, "cpu_us": (cpu1 - cpu0) / requests * 1e6,
            "requests": requests, "non_2xx": int(bad.group(1)) if bad else 0}


def check_answers(targets: dict) -> None:
    """Each target answers what it should, with the token, before it is measured."""
    for name, (url, check) in targets.items():
        req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            data = json.loads(r.read())
        if not check(data):
            raise RuntimeError(f"{name}: unexpected answer {json.dumps(data)[:300]}")
        # and without it, refused (403, or a redirection to the login page); Jupyter answers
        # its version to anybody
        if name not in (DIRECT, JFLOOR):
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", parts.path)
            status = conn.getresponse().status
            conn.close()
            if status not in (302, 403):
                raise RuntimeError(f"{name}: answered {status} without the token")


def summary(values: list) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def summary_ms(values: list) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"),
                    help="the Python whose Jupyter serves our extension")
    ap.add_argument("--before", help="also serve our extension from DIR/python (another "
                    "commit's tree, e.g. from git archive) in a Jupyter server of its own")
    ap.add_argument("--profile", help="write where our Jupyter server's time goes (py-spy) here")
    args = ap.parse_args()
    for tool in ("wrk", "unshare", "meson", "ninja"):
        if not shutil.which(tool):
            print(f"api_cost: {tool} is missing (Debian: apt-get install {tool})", file=sys.stderr)
            return 2
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release", "-Dtests=false"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    jpu_python = ensure_jpu_venv()

    procs: list = []
    with tempfile.TemporaryDirectory(prefix="api-cost-") as tmp_s:
        tmp = Path(tmp_s)
        # energyd started as root drops to nobody: its state directory stays writable for it;
        # its socket's directory is writable by root only (energyd refuses any other).
        (tmp / "state").mkdir(mode=0o777)
        os.chmod(tmp / "state", 0o777)
        (tmp / "run").mkdir(mode=0o755)
        sysfs = tmp / "sys"
        fake = FakePowercap(str(sysfs), [Zone("intel-rapl:0", "package-0", 30.0, children=[
            Zone("intel-rapl:0:0", "core", 20.0), Zone("intel-rapl:0:1", "uncore", 2.0),
            Zone("intel-rapl:0:2", "dram", 5.0)])], period_s=0.005).start()
        # The kernel's control-type directory, which jupyter-power-usage looks for.
        os.symlink("../../devices/virtual/powercap/intel-rapl",
                   sysfs / "class" / "powercap" / "intel-rapl")
        sock = str(tmp / "run" / "energyd.sock")
        direct_port, jpu_port = free_port(), free_port()
        pids = {}
        try:
            procs.append(subprocess.Popen(
                [str(BUILD / "energyd"), "--sysfs-root", str(sysfs), "--listen", f"unix:{sock}",
                 "--listen", f"127.0.0.1:{direct_port}", "--interval", "0.1", "--state-dir",
                 str(tmp / "state")], stderr=subprocess.DEVNULL))
            pids[DIRECT] = procs[-1].pid
            # Our extension from the worktree's python/ (and, with --before, from another
            # commit's), in the same Python.
            ours = {OURS: ROOT / "python"}
            if args.before:
                ours[BEFORE] = Path(args.before).resolve() / "python"
            targets = {}
            for i, (name, source) in enumerate(ours.items()):
                env = jupyter_env(tmp, f"ours{i}")
                env["PYTHONPATH"] = str(source)
                port = free_port()
                procs.append(subprocess.Popen(
                    [args.python, "-m", "jupyter_server", *jupyter_args(port, tmp / f"nb{i}"),
                     "--ServerApp.jpserver_extensions=jupyter_energy=True",
                     f"--EnergyExtensionApp.socket_path={sock}",
                     "--EnergyExtensionApp.auto_start=False"],
                    env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / f"ours{i}.log", "wb")))
                pids[name] = procs[-1].pid
                targets[name] = (f"http://127.0.0.1:{port}/api/energy/v1/now",
                                 lambda d: d["host"]["watts"] is not None)
                if name == OURS:
                    floor_url = f"http://127.0.0.1:{port}/api"
            targets[JFLOOR] = (floor_url, lambda d: "version" in d)
            pids[JFLOOR] = pids[OURS]
            # unshare and sh exec into Python: the Popen's pid is the server's.
            jpu_cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                       f'mount --bind "$0" /sys && exec "$@"', str(sysfs), str(jpu_python), "-m",
                       "jupyter_server", *jupyter_args(jpu_port, tmp / "nb-jpu")]
            procs.append(subprocess.Popen(jpu_cmd, env=jupyter_env(tmp, "jpu"),
                                          stdout=subprocess.DEVNULL,
                                          stderr=open(tmp / "jpu.log", "wb")))
            pids[JPU] = procs[-1].pid
            auth = {"Authorization": f"token {TOKEN}"}
            targets[JPU] = (f"http://127.0.0.1:{jpu_port}/api/metrics/v1/power_usage",
                            lambda d: d.get("cpu", {}).get("usage") is not None)
            targets[DIRECT] = (f"http://127.0.0.1:{direct_port}/api/v1/now",
                               lambda d: d["host"]["watts"] is not None)
            for name, (url, _) in targets.items():
                wait_http(url, headers=auth)
            time.sleep(2.0)  # energyd's watts need a second of samples
            check_answers(targets)
            load_before = os.getloadavg()
            results = {(n, c): [] for n in targets for c in CONNECTIONS}
            names = list(targets)
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for c in CONNECTIONS:
                    for name in order:
                        results[(name, c)].append(wrk(targets[name][0], c, args.seconds,
                                                      pids[name], name == JPU))
                print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr)
            load_after = os.getloadavg()
            upstream = {}
            for name in (OURS, BEFORE):
                if name in targets:
                    req = urllib.request.Request(targets[name][0].replace("/now", "/status"),
                                                 headers=auth)
                    with urllib.request.urlopen(req, timeout=10) as r:
                        upstream[name] = json.loads(r.read()).get("upstream")
            profile = None
            if args.profile:
                profile = profile_round(pids[OURS], targets[OURS][0], max(args.seconds, 5.0),
                                        tmp)
        except BaseException:
            for log in ("ours0.log", "ours1.log", "jpu.log"):
                if (tmp / log).exists():
                    print(f"--- {log}:\n{(tmp / log).read_text(errors='replace')[-3000:]}",
                          file=sys.stderr)
            raise
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    p.terminate()
            for p in reversed(procs):
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            fake.close()

    print(f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
          f"{os.uname().nodename} ({os.cpu_count()} CPUs, nproc "
          f"{len(os.sched_getaffinity(0))}), load average "
          f"{load_before[0]:.2f} before / {load_after[0]:.2f} after; "
          f"`{' '.join(['bench/api_cost.py', *sys.argv[1:]])}`: "
          f"{args.rounds} rounds × {args.seconds:g} s per target and connection count, "
          f"wrk {wrk_version()}, jupyter-power-usage {JPU_VERSION} (default configuration).")
    print()
    print("| target | connections | requests/s, median (range) | p99 ms, median (range) | "
          "server CPU µs per request, median (range) |")
    print("| --- | --- | --- | --- | --- |")
    for c in CONNECTIONS:
        for name in names:
            rs = results[(name, c)]
            print(f"| {name} | {c} | {summary([x['rate'] for x in rs])} | "
                  f"{summary_ms([x['p99_ms'] for x in rs])} | "
                  f"{summary([x['cpu_us'] for x in rs])} |")
    print()
    for c in CONNECTIONS:
        rs = results[(JPU, c)]
        failed = sum(x["non_2xx"] for x in rs)
        if failed:
            print(f"jupyter-power-usage, {c} connection(s): {failed} of "
                  f"{sum(x['requests'] for x in rs)} answers were not 2xx (counted in its "
                  f"rate; the ratios over its 2xx answers only leave them out).")
    for name, counts in upstream.items():
        if counts:
            print(f"{name}: {counts['now_from_stream']} `now` answers from the shared event "
                  f"stream, {counts['requests']} requests forwarded on "
                  f"{counts['connections_opened']} connection(s) to energyd "
                  f"({counts['streams_opened']} event stream(s) opened).")
    print()
    print("| ratio, same round (median, range) | 1 connection | 8 connections |")
    print("| --- | --- | --- |")
    rows = [(n, JPU) for n in names if n != JPU] + [(OURS, JFLOOR)] + \
        ([(OURS, BEFORE)] if BEFORE in names else [])
    for name, base in rows:
        cells = []
        for c in CONNECTIONS:
            ratios = [a["rate"] / b["rate"] for a, b in zip(results[(name, c)],
                                                              results[(base, c)])]
            cells.append(f"{statistics.median(ratios):.1f}× "
                         f"({min(ratios):.1f}–{max(ratios):.1f}×)")
        print(f"| {name} ÷ {base} | {cells[0]} | {cells[1]} |")
    # jupyter-power-usage's errors answer at once, without its figures: when they are many, its
    # rate counting them says more than it serves. The same ratios over its 2xx answers alone.
    if any(x["non_2xx"] for c in CONNECTIONS for x in results[(JPU, c)]):
        for name, base in rows:
            if base != JPU:
                continue
            cells = []
            for c in CONNECTIONS:
                ratios = [a["rate"] / (b["rate"] * (b["requests"] - b["non_2xx"]) / b["requests"])
                          for a, b in zip(results[(name, c)], results[(JPU, c)])
                          if b["requests"] > b["non_2xx"]]
                cells.append(f"{statistics.median(ratios):.1f}× "
                             f"({min(ratios):.1f}–{max(ratios):.1f}×)" if ratios else "—")
            print(f"| {name} ÷ {JPU}, its 2xx answers only | {cells[0]} | {cells[1]} |")
    raw = ROOT / "bench" / "out" / "api_cost.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({f"{n} @{c}": r for (n, c), r in results.items()}, indent=1))
    print(f"\nEvery round's figures: {raw.relative_to(ROOT)}")
    if profile:
        Path(args.profile).write_text(profile)
        print(f"\nWhere our Jupyter server's time goes (py-spy): {args.profile}")
    return 0


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    m = re.search(r"wrk ([\w.-]+)", out.stdout + out.stderr)
    return m.group(1) if m else "?"


def profile_round(server_pid: int, url: str, seconds: float, tmp: Path) -> str:
    """Where our Jupyter server's time goes while wrk asks `now` on 1 connection: py-spy (PyPI,
    bench/out/venv-tools) samples the running server; the functions on the most samples (any
    frame of the stack, and the innermost one), in % of the samples where the server was busy."""
    py_spy = ROOT / "bench" / "out" / "venv-tools" / "bin" / "py-spy"
    if not py_spy.exists():
        subprocess.run([sys.executable, "-m", "venv", str(py_spy.parents[1])], check=True)
        subprocess.run([str(py_spy.parent / "pip"), "install", "-q", "--disable-pip-version-check",
                        "py-spy"], check=True)
    raw = tmp / "py-spy.txt"
    spy = subprocess.Popen([str(py_spy), "record", "--pid", str(server_pid), "--duration",
                            f"{seconds:g}", "--rate", "1000", "--format", "raw", "--output",
                            str(raw), "--nonblocking"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attached
    got = wrk(url, 1, seconds - 2)
    spy.wait(seconds + 30)
    inclusive: dict = {}
    own: dict = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    lines = [f"py-spy, {total} busy samples at 1 kHz while wrk ran (1 connection, "
             f"{got['rate']:.0f} requests/s under sampling); % of busy samples", "",
             "on the stack:"]
    for f, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:40]:
        lines.append(f"{100 * n / max(total, 1):5.1f} %  {f}")
    lines += ["", "innermost:"]
    for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:25]:
        lines.append(f"{100 * n / max(total, 1):5.1f} %  {f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
