"""GET /metrics with attribution: per-user, per-cgroup and per-watch counters on a fake machine
with known CPU shares, checked against the API's own figures, escaped labels, the bounded
cgroup series, and `promtool check metrics` on the whole answer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from emulators.procfs import FakeProc
from test_attribution import package, wait_until

HEX64 = "0123456789abcdef" * 4
POD = "1f2e3d4c-5b6a-4789-8abc-def012345678"
K8S = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD.replace('-', '_')}" \
      f".slice/cri-containerd-{HEX64}.scope"
MANY = 40  # more leaf cgroups than get a series (32)

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(v: str) -> str:
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse(text: str) -> list[tuple[str, dict, float]]:
    """The samples of a text-format answer: (name, labels, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, line
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def one(samples, name, **labels):
    found = [v for n, lab, v in samples if n == name and all(lab.get(k) == x
                                                             for k, x in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.fixture
def scoped_machine(tmp_path, start_energyd):
    """40 W package, half the CPU time busy; uid 1000 runs 1500 of the 2000 busy jiffies/s,
    uid 1001 500; leaf cgroups: a Kubernetes container, a directory whose name is not UTF-8,
    and 40 small ones (more than get a series)."""
    pkg = package(tmp_path / "sys").start()
    cg = tmp_path / "cgroup"
    proc = FakeProc(tmp_path / "proc", cgroup_root=cg)
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 1000, 1000.0, "kernel")
    proc.add(200, 100, 1001, 500.0, "worker")
    proc.add(300, 1, 1000, 500.0, "other")
    os.makedirs(cg, exist_ok=True)
    open(cg / "cgroup.controllers", "w").write("cpu\n")
    proc.add_cgroup("/", 15e6)
    proc.add_cgroup(K8S, 4e6)
    os.makedirs(os.path.join(os.fsencode(cg), b"odd\xff\"name"))
    with open(os.path.join(os.fsencode(cg), b"odd\xff\"name", b"cpu.stat"), "w") as f:
        f.write("usage_usec 0\n")
    for i in range(MANY):
        proc.add_cgroup(f"/many/c{i:02d}", 1e5 * (i + 1))
    proc.start()
    d = start_energyd(tmp_path / "sys", "--scan-interval", "0.2", "--cgroup-root", str(cg),
                      proc_root=tmp_path / "proc")
    yield d, proc
    proc.close()
    pkg.close()


def scrape(d):
    status, text = d.request("GET", "/metrics")
    assert status == 200
    return text, parse(text)


def test_scope_metrics_match_the_api(scoped_machine):
    d, proc = scoped_machine
    label = 'nb "one"\\ x\nü'
    status, w = d.request("POST", "/api/v1/watch", json.dumps({"pid": 100, "label": label}))
    assert status == 201, w
    time.sleep(1.5)

    def scan_t(samples):
        return one(samples, "energy_attribution_scan_time_seconds")

    # Two scrapes at two different full scans: the counters' difference is the energy the API
    # gives for the interval between those scans (both read the same series at its points).
    _, a = scrape(d)
    t_a = scan_t(a)
    # (the reads of one scan may straddle a step of the fake tree's driver on a loaded
    # machine: over 4 s that is within the 5 % below)
    wait_until(lambda: d.get("/api/v1/processes?top=1")["time"] > t_a + 4.0)
    text, b = scrape(d)
    t_b = scan_t(b)
    assert t_b > t_a
    for uid in ("1000", "1001"):
        got = one(b, "energy_user_joules_total", uid=uid) - one(a, "energy_user_joules_total",
                                                                 uid=uid)
        api = d.get(f"/api/v1/energy?from={t_a}&to={t_b}&scope=user:{uid}")["scope"]["joules"]
        assert got == pytest.approx(api, rel=1e-6, abs=1e-6), (uid, got, api)
    # and the shares the fake tree sets: 1500 vs 500 jiffies/s
    u0 = one(b, "energy_user_joules_total", uid="1000") - one(a, "energy_user_joules_total",
                                                              uid="1000")
    u1 = one(b, "energy_user_joules_total", uid="1001") - one(a, "energy_user_joules_total",
                                                              uid="1001")
    assert u0 == pytest.approx(3 * u1, rel=0.05)
    # every scope series is an estimate
    for n, lab, _ in b:
        if n.startswith(("energy_user_", "energy_cgroup_", "energy_watch_", "energy_host_active",
                         "energy_host_idle")):
            assert lab.get("measured") == "false", (n, lab)

    # the watch: its label comes back intact through the escaping
    watch = [(lab, v) for n, lab, v in b if n == "energy_watch_joules_total"]
    assert len(watch) == 1 and watch[0][0]["label"] == label
    assert watch[0][1] > 0

    # health: what the host total is made of, the channel up, the record's state
    assert one(b, "energy_info", coverage="rapl:package-0", measured="true") == 1
    assert one(b, "energy_channel_up", channel="rapl:package-0") == 1
    assert one(b, "energy_sample_interval_seconds") == 0.1
    assert one(b, "energy_store_pending_seconds") >= 0
    assert one(b, "energy_start_time_seconds") < t_a

    # the host's active + idle split adds up to the package energy (up to the ticks the
    # attribution has not handled yet at the scrape: 40 W x 0.5 s)
    host = one(b, "energy_host_joules_total")
    split = one(b, "energy_host_active_joules_total") + one(b, "energy_host_idle_joules_total")
    assert host - 20 <= split <= host + 0.001

    # cgroups: the Kubernetes ids parsed from the path, the bad byte replaced, 32 series + other
    cgroups = {lab["cgroup"]: (lab, v) for n, lab, v in b if n == "energy_cgroup_joules_total"}
    lab, v = cgroups[K8S]
    assert lab["pod_uid"] == POD and lab["container_id"] == HEX64 and v > 0
    assert all("pod_uid" not in lab for c, (lab, _) in cgroups.items() if c != K8S)
    assert len(cgroups) == 32 + 1 and "other" in cgroups
    assert one(b, "energy_cgroups") == 1 + 1 + MANY
    assert cgroups["other"][1] > 0
    # the slots went to the biggest: the container, then /many/c39 downwards
    assert "/many/c39" in cgroups and "/many/c00" not in cgroups
    odd = [c for c in cgroups if c.startswith("/odd")]
    assert odd in ([], ["/odd\ufffd\"name"])  # it has no energy, so no slot of its own
    assert 'odd\xff' not in text

    # later scrapes: no series goes down
    time.sleep(0.6)
    _, c = scrape(d)
    for n, lab, v in b:
        if n.endswith("_total"):
            later = [x for m, l2, x in c if m == n and l2 == lab]
            assert later and later[0] >= v, (n, lab, v, later)

    # Prometheus's own checker on the whole answer
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed"
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r


def test_odd_cgroup_name_is_valid_utf8(scoped_machine, tmp_path):
    """A cgroup whose name is not UTF-8 gets its own series once it has energy: the label is
    valid UTF-8 with U+FFFD for the bad byte and the quote escaped."""
    d, proc = scoped_machine
    cg = os.fsencode(tmp_path / "cgroup")
    # remove the small ones so that the odd one gets a slot when it has energy
    with proc.lock:
        for i in range(MANY):
            proc.cgroups.pop(f"/many/c{i:02d}")
    shutil.rmtree(os.path.join(cg, b"many"))
    with open(os.path.join(cg, b"odd\xff\"name", b"cpu.stat"), "w") as f:
        f.write("usage_usec 999999999\n")
    time.sleep(0.5)
    with open(os.path.join(cg, b"odd\xff\"name", b"cpu.stat"), "w") as f:
        f.write("usage_usec 1999999999\n")

    def odd_series():
        status, raw = d.request("GET", "/metrics")
        return raw if 'cgroup="/odd\ufffd\\"name"' in raw else None
    try:
        text = wait_until(odd_series, timeout=10)
    except TimeoutError:
        raise AssertionError(d.request("GET", "/metrics")[1])
    text.encode("utf-8")  # it decoded as UTF-8 already; this states the point
    assert "energy_cgroup_joules_total{cgroup=\"/odd\ufffd\\\"name\",measured=\"false\"}" in text


def test_a_scrape_reads_no_sensor(tmp_path, start_energyd):
    """Between two samples, scrapes answer the same energy although the emulated counter moves
    on: /metrics serves samples already taken, never a fresh read."""
    pkg = package(tmp_path / "sys").start()
    try:
        d = start_energyd(tmp_path / "sys", interval="1.0")

        def same_tick_pair():
            t0 = d.get("/api/v1/now")["tick"]
            a = one(scrape(d)[1], "energy_joules_total", channel="rapl:package-0")
            time.sleep(0.2)  # the emulator adds 40 W x 0.2 s meanwhile
            b = one(scrape(d)[1], "energy_joules_total", channel="rapl:package-0")
            return d.get("/api/v1/now")["tick"] == t0 and (a, b)
        a, b = wait_until(same_tick_pair, timeout=20)
        assert a == b
        # and once a tick has passed, the counter has moved
        d.wait_ticks(1)
        assert one(scrape(d)[1], "energy_joules_total", channel="rapl:package-0") > a
    finally:
        pkg.close()
