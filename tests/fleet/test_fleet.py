"""Three energyd "nodes" on emulated RAPL with known power profiles, two real users' busy
processes on one of them, and a real Prometheus (Debian's) scraping all three every second with
the shipped rules. Prometheus's answers are compared with what the emulators wrote (energy per
node within 2 %), with energyd's own API (energy per user within 5 %), and every query of the
shipped Grafana dashboard must return data.

Runs as root (it creates two local users, removed at the end). About two minutes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fleet import (DEPLOY, ENERGYD, LocalUser, Node, Prometheus, busy_as, wait_until)
from emulators import powercap
from emulators.procfs import FakeProc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates local users: needs root")

WINDOW_S = 60.0  # the window of the node and fleet checks
USER_WINDOW_S = 40.0
NODE1_BEFORE_W, NODE1_AFTER_W = 25.0, 60.0
POD = "7d6c5b4a-3f2e-4d1c-8b0a-9e8f7d6c5b4a"
HEX64 = "89abcdef01234567" * 4
PODS = {  # leaf cgroups of node 0 (a Kubernetes node with the systemd cgroup driver)
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD.replace('-', '_')}"
    f".slice/cri-containerd-{HEX64}.scope": 0.3e6,
    "/system.slice/energyd.service": 0.05e6,
}
CARBON = "[carbon]\nprovider = static\nzone = {zone}\nprice_per_kwh = 0.3\ncurrency = EUR\n"


@pytest.fixture(scope="module")
def fleet():
    assert ENERGYD.exists(), f"build energyd first ({ENERGYD})"
    tmp = Path(tempfile.mkdtemp(prefix="energy-fleet-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    nodes, users, busy, extra = [], [], [], []
    prom = None
    problems = ""
    try:
        suffix = os.getpid() % 100000
        users = [LocalUser(f"jefleeta{suffix}"), LocalUser(f"jefleetb{suffix}")]
        # node 0: a two-socket server (40 + 30 W packages, 6 + 4 W dram), real /proc with the
        # users' processes, a fake cgroup tree with a Kubernetes pod.
        cg = tmp / "cgroup"
        pods = FakeProc(tmp / "fakeproc", cgroup_root=cg)
        os.makedirs(cg, exist_ok=True)
        (cg / "cgroup.controllers").write_text("cpu\n")
        for path, rate in PODS.items():
            pods.add_cgroup(path, rate)
        pods.start()
        extra.append(pods)
        server = powercap.server(str(tmp / "sys0"))
        nodes.append(Node("node0", tmp, server,
                          ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"],
                          ["--scan-interval", "0.25", "--cgroup-root", str(cg)],
                          CARBON.format(zone="FR")))
        # nodes 1 and 2 have their own (fake) /proc: a root daemon, none of the users
        procs = []
        for k in (1, 2):
            p = FakeProc(tmp / f"proc{k}", ncpu=8, busy_rate=200.0)
            p.add(1, 0, 0, 0.0, "init")
            p.add(50, 1, 0, 100.0, "daemon")
            p.start()
            extra.append(p)
            procs.append(["--proc-root", p.root, "--scan-interval", "0.5"])
        # node 1: one package at 25 W, 60 W from the middle of the window on
        one = powercap.FakePowercap(str(tmp / "sys1"), [
            powercap.Zone("intel-rapl:0", "package-0", NODE1_BEFORE_W, start_uj=10**9)])
        nodes.append(Node("node1", tmp, one, ["intel-rapl:0"], procs[0],
                          CARBON.format(zone="DE")))
        # node 2: a laptop whose host total is psys (20 W)
        lap = powercap.laptop(str(tmp / "sys2"))
        nodes.append(Node("node2", tmp, lap, ["intel-rapl:1"], procs[1],
                          CARBON.format(zone="PL")))
        busy = [busy_as(users[0], 0.6), busy_as(users[1], 0.3)]
        status, watch = nodes[0].request(
            "POST", "/api/v1/watch", json.dumps({"pid": busy[0].pid, "label": "kernel-a"}))
        assert status == 201, watch
        prom = Prometheus(tmp, [n.instance for n in nodes],
                          [DEPLOY / "prometheus/energy-rules.yml",
                           DEPLOY / "prometheus/energy-alerts.yml"])

        def all_up():
            targets = prom.api("targets")["activeTargets"]
            return len(targets) == 3 and all(t["health"] == "up" for t in targets)
        wait_until(all_up, timeout=60, what="three targets up")
        t_up = time.time()
        # the power step of node 1, in the middle of the window that ends at t_up + 70 s
        wait_until(lambda: time.time() >= t_up + 38, timeout=60, step=0.5)
        one.zone("intel-rapl:0").watts = NODE1_AFTER_W
        t_switch = time.time()
        wait_until(lambda: time.time() >= t_up + WINDOW_S + 10, timeout=120, step=0.5)
        # Evaluate a little in the past, so that every scrape up to T is stored.
        T = time.time() - 3
        yield {"nodes": nodes, "prom": prom, "T": T, "users": users, "t_switch": t_switch,
               "tmp": tmp}
    finally:
        for p in busy:
            p.kill()
            p.wait()
        if prom:
            prom.stop()
        for n in nodes:
            problems += n.stop()
        for e in extra:
            e.close()
        for u in users:
            u.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    assert not problems, problems


def value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_node_energy_matches_the_emulators(fleet):
    """Each node's energy over the window from PromQL, against the joules the emulator added
    (node 1 changes power in the window): within 2 %."""
    prom, T = fleet["prom"], fleet["T"]
    assert T - WINDOW_S < fleet["t_switch"] < T - 10
    for n in fleet["nodes"]:
        got = value(prom.query(
            f'increase(energy_host_joules_total{{instance="{n.instance}"}}[{WINDOW_S:.0f}s])', T))
        truth = n.truth.joules(T - WINDOW_S, T)
        assert got == pytest.approx(truth, rel=0.02), (n.name, got, truth)
    # the power step: 25 W over the 30 s before it, 60 W in the recording rule at T
    n1 = fleet["nodes"][1]
    ts = fleet["t_switch"]
    before = value(prom.query(f'rate(energy_host_joules_total{{instance="{n1.instance}"}}[30s])',
                              ts - 2))
    assert before == pytest.approx(n1.truth.joules(ts - 32, ts - 2) / 30, rel=0.02)
    assert before == pytest.approx(NODE1_BEFORE_W, rel=0.05)
    after = value(prom.query(f'instance:energy_host_watts:rate1m{{instance="{n1.instance}"}}', T))
    assert after == pytest.approx(n1.truth.joules(T - 60.5, T - 0.5) / 60, rel=0.02)


def test_fleet_total_is_the_sum_of_the_nodes(fleet):
    prom, T, nodes = fleet["prom"], fleet["T"], fleet["nodes"]
    per_node = [value(prom.query(
        f'increase(energy_host_joules_total{{instance="{n.instance}"}}[{WINDOW_S:.0f}s])', T))
        for n in nodes]
    total = value(prom.query(f"sum(increase(energy_host_joules_total[{WINDOW_S:.0f}s]))", T))
    assert total == pytest.approx(sum(per_node), rel=1e-9)
    truth = sum(n.truth.joules(T - WINDOW_S, T) for n in nodes)
    assert total == pytest.approx(truth, rel=0.02)
    # the fleet power rule: its last evaluation before T, over the minute before it
    watts = value(prom.query("job:energy_host_watts:sum_rate1m", T))
    truth_w = sum(n.truth.joules(T - 60.5, T - 0.5) for n in nodes) / 60
    assert watts == pytest.approx(truth_w, rel=0.02)


def raw_samples(prom, expr: str, t: float) -> dict[float, float]:
    """The samples Prometheus stored for one series over a range selector: {time: value}."""
    r = prom.query(expr, t)
    assert len(r) == 1, (expr, r)
    return {float(ts): float(v) for ts, v in r[0]["values"]}


def test_user_split_matches_the_api(fleet):
    """Each user's energy on node 0 over a window, from the samples Prometheus stored and from
    energyd's /api/v1/energy?scope=user:UID over the same interval: within 5 %. The interval
    is the one the stored counters cover: from the full scan behind the window's first scrape
    to the one behind its last (energy_attribution_scan_time_seconds, in the same scrapes)."""
    prom, T = fleet["prom"], fleet["T"]
    n0 = fleet["nodes"][0]
    w = f"{USER_WINDOW_S:.0f}s"
    scans = raw_samples(prom, f'energy_attribution_scan_time_seconds{{instance="{n0.instance}"}}'
                              f'[{w}]', T)
    got = {}
    for u in fleet["users"]:
        uid = u.pw.pw_uid
        counter = raw_samples(
            prom, f'energy_user_joules_total{{instance="{n0.instance}",uid="{uid}"}}[{w}]', T)
        stamps = sorted(set(counter) & set(scans))
        assert len(stamps) >= USER_WINDOW_S / 2, stamps  # scraped every second
        s0, s1 = scans[stamps[0]], scans[stamps[-1]]
        assert s1 - s0 >= USER_WINDOW_S / 2
        prom_j = counter[stamps[-1]] - counter[stamps[0]]
        api = n0.get(f"/api/v1/energy?from={s0}&to={s1}&scope=user:{uid}")
        assert api["clamped"] is False, api
        api_j = api["scope"]["joules"]
        assert api_j > 0, api
        assert prom_j == pytest.approx(api_j, rel=0.05), (u.name, prom_j, api_j)
        got[u.name] = prom_j
        # the user name label is the account's name, and the user runs on node 0 only
        series = prom.query(f'energy_user_joules_total{{uid="{uid}"}}', T)
        assert [(s["metric"]["user"], s["metric"]["instance"]) for s in series] == \
            [(u.name, n0.instance)]
    # the per-user recording rule sums the nodes' rates of each user
    for u in fleet["users"]:
        r = prom.query(f'user:energy_user_watts:sum_rate1m{{user="{u.name}"}}', T)
        assert value(r) > 0


def test_promtool_check_metrics_on_a_busy_daemon(fleet):
    n0 = fleet["nodes"][0]
    text = n0.get("/metrics")
    # it is busy: users, a watch and a pod are in it
    for u in fleet["users"]:
        assert f'user="{u.name}"' in text
    assert 'label="kernel-a"' in text and f'pod_uid="{POD}"' in text
    r = subprocess.run([shutil.which("promtool"), "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r


def test_rules_are_loaded_and_evaluate(fleet):
    groups = fleet["prom"].api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {g["name"] for g in groups} == {"energy-recording", "energy-alerts"}
    assert len(rules) == 14
    for r in rules:
        assert r["health"] == "ok", r
    # nothing is wrong with these nodes: no alert pending or firing
    alerts = fleet["prom"].api("alerts")["alerts"]
    assert alerts == [], alerts


# ---- the Grafana dashboard -----------------------------------------------------------------

DASHBOARD = DEPLOY / "grafana/energy-fleet.json"


def dashboard_targets(dash: dict):
    for p in dash["panels"]:
        for t in p["targets"]:
            yield p, t


def substitute(expr: str, variables: dict[str, str]) -> str:
    def repl(m):
        name = m.group(1) or m.group(2)
        assert name in variables, f"unknown variable ${name} in {expr}"
        return variables[name]
    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)
    assert "$" not in out, out
    return out


def prom_regex_escape(s: str) -> str:
    """A value as Grafana puts it in a PromQL regex: metacharacters escaped with a backslash,
    itself escaped inside the double-quoted string."""
    return "".join("\\\\" + c if c in ".+*?^$()[]{}|\\" else c for c in s)


def test_every_dashboard_query_returns_data(fleet):
    """Every panel's query, with the template variables set as Grafana sets them (the
    variables' own queries run against the same Prometheus), returns data at T."""
    prom, T, nodes = fleet["prom"], fleet["T"], fleet["nodes"]
    dash = json.loads(DASHBOARD.read_text())
    variables = {"__range": f"{WINDOW_S:.0f}s", "__rate_interval": "4s", "__interval": "1s",
                 "datasource": "prometheus"}
    for v in dash["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((\w+), (\w+)\)", v["query"]["query"])
        assert m, v
        values = prom.api(f"label/{m.group(2)}/values", **{"match[]": m.group(1),
                                                          "start": T - 300, "end": T})
        assert values, v["name"]
        # "All" selected: Grafana sends every value as a regex alternation
        variables[v["name"]] = "(" + "|".join(prom_regex_escape(x) for x in values) + ")"
        if v["name"] == "instance":
            assert sorted(values) == sorted(n.instance for n in nodes)
        if v["name"] == "user":
            assert {u.name for u in fleet["users"]} <= set(values)
    for p, t in dashboard_targets(dash):
        expr = substitute(t["expr"], variables)
        result = prom.query(expr, T)
        assert result, f'panel "{p["title"]}" returns no data: {expr}'
        assert any(math.isfinite(float(r["value"][1])) for r in result), (p["title"], result)
