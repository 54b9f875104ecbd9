"""Attribution: energy per process tree, watch (kernel), cgroup and user, on emulated package
power. Fake /proc and cgroup trees give exact CPU shares; the real /proc is used with real
CPU-bound processes."""

import json
import os
import pwd
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import BUILD, Energyd, UnixHTTPConnection
from emulators import nvml, powercap
from emulators.procfs import FakeProc

PKG_W = 40.0


def package(root, watts=PKG_W):
    return powercap.FakePowercap(root, [powercap.Zone("intel-rapl:0", "package-0", watts)])


def wait_until(pred, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise TimeoutError("condition not met")


def energy_when_ready(d, t0, t1, scope, timeout=10.0):
    """The energy answer for [t0, t1] once attribution has covered t1 (not clamped)."""
    last = []

    def ready():
        status, body = d.request("GET", f"/api/v1/energy?from={t0}&to={t1}&scope={scope}")
        assert status in (200, 503), body
        last[:] = [body]
        return body if status == 200 and body["clamped"] is False else None
    try:
        return wait_until(ready, timeout)
    except TimeoutError:
        raise AssertionError(f"not attributed up to {t1}: {last}")


# ---- fake trees: exact shares -------------------------------------------------------------

@pytest.fixture
def fake_machine(tmp_path, start_energyd):
    """40 W package; 40 CPUs with 2000 of 4000 jiffies/s busy: 20 W active, 20 W idle.
    pid 100 (uid 1000) 1000 j/s, its child 200 (uid 1001) 500 j/s, pid 300 (uid 1000) 500 j/s;
    cgroups /a at 10 CPU-s/s (10 W) and /b at 5 CPU-s/s (5 W)."""
    pkg = package(tmp_path / "sys").start()
    proc = FakeProc(tmp_path / "proc", cgroup_root=tmp_path / "cgroup")
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 1000, 1000.0, "kernel")
    proc.add(200, 100, 1001, 500.0, "worker")
    proc.add(300, 1, 1000, 500.0, "other")
    proc.add_cgroup("/a", 10e6)
    proc.add_cgroup("/b", 5e6)
    open(tmp_path / "cgroup" / "cgroup.controllers", "w").write("cpu\n")
    proc.add_cgroup("/", 15e6)
    proc.start()
    d = start_energyd(tmp_path / "sys", "--scan-interval", "0.2", "--cgroup-root",
                      str(tmp_path / "cgroup"), proc_root=tmp_path / "proc")
    yield d, proc
    proc.close()
    pkg.close()


# The fake counters advance at fixed rates, so every interval's shares are known: busy is half
# of all CPU time, pid 100 has half of the busy time, 200 and 300 a quarter each. The emulators'
# threads may stall on a loaded machine (the package counter then moves in bursts), so the tests
# compare scopes with the active energy of the same interval, and take intervals between two full
# scans (no interpolation inside a scan interval). What remains: the jiffy quantisation of one
# 0.1 s tick (busy 200 +- 1 of 400), and a driver write (every 5 ms) that may land between
# energyd's read of /proc/stat and its reads of the process files, 5 ms of a 200 ms scan
# (2.5 %); both average out over a window of several scans: 5 %.
REL = 0.05


def scan_time(d):
    """The time of energyd's last full scan (a point of every scan-based series)."""
    return d.get("/api/v1/processes?top=1")["time"]


def next_scan_time(d, after):
    # time is null until the first scan (energyd just started: attribution's first batch).
    return wait_until(lambda: (t := scan_time(d)) is not None and t > after and t)


def scan_window(d, t0, scope):
    """The energy answer from the scan at t0 to the last full scan."""
    status, body = d.request("GET", f"/api/v1/energy?from={t0}&to={t0 + 3600}&scope={scope}")
    assert status == 200, body
    assert body["from"] == t0
    return body


def near(x, y, rel=REL):
    return abs(x - y) <= abs(y) * rel


def test_fake_tree_scopes(fake_machine):
    d, proc = fake_machine
    time.sleep(1.0)
    t0 = next_scan_time(d, 0)

    # Phase 2: pid 100 starts a child (uid 1000) that uses 500 j/s for 1 s while pid 300 waits,
    # then exits and is reaped: its time moves into 100's cutime.
    time.sleep(0.5)
    with proc.changes():  # written in one step: the child takes over from 300
        proc.set_rate(300, 0.0)
        proc.add(400, 100, 1000, 500.0, "child", new=True)
    time.sleep(1.0)
    with proc.changes():
        proc.set_rate(400, 0.0)
        proc.reap(400)
        proc.set_rate(300, 500.0)
    time.sleep(1.0)
    t1 = scan_time(d)

    e = energy_when_ready(d, t0, t1, "pid:100")
    s = e["scope"]
    assert s["measured"] is False and s["method"] == "cpu-time-share"
    assert s["resolution_s"] == 0.2
    pkg = e["channels"]["rapl:package-0"]["joules"]
    # Active + idle is the package energy to the microjoule (both are sums of the same
    # per-sample counter deltas; joules are printed with 16 significant digits).
    assert abs(s["active_joules"] + s["idle_joules"] - pkg) < 1e-6
    assert near(s["active_joules"], 0.5 * pkg)
    active = s["active_joules"]
    assert abs(s["share"] - s["joules"] / e["host"]["joules"]) < 1e-9
    # The scope's mean power over the answered interval comes with it.
    assert s["watts"] == pytest.approx(s["joules"] / e["seconds"], rel=1e-12)

    def scope(name):
        return energy_when_ready(d, t0, t1, name)["scope"]["joules"]

    # Constant shares through both phases:
    assert near(scope("pid:200"), 0.25 * active)
    assert near(scope("user:1001"), 0.25 * active)
    assert near(scope("user:1000"), 0.75 * active)  # 100 and 300, or 100 and the child
    assert near(scope("cgroup:/a"), 0.5 * active)
    assert near(scope("cgroup:/b"), 0.25 * active)
    assert scope("user:0") == 0.0
    # pid 100's tree is 100 + 200 (0.75) plus the child during its second; pid 300 lost
    # exactly that second: tree(100) + 300 - 200 = uid 1000.
    p100, p300 = s["joules"], scope("pid:300")
    assert p100 > 0.75 * active * (1 + REL)
    assert near(p100 + p300 - scope("pid:200"), scope("user:1000"))
    # The child exited and was reaped: it still counts up to its exit, and takes what 300 left.
    assert near(scope("pid:400") + p300, 0.25 * active)

    # One scan interval: half of the active power, and half of the busy CPU time. Within one
    # interval nothing averages out. At each end of it energyd reads the processes' stat and
    # then /proc/stat, within that scan's cost (scan_cost_s), and driver steps that land in
    # between move the process's counter against /proc/stat's by at most the reading time
    # plus one step. So the bound is what energyd and the driver actually did over the
    # interval: 2 x (longest step + longer scan cost) / interval, plus a jiffy of truncation
    # at each end of the process's 200 and the busy 400: 2 x (5 + 1) ms / 0.2 s + 1 % +
    # 0.5 % = 7.5 % when both are on time. A loaded machine stretches both; the test takes
    # the first interval between two consecutive scans whose bound is at most 12 %, of up to
    # 40, else the last one with its own bound.
    top, bound, prev = None, None, None
    for _ in range(40):
        cur = d.get("/api/v1/processes?top=2")
        t, dt = cur["time"], cur["interval_s"]
        if prev is not None and dt > 0 and abs(prev["time"] - (t - dt)) < 1e-6:
            cost = max(prev["scan_cost_s"], cur["scan_cost_s"])
            step = proc.longest_step(t - dt - 1.0, time.time())
            top, bound = cur, 2 * (step + cost) / dt + 2 / (1000 * dt) + 2 / (2000 * dt)
            if bound <= 0.12:
                break
        prev = cur
        next_scan_time(d, t)
    assert top is not None, "no two consecutive scans seen in 40"
    assert [p["pid"] for p in top["processes"]][0] == 100
    p = top["processes"][0]
    assert p["user"] in ("1000", pwd.getpwuid(1000).pw_name if _has_uid(1000) else "1000")
    assert p["command"] == "kernel"
    assert near(p["watts"], 0.5 * top["host"]["active_watts"], bound), (p, top["host"], bound)
    assert near(p["cpu_share"], 0.5, bound), (p, bound)
    assert top["measured"] is False and top["method"] == "cpu-time-share"
    assert near(top["host"]["busy_share"], 0.5, 0.05)
    only = d.get("/api/v1/processes?top=10&user=1001")["processes"]
    assert [p["pid"] for p in only] == [200]


def test_every_busy_column_and_system_time_count(tmp_path, start_energyd):
    """docs/attribution.md and docs/model.md: busy CPU time is user + nice + system + irq +
    softirq + steal, iowait is idle, and a process's CPU time is utime + stime. 40 CPUs (4000
    jiffies/s): 2000 busy spread over every busy column (guest inside user), 1000 iowait, 1000
    idle; pid 100 runs 500 user + 500 system jiffies/s of the 2000 busy. So active = half the
    package energy (iowait counted as busy would make it 3/4, user alone 1/5), and pid 100 has
    half of it (without its system time, a quarter). REL as above."""
    pkg = package(tmp_path / "sys").start()
    proc = FakeProc(tmp_path / "proc", iowait_rate=1000.0,
                    busy_columns={"user": 0.1, "guest": 0.1, "nice": 0.1, "system": 0.3,
                                  "irq": 0.1, "softirq": 0.1, "steal": 0.2})
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 1000, 500.0, "sys-heavy", srate=500.0)
    proc.add(200, 1, 1000, 250.0, "other")
    proc.start()
    try:
        d = start_energyd(tmp_path / "sys", "--scan-interval", "0.2",
                          proc_root=tmp_path / "proc")
        time.sleep(1.0)
        t0 = next_scan_time(d, 0)
        time.sleep(1.5)
        t1 = scan_time(d)
        e = energy_when_ready(d, t0, t1, "pid:100")
        s = e["scope"]
        energy = e["channels"]["rapl:package-0"]["joules"]
        assert near(s["active_joules"], 0.5 * energy), (s, energy)
        assert near(s["joules"], 0.5 * s["active_joules"]), s
        assert near(energy_when_ready(d, t0, t1, "pid:200")["scope"]["joules"],
                    0.125 * s["active_joules"])
        top = d.get("/api/v1/processes?top=1")
        assert near(top["host"]["busy_share"], 0.5, 0.05)
    finally:
        proc.close()
        pkg.close()


def _has_uid(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def test_watch_on_fake_tree_at_sample_rate(fake_machine):
    d, proc = fake_machine
    status, w = d.request("POST", "/api/v1/watch", json.dumps({"pid": 100, "label": "k-1"}))
    assert status == 201, w
    assert w["pid"] == 100 and w["label"] == "k-1" and w["alive"] is True
    t0 = w["created_at"] + 0.15  # from the first split after the registration
    time.sleep(1.5)
    t1 = d.get("/api/v1/now")["time"] - 0.05
    e = energy_when_ready(d, t0, t1, f"kernel:{w['id']}")
    s = e["scope"]
    assert s["resolution_s"] == 0.1 and s["watch"]["id"] == w["id"]
    # 100 and its child 200: 1500 of 2000 busy jiffies/s. The watch and the active energy are
    # both split at every sample: 5 % for the ends of the window.
    assert near(s["joules"], 0.75 * s["active_joules"], 0.05)
    # By label too (the Jupyter extension registers kernels under their id).
    e2 = energy_when_ready(d, t0, t1, "kernel:k-1")
    assert e2["scope"]["joules"] == s["joules"]
    listed = d.get("/api/v1/watch")["watches"]
    assert [x["id"] for x in listed] == [w["id"]] and listed[0]["joules"] > 0
    status, body = d.request("DELETE", f"/api/v1/watch/{w['id']}")
    assert status == 200 and body == {"deleted": w["id"]}
    assert d.request("DELETE", f"/api/v1/watch/{w['id']}")[0] == 404
    assert d.request("GET", f"/api/v1/energy?from={t0}&to={t1}&scope=kernel:k-1")[0] == 404


BAD_WATCH = [
    ("", 400), ("[]", 400), ("{", 400), ('{"pid": "12"}', 400), ('{"pid": -1}', 400),
    ('{"pid": 0}', 400), ('{"pid": 1.5}', 400), ('{"pid": 99999999999}', 400),
    ('{"pid": 100, "cgroup": "/a"}', 400), ('{"pid": 100, "label": 7}', 400),
    ('{"pid": 100, "label": "' + "x" * 200 + '"}', 400), ('{"pid": 100, "bogus": 1}', 400),
    ('{"pid": 4000000}', 404), ('{"cgroup": "/nope"}', 404), ('{"cgroup": "/a/../.."}', 400),
    ('{"cgroup": "a"}', 400),
]


@pytest.mark.parametrize("body,status", BAD_WATCH)
def test_bad_watch_requests(fake_machine, body, status):
    d, _ = fake_machine
    got, answer = d.request("POST", "/api/v1/watch", body)
    assert got == status, answer
    assert answer["error"] and "hint" in answer
    assert d.get("/api/v1/watch")["watches"] == []


BAD_SCOPES = ["bogus:1", "pid:abc", "pid:0", "pid:-3", "pid", "user:no-such-user-xyz",
              "cgroup:relative", "cgroup:/a/../b", "kernel:", ":1"]


@pytest.mark.parametrize("scope", BAD_SCOPES)
def test_bad_scopes(fake_machine, scope):
    d, _ = fake_machine
    status, body = d.request("GET", f"/api/v1/energy?from=1&scope={scope}")
    assert status == 400, body
    assert body["error"]


def test_unknown_scopes_and_routes(fake_machine):
    d, _ = fake_machine
    d.wait_ticks(5)
    wait_until(lambda: d.request("GET", "/api/v1/energy?from=1&scope=pid:100")[0] == 200)
    for scope in ("pid:4000000", "kernel:77", "cgroup:/nope"):
        status, body = d.request("GET", f"/api/v1/energy?from=1&scope={scope}")
        assert status == 404, (scope, body)
    for path in ("/api/v1/processes?top=0", "/api/v1/processes?top=abc",
                 "/api/v1/processes?top=2.5", "/api/v1/processes?user=nobody-xyz"):
        assert d.request("GET", path)[0] == 400, path
    assert d.request("POST", "/api/v1/processes", "{}")[0] == 405
    assert d.request("PUT", "/api/v1/watch", "{}")[0] == 405
    assert d.request("GET", "/api/v1/watch/abc")[0] == 404
    assert d.request("GET", "/api/v1/watchers")[0] == 404
    assert d.proc.poll() is None


# ---- the real /proc: CPU-bound processes --------------------------------------------------

BUSY = ("import sys, time\n"
        "sys.stdin.readline()\n"
        "end = time.process_time() + float(sys.argv[1])\n"
        "while time.process_time() < end:\n"
        "    pass\n")


def cpu_ticks(pid):
    """utime + stime of a process (it may be a zombie), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def real_procs(tmp_path, start_energyd):
    pkg = package(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys", "--scan-interval", "0.2")
    yield d
    pkg.close()


def test_two_busy_children_share_by_cpu_time(real_procs):
    """Two CPU-bound children, one running half the CPU time of the other, on a constant 40 W
    package: attributed energies in the ratio of their measured CPU times, and active + idle =
    the package energy exactly."""
    d = real_procs
    hz = os.sysconf("SC_CLK_TCK")
    kids, watches, base = [], [], []
    for cpu_s in (1.0, 0.5):
        p = subprocess.Popen([sys.executable, "-c", BUSY, str(cpu_s)], stdin=subprocess.PIPE)
        kids.append(p)
    for p in kids:
        status, w = d.request("POST", "/api/v1/watch", json.dumps({"pid": p.pid}))
        assert status == 201, w
        watches.append(w["id"])
        base.append(cpu_ticks(p.pid))
    t0 = d.get("/api/v1/now")["time"]
    for p in kids:
        p.stdin.write(b"go\n")
        p.stdin.flush()
    # Wait for both to exit but do not reap them yet: as zombies their CPU time stays readable
    # until energyd has taken a sample after their end.
    for p in kids:
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
    used = [(cpu_ticks(p.pid) - b) / hz for p, b in zip(kids, base)]
    d.wait_ticks(3)
    t1 = d.get("/api/v1/now")["time"]
    answers = [energy_when_ready(d, t0, t1, f"kernel:{w}") for w in watches]
    for p in kids:
        p.wait()
    j = [a["scope"]["joules"] for a in answers]
    # The children's CPU time from /proc is in 10 ms ticks: 1 % of 1 s; the ratio must hold
    # within the 10 % the issue sets, whatever else the machine runs.
    assert used[0] > used[1] > 0.3
    assert abs((j[0] / j[1]) / (used[0] / used[1]) - 1) <= 0.10, (j, used)
    # Each gets P x its CPU time / number of CPUs (active = P x busy/total, share = own/busy),
    # within 15 %: /proc/stat and per-process times are sampled separately by the kernel.
    ncpu = os.cpu_count()
    for joules, cpu in zip(j, used):
        assert abs(joules - PKG_W * cpu / ncpu) <= PKG_W * cpu / ncpu * 0.15, (j, used)
    for a in answers:
        s = a["scope"]
        pkg = a["channels"]["rapl:package-0"]["joules"]
        assert abs(s["active_joules"] + s["idle_joules"] - pkg) < 1e-6
        assert s["active_joules"] > 0 and s["idle_joules"] >= 0
        assert s["joules"] <= s["active_joules"]


def test_pid_scope_includes_reaped_children(real_procs, tmp_path):
    d = real_procs
    hz = os.sysconf("SC_CLK_TCK")
    # A shell that spawns busy children one after the other, waits for each, then idles.
    done = tmp_path / "done"
    script = (f"for i in 1 2 3; do {sys.executable} -c '{BUSY}' 0.3 </dev/null; done; "
              f"echo > {done}; read x")
    # stdin of each child is /dev/null: readline returns at once.
    sh = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE)
    t0 = time.time()
    wait_until(done.exists, timeout=30)
    # cutime (field 16) holds the reaped children's time now.
    fields = open(f"/proc/{sh.pid}/stat").read().rsplit(")", 1)[1].split()
    children_s = (int(fields[13]) + int(fields[14])) / hz
    own_s = (int(fields[11]) + int(fields[12])) / hz
    time.sleep(0.5)  # a scan after the last child's exit
    t1 = d.get("/api/v1/now")["time"]
    e = energy_when_ready(d, t0, t1, f"pid:{sh.pid}")
    sh.stdin.write(b"\n")
    sh.stdin.flush()
    sh.wait()
    s = e["scope"]
    expected = PKG_W * (children_s + own_s) / os.cpu_count()
    # The shell itself used almost nothing: without its children the scope would be ~0.
    assert own_s < 0.1 * children_s
    # Start-up of each child before its first scan is counted too (via cutime); 15 % as above.
    assert abs(s["joules"] - expected) <= expected * 0.15, (s, children_s)
    assert s["resolution_s"] == 0.2


# ---- registrations: only the owner or root ------------------------------------------------

CLIENT = """
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
def call(method, path, body=None):
    c = C("energyd")
    c.request(method, path, body=body)
    r = c.getresponse()
    return r.status, json.loads(r.read())
out = {"other": call("POST", "/api/v1/watch", json.dumps({"pid": int(sys.argv[2])})),
       "own": call("POST", "/api/v1/watch", json.dumps({"pid": __import__("os").getpid()})),
       "delete_root_watch": call("DELETE", "/api/v1/watch/" + sys.argv[3])}
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs a client as another user")
def test_registering_another_users_pid_is_403(tmp_path, start_energyd):
    nobody = pwd.getpwnam("nobody")
    run = tempfile.mkdtemp(prefix="energyd-attrib-")
    os.chmod(run, 0o755)  # the unprivileged client must reach the socket (not replace it)
    sock = f"{run}/e.sock"
    d = start_energyd(None, "--listen", f"unix:{sock}")
    # Root registers its own process (allowed: root may register anything).
    status, w = d.request("POST", "/api/v1/watch", json.dumps({"pid": os.getpid()}))
    assert status == 201 and w["owner_uid"] == 0
    # The system's python: the test's virtual environment may not be readable by nobody.
    r = subprocess.run(["/usr/bin/python3", "-c", CLIENT, sock, str(os.getpid()), str(w["id"])],
                       user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["other"][0] == 403 and "do not own" in out["other"][1]["error"]
    assert out["own"][0] == 201 and out["own"][1]["owner_uid"] == nobody.pw_uid
    assert out["delete_root_watch"][0] == 403
    ids = sorted(x["id"] for x in d.get("/api/v1/watch")["watches"])
    assert ids == [w["id"], out["own"][1]["id"]]
    os.unlink(sock) if os.path.exists(sock) else None
    os.rmdir(run) if not os.listdir(run) else None


def test_registration_over_tcp_is_refused(tmp_path, start_energyd):
    import socket as so
    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = start_energyd(None, "--listen", f"127.0.0.1:{port}")
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("POST", "/api/v1/watch", body=json.dumps({"pid": os.getpid()}))
    r = c.getresponse()
    assert r.status == 403 and "identity" in json.loads(r.read())["error"]
    assert d.get("/api/v1/watch")["watches"] == []


# ---- GPUs: split by per-process SM utilisation from NVML ----------------------------------

GPU_W = 100.0
# The GPU integrates nvmlDeviceGetPowerUsage: over a window of scans, P x duration within 40 ms
# of P (each end's sample time lies a few ms from its read; 20 ms per end on this shared
# machine, as in test_nvml.py).
GPU_RATE_BOUND_S = 0.04
# The window's ends travel as JSON decimals (microseconds); the attribution series has points at
# the scans and the history at every sample, so each side interpolates a sub-microsecond
# difference at 100 W its own way: far below 1 mJ.
GPU_SUM_BOUND_J = 1e-3


def gpu_machine(tmp_path, start_energyd, util, old_driver=False):
    """One GPU at a constant 100 W (no energy counter: power integration), no RAPL (the CPU
    model covers the CPUs); util: {pid: SM %} for nvmlDeviceGetProcessUtilization, None for
    NOT_SUPPORTED; old_driver: a libnvidia-ml without the function."""
    fake = nvml.FakeNvml(tmp_path / "nvml", [
        {"name": "NVIDIA A100-SXM4-40GB", "energy_mj": None, "power_mw": int(GPU_W * 1000),
         "process_util": util}])
    d = start_energyd(tmp_path / "sys", "--scan-interval", "0.2", "--nvml-lib",
                      str(nvml.stub_library(BUILD, old_driver)), env=fake.env)
    return d, fake


def sleepers(n):
    """Children that use no CPU time: their figures are their GPU shares alone."""
    return [subprocess.Popen(["sleep", "60"]) for _ in range(n)]


def test_gpu_energy_split_by_nvml_process_utilisation(tmp_path, start_energyd):
    """Two children at 60 % and 20 % SM utilisation on a 100 W GPU: their GPU energies are in the
    ratio 3:1, the remaining 20 % is reported unattributed, and attributed + unattributed is the
    GPU's energy; the parent's pid scope holds both children's GPU parts."""
    kids = sleepers(2)
    try:
        d, fake = gpu_machine(tmp_path, start_energyd, {kids[0].pid: 60, kids[1].pid: 20})
        src = d.get("/api/v1/sources")
        gpu = {c["id"]: c for c in src["channels"]}["nvml:gpu-0"]
        assert "attributed to processes by nvmlDeviceGetProcessUtilization" \
            in gpu["description"]
        time.sleep(1.0)
        t0 = next_scan_time(d, 0)
        time.sleep(1.2)
        # The same window for the parent (this test process) and the two children (a scan
        # may land between the requests: the window is fixed by the first).
        t1 = scan_window(d, t0, f"pid:{kids[0].pid}")["to"]
        answers = [energy_when_ready(d, t0, t1, f"pid:{p.pid}") for p in kids]
        parent = energy_when_ready(d, t0, t1, f"pid:{os.getpid()}")
        assert [a["to"] for a in answers] == [t1, t1] and parent["to"] == t1
        e_gpu = answers[0]["channels"]["nvml:gpu-0"]["joules"]
        assert abs(e_gpu - GPU_W * (t1 - t0)) <= GPU_W * GPU_RATE_BOUND_S, (e_gpu, t1 - t0)
        j = [a["scope"]["joules"] for a in answers]
        # Sleeping children use no CPU time: their figures are E x their share (the window's
        # ends as JSON decimals: GPU_SUM_BOUND_J), and their ratio is 3 to floating-point
        # rounding (both from the same scans and the same GPU energy).
        assert abs(j[0] - 0.6 * e_gpu) <= GPU_SUM_BOUND_J, (j, e_gpu)
        assert abs(j[1] - 0.2 * e_gpu) <= GPU_SUM_BOUND_J, (j, e_gpu)
        assert abs(j[0] / j[1] - 3.0) <= 1e-9, j
        for a in answers:
            s = a["scope"]
            assert s["method"] == "cpu-time-share+gpu-process-utilisation"
            assert s["measured"] is False
            g = s["channels"]["nvml:gpu-0"]
            assert g["method"] == "gpu-process-utilisation"
            assert "nvmlDeviceGetProcessUtilization" in g["source"]
            assert g["idle_joules"] == 0
            # 80 % attributed, the other 20 % reported on its own; together the GPU's energy.
            assert abs(g["active_joules"] - 0.8 * e_gpu) <= GPU_SUM_BOUND_J
            assert abs(g["unattributed_joules"] - 0.2 * e_gpu) <= GPU_SUM_BOUND_J
            assert abs(g["active_joules"] + g["unattributed_joules"] - e_gpu) \
                <= GPU_SUM_BOUND_J
        # The parent's tree holds both children's GPU parts, plus at most its own CPU part
        # (this process runs; the CPU model's active energy bounds it).
        p = parent["scope"]
        cpu_active = p["channels"]["model:cpu"]["active_joules"]
        assert 0.8 * e_gpu - GPU_SUM_BOUND_J <= p["joules"] <= 0.8 * e_gpu + cpu_active + \
            GPU_SUM_BOUND_J, (p["joules"], e_gpu, cpu_active)
        # The processes list shows the GPU power of the busier child, 60 W, over the last scan
        # interval: energy integrated on the monotonic clock over a wall-clock interval of
        # 0.2 s whose ends each lie up to 20 ms from their reads on this shared machine: 25 %.
        procs = {x["pid"]: x for x in d.get("/api/v1/processes?top=1000")["processes"]}
        assert abs(procs[kids[0].pid]["watts"] - 0.6 * GPU_W) <= 0.6 * GPU_W * 0.25, procs
        fake.close()
    finally:
        for k in kids:
            k.kill()
            k.wait()


def test_gpu_shares_average_the_samples_newer_than_last_seen(tmp_path, start_energyd):
    """The emulated driver samples each process every 25 ms, A alternating 80/40 % (mean 60) and
    B 10/30 % (mean 20), and nvmlDeviceGetProcessUtilization returns the samples newer than
    lastSeenTimeStamp, several per process per 0.2 s scan. energyd's share is each process's
    mean over the new samples: A 0.6 and B 0.2 of the GPU energy, within 5 % (a scan with an odd
    number of samples is 3.7 % off, and those average out over six scans); one sample alone
    would be 33 % off. Then A drops to a steady 30 %: from the next scan on A has 0.3. A caller
    that ignored lastSeen would average in the older samples still in the driver's buffer
    (2.5 s of them) and stay well above."""
    kids = sleepers(2)
    a, b = kids[0].pid, kids[1].pid
    try:
        d, fake = gpu_machine(tmp_path, start_energyd, {})
        fake.start_sampling(0, {a: [80, 40], b: [10, 30]})
        time.sleep(1.0)
        t0 = next_scan_time(d, 0)
        time.sleep(1.2)
        ja = scan_window(d, t0, f"pid:{a}")
        jb = energy_when_ready(d, t0, ja["to"], f"pid:{b}")  # the same scans (one may land)
        assert jb["to"] == ja["to"]
        e_gpu = ja["channels"]["nvml:gpu-0"]["joules"]
        assert e_gpu > 0.5 * GPU_W * (ja["to"] - t0)
        assert near(ja["scope"]["joules"], 0.6 * e_gpu), (ja["scope"], e_gpu)
        assert near(jb["scope"]["joules"], 0.2 * e_gpu), (jb["scope"], e_gpu)

        changed = fake.set_pattern(0, {a: [30], b: [10, 30]})
        t2 = next_scan_time(d, changed + 0.05)
        time.sleep(1.2)
        ja = scan_window(d, t2, f"pid:{a}")
        e_gpu = ja["channels"]["nvml:gpu-0"]["joules"]
        assert near(ja["scope"]["joules"], 0.3 * e_gpu), (ja["scope"], e_gpu)
        fake.close()
    finally:
        for k in kids:
            k.kill()
            k.wait()


@pytest.mark.parametrize("case", ["old-driver", "not-supported"])
def test_gpu_without_process_utilisation_is_unattributed(tmp_path, start_energyd, case):
    """A driver without nvmlDeviceGetProcessUtilization, or a GPU that answers NOT_SUPPORTED:
    the GPU's energy is all unattributed, and sources and the scope answer say why."""
    kids = sleepers(1)
    try:
        d, fake = gpu_machine(tmp_path, start_energyd,
                              {kids[0].pid: 60} if case == "old-driver" else None,
                              old_driver=case == "old-driver")
        src = d.get("/api/v1/sources")
        gpu = {c["id"]: c for c in src["channels"]}["nvml:gpu-0"]
        fam = {f["name"]: f for f in src["families"]}["nvml"]
        if case == "old-driver":
            why = "does not export nvmlDeviceGetProcessUtilization"
            assert "no nvmlDeviceGetProcessUtilization" in fam["detail"]
        else:
            why = "nvmlDeviceGetProcessUtilization (GPU 0, NVIDIA A100-SXM4-40GB): Not Supported"
        assert "not attributed: " in gpu["description"] and why in gpu["description"]
        time.sleep(1.0)
        t0 = next_scan_time(d, 0)
        time.sleep(1.2)
        a = scan_window(d, t0, f"pid:{kids[0].pid}")
        e_gpu = a["channels"]["nvml:gpu-0"]["joules"]
        assert abs(e_gpu - GPU_W * (a["to"] - t0)) <= GPU_W * GPU_RATE_BOUND_S
        s = a["scope"]
        g = s["channels"]["nvml:gpu-0"]
        assert g["method"] == "unattributed" and why in g["reason"], g
        assert g["active_joules"] == 0 and g["idle_joules"] == 0
        assert abs(g["unattributed_joules"] - e_gpu) <= GPU_SUM_BOUND_J
        assert s["method"] == "cpu-time-share"
        assert s["joules"] == 0  # no CPU time, and no GPU share
        fake.close()
    finally:
        for k in kids:
            k.kill()
            k.wait()


# ---- dram policy and several channels -----------------------------------------------------

@pytest.mark.parametrize("policy", ["cpu-time", "none"])
def test_dram_policy_and_host_identity(tmp_path, start_energyd, policy):
    """Two packages (40 + 30 W) and two dram zones (6 + 4 W); half the CPU time busy. With
    --attribute-dram cpu-time dram is split like the packages; with none it is unattributed.
    Either way active + idle + unattributed is the host total."""
    fake = powercap.server(tmp_path / "sys").start()
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 1000, 2000.0, "all-busy")  # all of the busy time
    proc.start()
    try:
        d = start_energyd(tmp_path / "sys", "--scan-interval", "0.2", "--attribute-dram",
                          policy, proc_root=tmp_path / "proc")
        time.sleep(1.0)
        t0 = next_scan_time(d, 0)
        time.sleep(1.5)
        e = scan_window(d, t0, "pid:100")
        s = e["scope"]
        host = e["host"]["joules"]
        assert abs(s["active_joules"] + s["idle_joules"] + s["unattributed_joules"] - host) \
            < 1e-6 * 4
        for cid in ("rapl:package-0", "rapl:dram-1"):
            c = s["channels"][cid]
            assert abs(c["active_joules"] + c["idle_joules"] + c["unattributed_joules"] -
                       e["channels"][cid]["joules"]) < 1e-6
        dram = s["channels"]["rapl:dram-0"]
        dram_j = e["channels"]["rapl:dram-0"]["joules"] + e["channels"]["rapl:dram-1"]["joules"]
        if policy == "none":
            assert dram["method"] == "unattributed" and dram["active_joules"] == 0
            assert abs(dram["unattributed_joules"] - e["channels"]["rapl:dram-0"]["joules"]) \
                < 1e-6
            assert near(s["active_joules"], 0.5 * (host - dram_j))
        else:
            assert dram["method"] == "cpu-time-share" and dram["unattributed_joules"] == 0
            assert near(dram["active_joules"], 0.5 * e["channels"]["rapl:dram-0"]["joules"])
            assert near(s["active_joules"], 0.5 * host)
        # pid 100 has all the busy time: all of the active energy.
        assert near(s["joules"], s["active_joules"])
    finally:
        proc.close()
        fake.close()


def test_bad_dram_policy_is_refused(tmp_path):
    from conftest import ENERGYD
    r = subprocess.run([str(ENERGYD), "--attribute-dram", "half", "--listen",
                        f"unix:{tmp_path}/x.sock", "--state-dir", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "expected cpu-time or none" in r.stderr


def test_garbage_in_proc_and_cgroup_files(fake_machine, tmp_path):
    """Bad bytes where numbers should be: the process or cgroup is skipped, the rest goes on."""
    d, proc = fake_machine
    bad = tmp_path / "proc" / "500"
    bad.mkdir()
    (bad / "stat").write_bytes(b"500 (evil\x00) R garbage \xff\xfe")
    (bad / "status").write_text("Name: evil\nUid: x\n")
    (tmp_path / "proc" / "501").mkdir()  # no files at all
    (tmp_path / "proc" / "notapid").mkdir()
    cg = tmp_path / "cgroup" / "c"
    cg.mkdir()
    (cg / "cpu.stat").write_text("usage_usec lots\n")
    (tmp_path / "cgroup" / "d").mkdir()  # no cpu.stat
    time.sleep(1.0)
    pids = [p["pid"] for p in d.get("/api/v1/processes?top=100")["processes"]]
    assert 100 in pids and 500 not in pids and 501 not in pids
    assert d.request("POST", "/api/v1/watch", json.dumps({"pid": 500}))[0] == 404
    assert d.request("POST", "/api/v1/watch", json.dumps({"cgroup": "/c"}))[0] == 404
    status, body = d.request("GET", "/api/v1/energy?from=1&scope=cgroup:/c")
    assert status == 404
    assert d.request("GET", "/api/v1/energy?from=1&scope=cgroup:/a")[0] == 200
    assert d.proc.poll() is None


def test_exited_child_counts_to_its_exit(tmp_path, start_energyd):
    """Full scans once a second; a child works for about 2 s (while pid 300 waits) and is
    reaped 0.9 s after the last scan that saw it. That last stretch must still be its own:
    300 + child = a quarter of the active energy throughout (without it, about 20 % less)."""
    pkg = package(tmp_path / "sys").start()
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 1000, 1000.0, "kernel")
    proc.add(200, 100, 1001, 500.0, "worker")
    proc.add(300, 1, 1000, 500.0, "other")
    proc.start()
    try:
        d = start_energyd(tmp_path / "sys", "--scan-interval", "1", proc_root=tmp_path / "proc")
        t0 = next_scan_time(d, next_scan_time(d, 0))
        with proc.changes():  # written in one step: the child takes over from 300
            proc.set_rate(300, 0.0)
            proc.add(400, 100, 1000, 500.0, "child", new=True)
        time.sleep(1.0)
        seen = next_scan_time(d, t0)
        time.sleep(max(0.0, 0.9 - (d.get("/api/v1/now")["time"] - seen)))
        with proc.changes():
            proc.set_rate(400, 0.0)
            proc.reap(400)
            proc.set_rate(300, 500.0)
        t1 = next_scan_time(d, next_scan_time(d, seen))
        e = energy_when_ready(d, t0, t1, "pid:400")
        active = e["scope"]["active_joules"]
        assert e["to"] == t1
        child = e["scope"]["joules"]
        other = energy_when_ready(d, t0, t1, "pid:300")["scope"]["joules"]
        # Without the last stretch the child would miss about 0.9 of its 1.5 s.
        assert near(child + other, 0.25 * active)
    finally:
        proc.close()
        pkg.close()


def test_child_and_grandchild_exit_together(fake_machine):
    """pid 100 starts 500, which starts 501 (500 j/s while 300 waits); after 2 s, 501 is
    reaped by 500 and 500 by 100 within one scan interval: 100's cutime then holds both, and
    what 501 was charged before must not count again (it would crowd out everyone else in
    that interval: pid 200 would lose about 70 % of its share there)."""
    d, proc = fake_machine
    time.sleep(1.0)
    t0 = next_scan_time(d, 0)
    with proc.changes():  # written in one step: the grandchild takes over from 300
        proc.set_rate(300, 0.0)
        proc.add(500, 100, 1000, 0.0, "child", new=True)
        proc.add(501, 500, 1000, 500.0, "grandchild", new=True)
    time.sleep(2.0)
    t_before = scan_time(d)
    with proc.changes():
        proc.set_rate(501, 0.0)
        proc.reap(501)
        proc.reap(500)
        proc.set_rate(300, 500.0)
    time.sleep(0.8)
    e = scan_window(d, t0, "pid:100")
    active, t1 = e["scope"]["active_joules"], e["to"]  # every answer below: the same scans

    def joules(t, scope):
        return energy_when_ready(d, t, t1, scope)["scope"]

    assert near(joules(t0, "user:1000")["joules"], 0.75 * active)
    # Around the exit (three or four scans), pid 200 keeps its quarter (8 %: fewer scans to
    # average over; counting 501 twice would cost it about 20 %).
    w = joules(t_before, "pid:200")
    assert near(w["joules"], 0.25 * w["active_joules"], 0.08)
    # Nothing was given out twice: all users together have the busy share of the active energy.
    total = sum(joules(t0, f"user:{uid}")["joules"] for uid in (0, 1000, 1001))
    assert near(total, active)


def test_unreadable_proc_root_turns_attribution_off(tmp_path, start_energyd):
    """Energy is still measured; attribution answers 503 and says why."""
    pkg = package(tmp_path / "sys").start()
    try:
        d = start_energyd(tmp_path / "sys", proc_root=tmp_path / "no-such-proc")
        d.wait_ticks(3)
        assert d.get("/api/v1/now")["host"]["joules"] > 0
        for method, path, body in (("GET", "/api/v1/processes", None),
                                   ("GET", "/api/v1/watch", None),
                                   ("POST", "/api/v1/watch", '{"pid": 1}'),
                                   ("GET", "/api/v1/energy?from=1&scope=pid:1", None)):
            status, answer = d.request(method, path, body)
            assert status == 503 and "attribution is off" in answer["error"], (path, answer)
        assert "attribution is off" in d.log()
    finally:
        pkg.close()


def test_help_documents_attribution_options():
    from conftest import ENERGYD
    out = subprocess.run([str(ENERGYD), "--help"], capture_output=True, text=True).stdout
    for opt in ("--scan-interval", "--cgroup-root", "--attribute-dram"):
        assert opt in out
