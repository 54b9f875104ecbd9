"""JupyterHub with two real local users: each one's "you" figure, the admin's page, privacy.

Each user's kernel burns a known amount of CPU time (its own process_time, reported back); the
test also reads every process of each user from /proc at both ends of the interval (the same
counters energyd's attribution rests on, read independently).  Attribution gives each user
E × (their CPU time / all CPU time) of the measured total (docs/attribution.md), so the ratio of
the two users' joules must equal the ratio of their CPU times over the interval: within 15 %
(10 ms tick accounting over about 2 s and 4 s of CPU time, and the scans at both ends of the
interval, at most 0.5 s apart from the test's own reading).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import time
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from conftest import wait_until

WORK_S = {0: 1.5, 1: 3.0}  # CPU seconds each user's kernel burns (user b twice user a)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(uid: int) -> float:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def user_token(hub, name: str) -> str:
    r = hub.api("POST", f"users/{name}/tokens", json={
        "note": "energy test", "expires_in": 600,
        "scopes": [f"access:servers!user={name}", "access:services!service=energy",
                   f"read:users!user={name}"]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


class Server:
    """One user's single-user server, reached through the hub's proxy with the user's token."""

    def __init__(self, hub, name: str):
        self.hub, self.name = hub, name
        self.token = user_token(hub, name)
        self.base = f"{hub.url}/user/{name}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"

    def get(self, path: str, **params):
        return self.http.get(f"{self.base}/{path}", params=params, timeout=30)

    def energy(self, path: str, **params):
        return self.get(f"api/energy/v1/{path}", **params)

    def run(self, code: str, timeout_s: float = 120) -> str:
        """Executes code in a new kernel over the kernel's websocket; returns its stdout."""
        import asyncio
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        r = self.http.post(f"{self.base}/api/kernels", json={"name": "python3"}, timeout=60)
        assert r.status_code == 201, r.text
        kid = r.json()["id"]

        async def go():
            ws_url = self.base.replace("http://", "ws://") + f"/api/kernels/{kid}/channels"
            ws = await websocket_connect(HTTPRequest(
                ws_url, headers={"Authorization": f"token {self.token}"}))
            msg_id = uuid.uuid4().hex
            await ws.write_message(json.dumps({
                "header": {"msg_id": msg_id, "username": self.name, "session": uuid.uuid4().hex,
                           "msg_type": "execute_request", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False}}))
            out = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
                assert raw is not None, "kernel websocket closed"
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    pytest.fail("kernel error: " + "\n".join(msg["content"]["traceback"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    ws.close()
                    return "".join(out)
            pytest.fail("kernel did not finish")

        return asyncio.run(go())


BURN = """
import time
t0 = time.process_time()
while time.process_time() - t0 < {work}:
    sum(range(20000))
print(time.process_time() - t0)
"""


@pytest.fixture(scope="session")
def hub_run(hub_env):
    hub = hub_env["hub"]
    servers = []
    for name in hub_env["users"]:
        r = hub.api("POST", f"users/{name}/server")
        assert r.status_code in (201, 202), r.text + hub.log_tail()
    for name in hub_env["users"]:
        wait_until(f"{name}'s server ready",
                   lambda: (hub.api("GET", f"users/{name}").json().get("servers", {})
                            .get("", {}).get("ready")), 150, hub.proc, hub.log)
        servers.append(Server(hub, name))
    # Warm the kernels up (start-up CPU outside the interval), then burn in both at once.
    for s in servers:
        s.run("1")
    uids = [pwd.getpwnam(n).pw_uid for n in hub_env["users"]]
    time.sleep(1.0)
    t0 = time.time()
    cpu0 = [cpu_seconds_of(u) for u in uids]
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda i: servers[i].run(BURN.format(work=WORK_S[i])), (0, 1)))
    cpu1 = [cpu_seconds_of(u) for u in uids]
    t1 = time.time()
    time.sleep(2.0)  # energyd's scans cover t1
    return {"servers": servers, "uids": uids, "t0": t0, "t1": t1,
            "kernel_cpu_s": [float(o.strip()) for o in outs],
            "user_cpu_s": [b - a for a, b in zip(cpu0, cpu1)], **hub_env}


def span(run):
    return {"from": f"{run['t0']:.3f}", "to": f"{run['t1']:.3f}"}


def test_servers_use_the_system_energyd_not_an_embedded_one(hub_run):
    for s in hub_run["servers"]:
        status = s.energy("status").json()
        assert status["embedded"] is False, status
        assert status["socket_path"] == hub_run["sock"]
        assert status["others_visible"] is False


def test_kernels_are_watched_under_their_users_uid(hub_run):
    for s, uid in zip(hub_run["servers"], hub_run["uids"]):
        kernels = s.get("api/kernels").json()
        assert len(kernels) == 2  # the warm-up and the work
        status = wait_until("both kernels watched", lambda: (
            lambda st: st if sum(1 for k in st["kernels"].values() if k["watch_id"]) == 2 else None
        )(s.energy("status").json()), 30)
        watches = {str(w["id"]): w for w in hub_run["energyd"].get("watch")["watches"]}
        for k in kernels:
            watch = watches.get(status["kernels"][k["id"]]["watch_id"])
            assert watch is not None, (status, list(watches))
            assert watch["owner_uid"] == uid and watch["label"] == f"kernel:{k['id']}"


def test_each_user_sees_their_own_share_not_the_others(hub_run):
    (a, b), (ua, ub) = hub_run["servers"], hub_run["uids"]
    you = {}
    for s, uid in ((a, ua), (b, ub)):
        r = s.energy("you", **span(hub_run))
        assert r.status_code == 200, r.text
        you[uid] = r.json()
        mine = you[uid]["you"]
        assert mine["uid"] == uid and mine["scope"] == f"user:{uid}"
        assert mine["measured"] is False and "estimate" in mine["label"]
        assert you[uid]["machine"]["measured"] is True
        assert 0 < mine["share"] < 1 and mine["joules"] > 0
        # The other user's scope is refused; processes are the user's own only.
        other = ub if uid == ua else ua
        r = s.energy("energy", scope=f"user:{other}", **span(hub_run))
        assert r.status_code == 403, r.text
        procs = s.energy("processes", top="1000").json()["processes"]
        assert procs and all(p["uid"] == uid for p in procs), procs[:3]
    # b burned twice a's CPU: b's "you" must be the larger one, by the ratio of their CPU time.
    ratio = you[ub]["you"]["joules"] / you[ua]["you"]["joules"]
    cpu_ratio = hub_run["user_cpu_s"][1] / hub_run["user_cpu_s"][0]
    assert ratio == pytest.approx(cpu_ratio, rel=0.15), (ratio, hub_run["user_cpu_s"])
    # One user cannot reach the other's server at all (the hub refuses the token).
    r = a.http.get(f"{b.base}/api/energy/v1/you", timeout=30, allow_redirects=False)
    assert r.status_code in (302, 403, 404), r.status_code


def service(hub, token, path="api/usage", **params):
    return requests.get(f"{hub.url}/services/energy/{path}", params=params, timeout=60,
                        headers={"Authorization": f"token {token}"}, allow_redirects=False)


def test_admin_lists_every_user_with_energy_in_the_ratio_of_their_cpu_work(hub_run):
    hub = hub_run["hub"]
    root_token = user_token(hub, "root")
    r = service(hub, root_token, **span(hub_run))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["admin"] is True and data["source"] == "energyd"
    rows = {row["user"]: row for row in data["rows"]}
    a, b = hub_run["users"]
    assert {a, b, "root"} <= set(rows)
    for name in (a, b):
        assert rows[name]["measured"] is False and rows[name]["joules"] > 0, rows[name]
    ratio = rows[b]["joules"] / rows[a]["joules"]
    cpu = hub_run["user_cpu_s"]
    print(f"joules a={rows[a]['joules']:.2f} b={rows[b]['joules']:.2f} ratio={ratio:.3f}; "
          f"CPU s of the users {cpu}, of the kernels' work {hub_run['kernel_cpu_s']}")
    assert ratio == pytest.approx(cpu[1] / cpu[0], rel=0.15), (ratio, cpu)
    # And the kernels' own CPU work was in the planned 2:1 ratio (the bulk of each user's time).
    assert hub_run["kernel_cpu_s"][1] / hub_run["kernel_cpu_s"][0] == pytest.approx(2.0, rel=0.1)
    # The users' extra CPU time (b − a, read from /proc) is the kernels' extra work: the rest of
    # each user's time (their server, the kernel's idle loop) is alike for both.
    kernel = hub_run["kernel_cpu_s"]
    assert cpu[1] - cpu[0] == pytest.approx(kernel[1] - kernel[0], abs=0.5), (cpu, kernel)
    # The share of each is its joules over the same interval's measured machine total.
    machine = data["machine"]["joules"]
    assert machine > 0 and data["machine"]["measured"] is True
    for name in (a, b):
        assert rows[name]["share"] == pytest.approx(rows[name]["joules"] / machine, rel=1e-3)
    # CSV export: the same rows.
    r = service(hub, root_token, "api/usage.csv", **span(hub_run))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    got = {row["user"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert float(got[b]["joules"]) == pytest.approx(rows[b]["joules"])
    # The page itself, behind the hub's OAuth.
    r = service(hub, root_token, "")
    assert r.status_code == 200 and "Energy by user" in r.text


def test_a_period_older_than_memory_comes_from_the_record(hub_run):
    """A period that starts before energyd's memory (an hour before the work, energyd started
    minutes ago) is answered from the record's per-user minute rows, through one
    /api/v1/users request: the rows are energyd's own figures for those uids, the minutes cover
    the work, so each user has at least what memory says they used during it, and b (twice a's
    work, the rest alike) more than a."""
    hub, energyd = hub_run["hub"], hub_run["energyd"]
    a, b = hub_run["users"]
    ua, ub = hub_run["uids"]
    t0, t1 = hub_run["t0"] - 3600, hub_run["t1"]
    q = {"from": f"{t0:.3f}", "to": f"{t1:.3f}"}
    wait_until("the record's user rows past the work",
               lambda: (energyd.get("users", **q).get("recorded_to") or 0) >= t1, 30)
    # The last minute may still grow while the service asks: energyd's answers just before and
    # just after bound the service's.
    before = {u["uid"]: u["joules"] for u in energyd.get("users", **q)["users"]}
    r = service(hub, user_token(hub, "root"), **q)
    after = {u["uid"]: u["joules"] for u in energyd.get("users", **q)["users"]}
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["figures"] == "record" and data["resolution_s"] == 60, data
    assert data["from"] <= t0 and data["to"] >= t1 and data["from"] % 60 == 0
    rows = {row["user"]: row for row in data["rows"]}
    memory = {uid: energyd.get("energy", scope=f"user:{uid}", **span(hub_run))["scope"]["joules"]
              for uid in (ua, ub)}
    for name, uid in ((a, ua), (b, ub)):
        row = rows[name]
        assert row["uid"] == uid and row["measured"] is False
        assert before[uid] - 1e-6 <= row["joules"] <= after[uid] + 1e-6, (row, before, after)
        assert row["share"] == pytest.approx(row["joules"] / data["machine"]["joules"], rel=1e-9)
        assert row["joules"] >= memory[uid] - 1e-3, (row, memory)
    assert rows[b]["joules"] > rows[a]["joules"], rows
    assert data["machine"]["measured"] is True


def test_a_user_who_is_not_admin_sees_only_their_row(hub_run):
    hub, (a, _) = hub_run["hub"], hub_run["servers"]
    r = service(hub, a.token, **span(hub_run))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["admin"] is False
    assert [row["user"] for row in data["rows"]] == [a.name]
    r = service(hub, a.token, "api/usage.csv", **span(hub_run))
    assert [row["user"] for row in csv.DictReader(io.StringIO(r.text))] == [a.name]


def test_login_in_a_browser_session_reaches_the_page_through_oauth(hub_run):
    """The path a browser takes: the hub's login form, then the service's OAuth redirects."""
    import re
    from conftest import PASSWORD
    hub, name = hub_run["hub"], hub_run["users"][0]
    browser = requests.Session()
    form = browser.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    r = browser.post(f"{hub.url}/hub/login", timeout=60, allow_redirects=False, data={
        "username": name, "password": PASSWORD, **({"_xsrf": xsrf.group(1)} if xsrf else {})})
    assert r.status_code == 302, r.status_code  # logged in, sent on to the user's server
    page = browser.get(f"{hub.url}/services/energy/", timeout=60)
    assert page.status_code == 200 and f"Signed in as <b>{name}</b>" in page.text, page.text[:500]
    data = browser.get(f"{hub.url}/services/energy/api/usage", params=span(hub_run),
                       timeout=60).json()
    assert [row["user"] for row in data["rows"]] == [name] and data["admin"] is False
    # A wrong password does not get in.
    intruder = requests.Session()
    form = intruder.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    intruder.post(f"{hub.url}/hub/login", timeout=60, data={
        "username": name, "password": "wrong", **({"_xsrf": xsrf.group(1)} if xsrf else {})})
    r = intruder.get(f"{hub.url}/services/energy/api/usage", timeout=60, allow_redirects=False)
    assert r.status_code in (302, 403), r.status_code


def test_the_service_needs_a_hub_login(hub_run):
    r = requests.get(f"{hub_run['hub'].url}/services/energy/api/usage", timeout=30,
                     allow_redirects=False)
    assert r.status_code in (302, 403), r.status_code


def browse(hub_run, user: str, shot: Path) -> dict:
    from conftest import HERE, PASSWORD
    r = subprocess.run(["node", str(HERE / "browser.js"), hub_run["hub"].url, user, PASSWORD,
                        str(shot), f"from={hub_run['t0']:.3f}&to={hub_run['t1']:.3f}"],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_page_in_chromium_admin_and_user(hub_run, tmp_path):
    """The page as a person sees it (Playwright, headless Chromium, the hub's login form): the
    admin's table (over the test's interval, given in the page's address) has both users,
    largest energy first, and re-sorts on a click; a user who is
    not admin sees one row, their own."""
    out = Path(os.environ.get("HUB_TEST_OUT", tmp_path))
    a, b = hub_run["users"]
    seen = browse(hub_run, "root", out / "hub-energy-admin.png")
    users = [r["user"] for r in seen["rows"]]
    assert a in users and b in users, seen
    assert users.index(b) < users.index(a), users  # b burned more: sorted by energy, largest first
    after = [r["user"] for r in seen["rows_after_click"]]
    assert after.index(a) < after.index(b), after
    assert "measured" in seen["machine"] and "all users" in seen["machine"]
    row_b = next(r for r in seen["rows"] if r["user"] == b)
    assert float(row_b["cells"][1]) > 0 and row_b["cells"][2].endswith("%")
    seen = browse(hub_run, a, out / "hub-energy-user.png")
    assert [r["user"] for r in seen["rows"]] == [a], seen
    assert "your row only" in seen["machine"]
