"""Attribution of cgroup watches by hardware counters ("hwpc-model", docs/attribution.md).

A cgroup's counters are opened with perf_event_open(PERF_FLAG_PID_CGROUP) on its cgroup v2
directory, one per event and CPU; tests/emulators/hwpc_shim.c serves them from the files of
tests/emulators/hwpc.py (found by the directory's inode). The workload is test_hwpc.py's: two
tasks with the same CPU time (each cgroup's cpu.stat advances by 1 CPU-s/s) but different
instruction mixes, one per cgroup and CPU, true power a known linear function of their counters
plus noise, RAPL moved by exactly that power. The cgroups' counters count on their task's CPU
only (0 on the other, where the cgroup never runs), the vector cgroup's multiplexed half the time.

The kernel takes cgroup events as CPU-wide ones, which an energyd that dropped root may open
only with kernel.perf_event_paranoid <= 0: the shim plays that setting (its paranoid file).
"""

import json
import os
import time

import pytest

from conftest import BUILD, ENERGYD
from emulators import hwpc, powercap
from emulators.procfs import FakeProc
from test_hwpc import WINDOW, check_split, model, split_point, usable, wait_for
from test_security import CLIENT, accounts, public_dir, run_as  # noqa: F401 (fixtures)

CGROUPS = {100: "/vec", 200: "/mem"}


@pytest.fixture
def cgroup_machine(tmp_path, start_energyd):
    """start(paranoid, *args) -> (energyd, driver): the two-cgroup workload under energyd."""
    made = []

    def start(paranoid, *args, unscripted=(), idle=()):
        pc = powercap.FakePowercap(tmp_path / "sys",
                                   [powercap.Zone("intel-rapl:0", "package-0", 0.0)])
        with open(tmp_path / "sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw",
                  "w") as f:
            f.write("45000000\n")
        cg = tmp_path / "cgroup"
        proc = FakeProc(tmp_path / "proc", ncpu=2, busy_rate=200.0, period_s=3600,
                        cgroup_root=cg)
        proc.add(1, 0, 0, 0.0, "init")
        proc.add(100, 1, 0, 100.0, "vector")
        proc.add(200, 1, 0, 100.0, "memory")
        for path in CGROUPS.values():
            proc.add_cgroup(path, 1e6)  # one CPU each: the same CPU time
        for path in unscripted + idle:  # unscripted: the shim lets the kernel answer
            proc.add_cgroup(path, 0.0)
        tasks = [hwpc.Task(100, 0, ghz=2.4, ipc=3.0, llc_per_kinstr=0.05, mux=0.5,
                           cgroup=CGROUPS[100]),
                 hwpc.Task(200, 1, ghz=2.4, ipc=0.4, llc_per_kinstr=20.0, cgroup=CGROUPS[200])]
        hw = hwpc.FakeHwpc(tmp_path / "hwpc", tmp_path / "sys", pc, "package-0", proc, tasks, 2,
                           cgroup_root=cg, paranoid=paranoid, idle_cgroups=idle)
        made.append((hw, proc, pc))
        hw.start()
        d = start_energyd(tmp_path / "sys", "--hwpc-error-window", str(WINDOW),
                          "--cgroup-root", str(cg), *args, proc_root=tmp_path / "proc",
                          env=hw.shim_env(BUILD, ENERGYD))
        return d, hw

    yield start
    for hw, proc, pc in made:
        hw.close()
        proc.close()
        pc.close()


def watch_cgroups(d):
    ids = {}
    for pid, path in CGROUPS.items():
        status, body = d.request("POST", "/api/v1/watch",
                                 json.dumps({"cgroup": path, "label": path}))
        assert status == 201, body
        ids[pid] = body["id"]
    return ids


def watch(d, wid):
    return d.get(f"/api/v1/watch/{wid}")


def test_hwpc_model_splits_cgroups_by_counters(cgroup_machine):
    d, hw = cgroup_machine(0)
    ids = watch_cgroups(d)
    m = wait_for(lambda: usable(d), 4 * WINDOW + 20)
    c = m["counters"]
    assert c["cgroups_max"] == 16 and c["cgroups_counted"] == 2, c
    # 3 per CPU for the machine, 3 per CPU for each cgroup.
    assert c["descriptors"] == 3 * 2 + 2 * 3 * 2, c
    time.sleep(1.5)
    t0 = split_point(d, ids[100])
    time.sleep(6.0)
    t1 = split_point(d, ids[100])
    # Each cgroup within 10 % of its true energy, where CPU time (equal) is off by the
    # scripted difference; the exactness rule against the package holds.
    answers = check_split(d, hw, None, ids, t0, t1)
    for pid in CGROUPS:
        truth = hw.truth_between(pid, t0, t1)
        print(f"{CGROUPS[pid]}: hwpc-model {answers[pid]['scope']['joules'] / truth - 1:+.3f}, "
              f"cpu-time-share {answers[pid]['scope']['active_joules'] / 2 / truth - 1:+.3f}")
    for pid in CGROUPS:
        w = watch(d, ids[pid])
        assert w["method"] == "hwpc-model" and w["method_reason"] is None, w
    # The scan-based cgroup scope stays on CPU time, and names the watch that counts it.
    t = d.get("/api/v1/now")["time"]
    status, body = d.request("GET", f"/api/v1/energy?from={t - 3}&to={t}&scope=cgroup:/vec")
    assert status == 200, body
    assert body["scope"]["method"] == "cpu-time-share"
    assert f"scope=kernel:{ids[100]}" in body["scope"]["method_reason"], body["scope"]


def test_cgroups_beyond_the_bound_stay_on_cpu_time(cgroup_machine):
    d, hw = cgroup_machine(0, "--hwpc-cgroups", "1")
    ids = watch_cgroups(d)

    def counted():
        m = model(d)
        return m if m["counters"]["cgroups_counted"] == 1 else None
    c = wait_for(counted, 10)["counters"]
    assert c["cgroups_max"] == 1 and c["descriptors"] == 3 * 2 + 3 * 2, c
    # The first registered is counted; the second is not, and says why.
    first, second = watch(d, ids[100]), watch(d, ids[200])
    assert "at most 1 cgroups (--hwpc-cgroups" not in (first["method_reason"] or ""), first
    assert second["method"] == "cpu-time-share"
    assert "hardware counters follow at most 1 cgroups (--hwpc-cgroups" in \
        second["method_reason"], second
    # Once the first is deleted, the second gets its counters at the next window.
    status, _ = d.request("DELETE", f"/api/v1/watch/{ids[100]}")
    assert status in (200, 204)

    def moved():
        w = watch(d, ids[200])
        return w if "at most 1 cgroups" not in (w["method_reason"] or "") else None
    wait_for(moved, 10)
    c = model(d)["counters"]
    assert c["cgroups_counted"] == 1 and c["descriptors"] == 3 * 2 + 3 * 2, c


def test_cgroup_counters_refused_after_the_privilege_drop(cgroup_machine):
    """With kernel.perf_event_paranoid 2 (the shim plays it), the machine's counters, opened as
    root before the drop, work; a cgroup's, opened by the attribution thread afterwards, are
    refused: the cgroup stays on CPU time with the kernel's reason."""
    d, hw = cgroup_machine(2, unscripted=("/plain",))
    info = d.get("/api/v1/info")
    assert "dropped to" in info["privileges"] and info["uid"] != 0, info
    ids = watch_cgroups(d)
    # A cgroup the shim does not play: the kernel's own answer (through the seccomp filter;
    # here, without a PMU or the privilege, a refusal), and energyd goes on.
    status, plain = d.request("POST", "/api/v1/watch", json.dumps({"cgroup": "/plain"}))
    assert status == 201, plain

    def refused():
        w = watch(d, ids[100])
        return w if "perf_event_open" in (w["method_reason"] or "") else None
    w = wait_for(refused, 10)
    assert w["method"] == "cpu-time-share"
    assert "perf_event_open(cycles, cgroup /vec, cpu 0): Permission denied" in \
        w["method_reason"], w
    assert "kernel.perf_event_paranoid <= 0" in w["method_reason"]
    w = wait_for(lambda: (lambda r: r if "cgroup /plain" in r else None)(
        watch(d, plain["id"])["method_reason"] or ""), 10)
    assert w.startswith("perf_event_open(cycles, cgroup /plain, cpu 0): "), w
    c = model(d)["counters"]
    assert c["available"] is True and c["cgroups_counted"] == 0
    assert c["descriptors"] == 3 * 2, c


def test_cgroup_counters_opened_before_the_drop(cgroup_machine):
    """--hwpc-cgroup: with kernel.perf_event_paranoid 2, a cgroup named at start is counted
    (its counters opened as root, lent to its watch), split by the model, and given back when
    the watch is deleted, for the next watch of that path; another cgroup is refused."""
    d, hw = cgroup_machine(2, "--hwpc-cgroup", "/vec")
    assert model(d)["counters"]["cgroups_opened_before_drop"] == 1
    ids = watch_cgroups(d)

    def refused():
        w = watch(d, ids[200])
        return w if "Permission denied" in (w["method_reason"] or "") else None
    wait_for(refused, 10)
    # The pool's counters are the only cgroup counters open, lent or not.
    c = model(d)["counters"]
    assert c["cgroups_counted"] == 1 and c["descriptors"] == 3 * 2 + 3 * 2, c
    wait_for(lambda: usable(d), 4 * WINDOW + 20)
    w = wait_for(lambda: (lambda w: w if w["method"] == "hwpc-model" else None)(
        watch(d, ids[100])), 5)
    assert w["method_reason"] is None
    assert watch(d, ids[200])["method"] == "cpu-time-share"
    # Deleted, the counters go back to the pool (they could not be opened again): the next
    # watch of the path gets them.
    status, _ = d.request("DELETE", f"/api/v1/watch/{ids[100]}")
    assert status in (200, 204)
    status, again = d.request("POST", "/api/v1/watch", json.dumps({"cgroup": "/vec"}))
    assert status == 201, again

    def relent():
        w = watch(d, again["id"])
        return w if w["method"] == "hwpc-model" else None
    wait_for(relent, 10)
    c = model(d)["counters"]
    assert c["cgroups_counted"] == 1 and c["descriptors"] == 3 * 2 + 3 * 2, c


def test_one_user_never_takes_every_cgroup_counter(cgroup_machine, accounts, public_dir,
                                                   tmp_path):
    """Counted cgroups are shared by every user: one user other than root has at most a quarter
    of them (4 of the default 16) counted; root's are still counted."""
    user = accounts["energytest1"]
    names = tuple(f"/u{i}" for i in range(5))
    sock = public_dir / "e.sock"
    d, hw = cgroup_machine(0, "--listen", f"unix:{sock}", idle=names)
    for name in names:  # the user's own cgroups (delegated), which it may watch
        os.chown(tmp_path / "cgroup" / name.lstrip("/"), user.pw_uid, user.pw_gid)
    out = run_as(user, CLIENT + (
        "import sys\nprint(json.dumps([call(sys.argv[1], 'POST', '/api/v1/watch', "
        "json.dumps({'cgroup': p})) for p in sys.argv[2:]]))"), sock, *names)
    assert [status for status, _ in out] == [201] * 5, out
    ids = [body["id"] for _, body in out]

    def four():
        c = model(d)["counters"]
        return c if c["cgroups_counted"] == 4 else None
    c = wait_for(four, 10)
    assert c["cgroups_max"] == 16 and c["descriptors"] == 3 * 2 + 4 * 3 * 2, c
    last = watch(d, ids[-1])
    assert last["method"] == "cpu-time-share"
    assert "at most 4 cgroups of each user but root" in last["method_reason"], last
    for wid in ids[:-1]:
        assert "at most" not in (watch(d, wid)["method_reason"] or "")
    # Root's cgroup is counted all the same.
    status, body = d.request("POST", "/api/v1/watch", json.dumps({"cgroup": "/vec"}))
    assert status == 201, body

    def five():
        c = model(d)["counters"]
        return c if c["cgroups_counted"] == 5 else None
    wait_for(five, 10)
