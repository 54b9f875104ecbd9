"""Every user's energy in the long-term record (GET /api/v1/users) on a fake /proc tree.

The fake machine (as in test_attribution.py): a 40 W package, 40 CPUs with 2000 of 4000
jiffies/s busy (20 W active), pid 100 (uid 1000) at 1000 jiffies/s with its child 200 (uid 1001)
at 500, and pid 300 (uid 1000) at 500: uid 1000 has three quarters of the busy time, uid 1001
one quarter, so uid 1000 uses three times uid 1001's energy (within test_attribution.py's 5 %:
jiffy quantisation and a driver write between energyd's reads of /proc/stat and of the
processes, averaged over many scans).

The record's figure for a user is the in-memory series' value at the end of the per-user rows
(recorded_to) minus its value at the first attributed time, cut into minutes and rounded to
microjoules per piece: the same series, so the two agree to within the rounding (the pieces
telescope: 1 uJ in all) plus what the times the test passes back cost. The API prints times
to the microsecond, so the in-memory query ends up to 0.5 us away from recorded_to, and the
series moves at the user's power there (at most the 40 W package: 20 uJ per end). The bound
below is the sum, 1 + 2 * 20 uJ; a record that lost or doubled one 0.1 s sample (over 0.5 J)
is far outside it.
"""

import os
import sqlite3
import time

import pytest

from emulators.procfs import FakeProc
from test_attribution import PKG_W, REL, package
from test_store import store_dir, wait_for  # noqa: F401 (store_dir: a fixture)

UJ_BOUND_J = (1 + 2 * PKG_W * 0.5) * 1e-6  # see the module's text


@pytest.fixture
def machine(tmp_path):
    pkg = package(tmp_path / "sys").start()
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 1000, 1000.0, "kernel")
    proc.add(200, 100, 1001, 500.0, "worker")
    proc.add(300, 1, 1000, 500.0, "other")
    proc.start()
    yield tmp_path
    proc.close()
    pkg.close()


def start(start_energyd, tmp_path, db):
    return start_energyd(tmp_path / "sys", "--scan-interval", "0.2", "--store", db,
                         "--store-batch", "0.5", proc_root=tmp_path / "proc")


def users(d, t0, t1):
    status, body = d.request("GET", f"/api/v1/users?from={t0}&to={t1}")
    assert status == 200, body
    return body


def users_recorded(d, t0, after):
    """The users answer once the per-user rows reach past `after`."""
    return wait_for(lambda: (lambda b: b if (b["recorded_to"] or 0) > after else None)(
        users(d, t0, time.time() + 120)), 20, f"users recorded past {after}")


def in_memory(d, uid, t0, t1):
    status, body = d.request("GET", f"/api/v1/energy?from={t0}&to={t1}&scope=user:{uid}")
    assert status == 200, body
    return body


def by_uid(answer):
    return {u["uid"]: u for u in answer["users"]}


def record_sums(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT uid, SUM(energy_uj) FROM user_energy_1m GROUP BY uid"))
    finally:
        con.close()


def test_users_from_the_record_match_memory_and_survive_a_restart(machine, start_energyd,
                                                                  store_dir):
    db = os.path.join(store_dir, "energy.db")
    d1 = start(start_energyd, machine, db)
    began = d1.get("/api/v1/info")["started_at"]
    time.sleep(4.0)
    span0 = int(began) - 120
    ans = users_recorded(d1, span0, began + 3.0)
    assert ans["tier"] == "1m" and ans["step_s"] == 60
    assert ans["from"] % 60 == 0 and ans["to"] % 60 == 0 and ans["from"] <= span0
    assert ans["method"] == "cpu-time-share" and ans["measured"] is False
    rec_to = ans["recorded_to"]
    got = by_uid(ans)
    assert set(got) == {1000, 1001}, ans
    assert [u["uid"] for u in ans["users"]] == [1000, 1001]  # the most energy first

    # Each user's record figure is the in-memory series over [first attributed time, recorded_to]
    # (energyd clamps `from` to its first attributed time).
    active = None
    for uid in (1000, 1001):
        mem = in_memory(d1, uid, span0, rec_to)
        assert mem["to"] == pytest.approx(rec_to, abs=1e-6) and mem["from"] > span0
        assert abs(got[uid]["joules"] - mem["scope"]["joules"]) <= UJ_BOUND_J, (got[uid], mem)
        active = mem["scope"]["active_joules"]
    # Every busy jiffy is one of these users' processes: together they have the host's active
    # part over the same interval; uid 1000 three times uid 1001.
    total = got[1000]["joules"] + got[1001]["joules"]
    print(f"record: {ans}; active {active}")
    assert total == pytest.approx(active, rel=REL)
    assert got[1000]["joules"] / got[1001]["joules"] == pytest.approx(3.0, rel=REL)
    # Shares are of the host's energy over the same buckets (the longterm minutes).
    host = ans["host"]["joules"]
    assert ans["host"]["measured"] is True  # emulated RAPL: a measurement
    status, lt = d1.request("GET", f"/api/v1/longterm?from={ans['from']}&to={ans['to']}"
                                   "&tier=1m&step=60")
    assert status == 200, lt
    assert host == pytest.approx(sum(j for j in lt["host"]["joules"] if j is not None),
                                 abs=1e-6)
    for uid in (1000, 1001):
        assert got[uid]["share"] == pytest.approx(got[uid]["joules"] / host, rel=1e-9)
        assert got[uid]["user"]  # a name, or the number when the uid has no account
    assert sum(u["share"] for u in ans["users"]) == pytest.approx(total / host, rel=1e-9)
    assert d1.stop() == 0

    # What the first run left in the record (its last rows are written at stop).
    run1 = record_sums(db)
    assert run1[1000] >= round(got[1000]["joules"] * 1e6)
    time.sleep(1.0)
    d2 = start(start_energyd, machine, db)
    began2 = d2.get("/api/v1/info")["started_at"]
    time.sleep(3.0)
    both = users_recorded(d2, span0, began2 + 2.0)
    second = {}
    for uid in (1000, 1001):
        mem = in_memory(d2, uid, began2 - 1, both["recorded_to"])
        assert mem["from"] >= began2 - 0.01  # the second run's own attribution only
        second[uid] = mem["scope"]["joules"]
    for uid, u in by_uid(both).items():
        assert abs(u["joules"] - (run1[uid] / 1e6 + second[uid])) <= 2 * UJ_BOUND_J, (
            uid, u, run1, second)


@pytest.mark.parametrize("query,status", [
    ("from=abc", 400),
    ("from=2000&to=1000", 400),
    ("from=1000&to=abc", 400),
    ("to=1000", 400),
])
def test_users_bad_times(machine, start_energyd, store_dir, query, status):
    d = start(start_energyd, machine, os.path.join(store_dir, "energy.db"))
    code, body = d.request("GET", f"/api/v1/users?{query}")
    assert code == status, body
    assert body["error"] and body["hint"]


def test_users_with_the_store_off(machine, start_energyd):
    d = start_energyd(machine / "sys", "--store", "off", proc_root=machine / "proc")
    code, body = d.request("GET", f"/api/v1/users?from={time.time() - 60}")
    assert code == 503, body
    assert "store is off" in body["error"] and "--store off" in body["hint"]


def test_users_with_attribution_off(machine, start_energyd, store_dir):
    """No readable proc root: energyd records the energy but no user rows, and says so with an
    empty list and no recorded_to, not an error."""
    d = start_energyd(machine / "sys", "--store", os.path.join(store_dir, "energy.db"),
                      "--store-batch", "0.5", proc_root=machine / "no-such-proc")
    began = d.get("/api/v1/info")["started_at"]
    wait_for(lambda: (d.get("/api/v1/info")["store"]["recorded_to"] or 0) > began + 1.5, 20,
             "energy recorded")
    ans = users(d, began - 60, time.time() + 60)
    assert ans["users"] == [] and ans["recorded_to"] is None and ans["users_total"] == 0
    assert ans["host"]["joules"] > 0
    assert d.get("/api/v1/info")["store"]["status"] == "ok"
