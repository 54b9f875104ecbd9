"""Handler tests: the server extension in front of a real energyd on emulated RAPL.

Energy bounds: the emulated host draws HOST_W = 25 W (package 20 W + dram 5 W), but on a loaded
machine the emulator's thread runs late, so the expected energy is what the emulator actually
wrote: its log of (time, counter), taken at energyd's own sample times and interpolated between
them as energyd does (FakePowercap.energy_between). What is left is each sample's skew between
reading the counters and stamping the sample: we allow SKEW_S per end at the zone's power, plus
1 % (a missing dram channel is 20 % off, a wrong unit far more).
"""

import asyncio
import json
import os
import signal
import time

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_energy.client import EnergydClient, EnergydError

from energyd_testing import DRAM_W, HOST_W, PACKAGE_W, Energyd, energyd_args, energyd_binary
from tests.emulators.powercap import history_within_power

from emulated_energy import SKEW_S


def close_to(joules, expected, watts=HOST_W, rel=0.01):
    return abs(joules - expected) <= rel * expected + 2 * watts * SKEW_S


async def sample_times(jp_fetch, seconds=60):
    """energyd's sample times (wall clock) over the last `seconds`."""
    return (await get(jp_fetch, "history", seconds=seconds))["t"]


async def assert_history_matches(jp_fetch, emulated):
    """The last second of history, point by point, against the emulated HOST_W, with what the
    emulator's late writes (from its log) and SKEW_S per end can move over each point's window
    (powercap.history_within_power); most points must have a tight bound."""
    hist = await get(jp_fetch, "history", seconds=1)
    t, w = hist["t"], hist["host"]["watts"]
    assert len(t) == len(w) > 5
    assert sum(x is None for x in w) <= 3, hist  # at most a couple of gaps
    bad, shown, tight = history_within_power(emulated, t, w, HOST_W, SKEW_S)
    assert not bad, (bad, hist)
    assert tight >= shown / 2, (tight, shown)


async def get(jp_fetch, *path, **params):
    resp = await jp_fetch("api", "energy", "v1", *path, params=params or None)
    assert resp.headers["Content-Type"].startswith("application/json")
    return json.loads(resp.body)


async def get_error(jp_fetch, *path, **params):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("api", "energy", "v1", *path, params=params or None)
    body = json.loads(info.value.response.body)
    assert body["error"], body
    assert "hint" in body
    return info.value.code, body


async def test_info_and_sources_are_forwarded(jp_fetch, energyd):
    info = await get(jp_fetch, "info")
    assert info["pid"] == energyd.proc.pid
    assert info["interval_s"] == pytest.approx(0.05)
    sources = await get(jp_fetch, "sources")
    ids = {c["id"]: c for c in sources["channels"]}
    assert ids["rapl:package-0"]["measured"] is True
    assert "rapl:dram-0" in ids


async def test_now_and_energy_match_the_emulated_power(jp_fetch, energyd, emulated):
    await asyncio.sleep(1.0)
    now = await get(jp_fetch, "now")
    assert now["host"]["measured"] is True
    assert set(now["host"]["coverage"]) == {"rapl:package-0", "rapl:dram-0"}
    ts = await sample_times(jp_fetch)
    # An interval of 0.6 s with ends between samples (interpolated by energyd and by us).
    t1 = ts[-3] + 0.02
    t0 = t1 - 0.6
    energy = await get(jp_fetch, "energy", **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
    pkg = emulated.energy_between("package-0", t0, t1, ts)
    dram = emulated.energy_between("dram", t0, t1, ts)
    assert pkg > 0.3 * PACKAGE_W * 0.6  # the emulator ran (at least 30 % of its nominal)
    assert close_to(energy["host"]["joules"], pkg + dram), (energy, pkg, dram)
    assert close_to(energy["channels"]["rapl:package-0"]["joules"], pkg, PACKAGE_W), (energy, pkg)
    assert close_to(energy["channels"]["rapl:dram-0"]["joules"], dram, DRAM_W), (energy, dram)
    await assert_history_matches(jp_fetch, emulated)


async def test_longterm_is_forwarded(jp_fetch, energyd, emulated):
    """The long-term record through the extension: every fully covered 1 s step holds what the
    emulator wrote over that second (see close_to)."""
    t0 = time.time()
    deadline = time.monotonic() + 10
    full, lt = [], None
    while time.monotonic() < deadline and len(full) < 2:
        await asyncio.sleep(0.5)
        try:
            lt = await get(jp_fetch, "longterm", **{"from": f"{t0 - 2:.0f}",
                                                     "to": f"{time.time():.0f}", "step": "1"})
        except HTTPClientError as exc:  # 404 until energyd's first write to its record
            assert exc.code == 404, exc
            continue
        full = [(t, j) for t, j, c in zip(lt["t"], lt["host"]["joules"],
                                          lt.get("covered_s") or [])
                if j is not None and c is not None and c >= 0.999]
    assert len(full) >= 2, lt
    ts = await sample_times(jp_fetch)
    for t, j in full:
        written = emulated.host_between(t, t + 1, ts)
        assert written > 0.3 * HOST_W  # the emulator ran
        assert close_to(j, written), (t, j, written, lt)
    assert lt["step_s"] == 1


async def test_now_is_served_from_one_shared_stream_on_kept_connections(jp_fetch, energyd):
    """`now` asked again and again: energyd's own samples (the JSON of its `now`), from one event
    stream held by the extension, and the requests forwarded meanwhile share one connection."""
    deadline = time.monotonic() + 10
    while (await get(jp_fetch, "now"))["host"]["watts"] is None:
        assert time.monotonic() < deadline, "no host watts within 10 s"
        await asyncio.sleep(0.1)
    direct = EnergydClient(energyd.sock).get("now")
    answers = []
    for _ in range(40):
        answers.append(await get(jp_fetch, "now"))
        await asyncio.sleep(0.02)
    ticks = [a["tick"] for a in answers]
    assert ticks == sorted(ticks) and ticks[-1] > ticks[0], ticks  # never an older sample
    assert all(set(a) == set(direct) for a in answers)  # energyd's `now`, as it gave it
    status = (await get(jp_fetch, "status"))["upstream"]
    assert status["streams_opened"] == 1, status
    assert status["now_from_stream"] >= 1, status
    assert status["connections_opened"] <= 2, status  # kept: not one per request
    assert status["requests"] >= 1 + 40 - status["now_from_stream"], status


async def test_energyd_errors_pass_through_as_json(jp_fetch, energyd):
    query = {"from": "yesterday", "to": "1"}
    code, body = await get_error(jp_fetch, "energy", **query)
    assert code == 400
    with pytest.raises(EnergydError) as direct:
        EnergydClient(energyd.sock).get("energy", **query)
    assert direct.value.status == 400
    assert body == direct.value.body  # energyd's own answer, unchanged


class TestDiscovery:
    @pytest.fixture
    def extension_config(self, energyd, monkeypatch):
        monkeypatch.setenv("ENERGYD_SOCKET", energyd.sock)
        return {"auto_start": False}

    async def test_finds_energyd_from_the_environment(self, jp_fetch, energyd):
        status = await get(jp_fetch, "status")
        assert status["socket_path"] == energyd.sock
        assert status["embedded"] is False
        assert (await get(jp_fetch, "info"))["pid"] == energyd.proc.pid


async def test_requests_need_authentication(jp_fetch, jp_serverapp, http_server_client, jp_base_url):
    with pytest.raises(HTTPClientError) as info:
        await http_server_client.fetch(jp_base_url + "api/energy/v1/now")
    assert info.value.code == 403


async def test_kernel_energy_for_a_started_kernel(jp_fetch, energyd, emulated):
    resp = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(resp.body)["id"]
    try:
        # energyd attributes once it has scanned processes twice; until then it says so.
        deadline = time.monotonic() + 10
        while True:
            await asyncio.sleep(0.5)
            t1 = time.time() - 0.1
            t0 = t1 - 0.4
            answer = await get(jp_fetch, "kernels", kernel_id, "energy",
                               **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
            if answer["kernel"] is not None or time.monotonic() > deadline:
                break
            assert answer["kernel_note"], answer  # never a silent gap
        assert answer["kernel_id"] == kernel_id
        # energyd's own figures, passed through: seconds and mean watts as /energy gives them.
        direct = EnergydClient(energyd.sock).get("energy", **{"from": f"{t0:.6f}",
                                                              "to": f"{t1:.6f}"})
        assert answer["seconds"] == direct["seconds"] == pytest.approx(t1 - t0, abs=2e-6)
        assert answer["host"]["watts"] == direct["host"]["watts"]
        assert answer["channels"]["rapl:package-0"]["watts"] == \
            direct["channels"]["rapl:package-0"]["watts"]
        assert isinstance(answer["pid"], int) and answer["pid"] > 0
        os.kill(answer["pid"], 0)  # the kernel's real process
        written = emulated.host_between(t0, t1, await sample_times(jp_fetch))
        assert close_to(answer["host"]["joules"], written), (answer, written)
        assert answer["host"]["measured"] is True
        # The kernel's attributed share: an estimate with its method, within the machine's.
        assert answer["watch_id"] is not None, answer
        kernel = answer["kernel"]
        assert kernel is not None, answer
        assert kernel["method"] and kernel["measured"] is False
        assert kernel["share"] == pytest.approx(kernel["joules"] / answer["host"]["joules"],
                                                rel=1e-9, abs=1e-12)
        # By CPU time: joules = host x the kernel's CPU time in the window / all CPU time.
        # The kernel's CPU time in the window is at most all it used since it started (read
        # now, plus a 10 ms tick); 15 % for /proc/stat and per-process times being sampled
        # separately by the kernel (as in the attribution tests).
        with open(f"/proc/{answer['pid']}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu_s = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / \
            os.sysconf("SC_CLK_TCK") + 0.01
        bound = answer["host"]["joules"] * cpu_s / ((t1 - t0) * os.cpu_count())
        assert 0 <= kernel["joules"] <= 1.15 * bound, (kernel, cpu_s, bound)
        watch_id = answer["watch_id"]
        watches = EnergydClient(energyd.sock).get("watch")["watches"]
        mine = [w for w in watches if str(w["id"]) == str(watch_id)]
        assert mine and mine[0]["pid"] == answer["pid"] and mine[0]["label"] == f"kernel:{kernel_id}"
        status = await get(jp_fetch, "status")
        assert status["kernels"][kernel_id]["pid"] == answer["pid"]
        # The kernel was started with the server's environment, which names this energyd.
        with open(f"/proc/{answer['pid']}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        assert env[b"ENERGYD_SOCKET"].decode() == energyd.sock
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    code, body = await get_error(jp_fetch, "kernels", kernel_id, "energy")
    assert code == 404
    # The watch goes with the kernel (the extension syncs every 0.5 s here).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ids = [str(w["id"]) for w in EnergydClient(energyd.sock).get("watch")["watches"]]
        if str(watch_id) not in ids:
            break
        await asyncio.sleep(0.2)
    assert str(watch_id) not in ids


async def test_json_error_when_energyd_is_gone(jp_fetch, energyd):
    # Watts are null until the counters' first regular update (docs/api.md, "Watts").
    deadline = time.monotonic() + 10
    while (watts := (await get(jp_fetch, "now"))["host"]["watts"]) is None:
        assert time.monotonic() < deadline, "no host watts within 10 s"
        await asyncio.sleep(0.1)
    assert watts > 0
    energyd.stop()
    code, body = await get_error(jp_fetch, "now")
    assert code == 503
    assert energyd.sock in body["error"]
    code, body = await get_error(jp_fetch, "sources")
    assert code == 503


class TestAutoStart:
    @pytest.fixture
    def extension_config(self, tmp_path, fake_sys):
        # No energyd runs on this socket: the extension must start one (embedded mode).
        return {"socket_path": str(tmp_path / "embedded.sock"), "auto_start": True,
                "energyd_path": energyd_binary(), "interval_s": 0.05,
                "state_dir": str(tmp_path / "embedded-state"),
                "energyd_args": energyd_args(fake_sys)}

    async def test_starts_energyd_and_stops_it_with_the_server(self, jp_fetch, jp_serverapp,
                                                               tmp_path, emulated):
        status = await get(jp_fetch, "status")
        assert status["embedded"] is True
        assert status["socket_path"] == str(tmp_path / "embedded.sock")
        await asyncio.sleep(0.6)
        await assert_history_matches(jp_fetch, emulated)
        app = jp_serverapp.web_app.settings["jupyter_energy"]
        proc = app.embedded.proc
        assert proc.poll() is None
        await app.stop_extension()
        assert proc.poll() is not None

    async def test_restarts_its_embedded_energyd_when_it_died(self, jp_fetch, jp_serverapp):
        app = jp_serverapp.web_app.settings["jupyter_energy"]
        first = app.embedded
        os.kill(first.pid, signal.SIGKILL)  # energyd crashes
        first.proc.wait(10)  # its guard exits with it
        info = await get(jp_fetch, "info")  # the request itself brings energyd back
        assert app.embedded is not first and app.embedded.running
        assert info["pid"] == app.embedded.pid != first.pid
        await app.stop_extension()


class TestNoEnergyd:
    @pytest.fixture
    def extension_config(self, tmp_path):
        return {"socket_path": str(tmp_path / "nothing.sock"), "auto_start": False}

    async def test_unreachable_energyd_is_a_json_503(self, jp_fetch):
        code, body = await get_error(jp_fetch, "now")
        assert code == 503
        assert "nothing.sock" in body["error"]
        status = await get(jp_fetch, "status")
        assert status["embedded"] is False and status["startup_error"]


async def test_watches_come_back_after_energyd_restarts(jp_fetch, jp_serverapp, energyd, fake_sys,
                                                        tmp_path):
    """energyd killed while a kernel runs, then a new energyd on the same socket: the extension
    sees the new daemon (pid, started_at) at its next sync and registers the kernel again, so the
    kernel's share is back within 5 s."""
    resp = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(resp.body)["id"]
    app = jp_serverapp.web_app.settings["jupyter_energy"]
    second = None
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = await get(jp_fetch, "status")
            if (status["kernels"].get(kernel_id) or {}).get("watch_id") is not None:
                break
            await asyncio.sleep(0.2)
        pid = status["kernels"][kernel_id]["pid"]
        assert status["energyd_pid"] == energyd.proc.pid
        energyd.kill()
        code, body = await get_error(jp_fetch, "kernels", kernel_id, "energy")
        assert code == 503, body
        await asyncio.sleep(1.0)  # syncs while it is down change nothing and raise nothing
        os.unlink(energyd.sock)
        second = Energyd(energyd.sock, tmp_path / "energyd-state-2", fake_sys)
        restarted = time.monotonic()
        # The new daemon starts with no watches at all.
        assert EnergydClient(energyd.sock).get("watch")["watches"] == []
        mine = []
        while time.monotonic() - restarted < 5 and not mine:
            await asyncio.sleep(0.2)
            mine = [w for w in EnergydClient(energyd.sock).get("watch")["watches"]
                    if w["label"] == f"kernel:{kernel_id}"]
        assert mine and mine[0]["pid"] == pid, "kernel not registered again within 5 s"
        status = await get(jp_fetch, "status")
        assert status["energyd_pid"] == second.proc.pid and status["energyd_restarts"] == 1
        assert str(status["kernels"][kernel_id]["watch_id"]) == str(mine[0]["id"])
        # And the kernel's share is attributed again by the new daemon.
        deadline = time.monotonic() + 10
        while True:
            await asyncio.sleep(0.5)
            t1 = time.time() - 0.1
            answer = await get(jp_fetch, "kernels", kernel_id, "energy",
                               **{"from": f"{t1 - 0.4:.6f}", "to": f"{t1:.6f}"})
            if answer["kernel"] is not None or time.monotonic() > deadline:
                break
        assert answer["kernel"] is not None, answer
        assert 0 <= answer["kernel"]["joules"] <= answer["host"]["joules"]
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
        if second is not None:
            second.stop()


async def wait_for_attribution(jp_fetch, path, **params):
    deadline = time.monotonic() + 15
    while True:
        try:
            return await get(jp_fetch, *path, **params)
        except HTTPClientError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def test_you_is_the_server_users_share_of_the_machine_total(jp_fetch, energyd):
    await asyncio.sleep(2.5)  # attribution needs two full scans
    t1 = time.time() - 1.5
    t0 = t1 - 1.0
    you = await wait_for_attribution(jp_fetch, ["you"], **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
    span = you["to"] - you["from"]
    assert span > 0.5, you
    assert you["machine"]["measured"] is True
    assert close_to(you["machine"]["joules"], HOST_W * span), you
    mine = you["you"]
    assert mine["scope"] == f"user:{os.getuid()}"
    assert mine["measured"] is False and "estimate" in mine["label"]
    assert "measured total" in mine["label"]
    # The user's joules are the share of the same interval's measured total.
    assert 0.0 <= mine["share"] <= 1.0
    assert mine["joules"] == pytest.approx(mine["share"] * you["machine"]["joules"], rel=1e-3,
                                           abs=1e-6)


@pytest.fixture
def as_other_user(monkeypatch):
    """The extension as a single-user server of uid 65534 (nobody) sees it: not root."""
    from jupyter_energy.app import EnergyExtensionApp
    monkeypatch.setattr(EnergyExtensionApp, "uid", property(lambda self: 65534))


async def test_processes_are_the_callers_own_for_non_root(jp_fetch, energyd, as_other_user):
    answer = await wait_for_attribution(jp_fetch, ["processes"], top="1000")
    # Root's processes exist (this test, energyd before its drop, init) but are filtered out.
    assert all(p["uid"] == 65534 for p in answer["processes"]), answer["processes"][:3]
    assert (await get(jp_fetch, "status"))["others_visible"] is False
    code, body = await get_error(jp_fetch, "energy", scope="user:0",
                                 **{"from": f"{time.time() - 5:.3f}"})
    assert code == 403 and "another user" in body["error"]
    code, body = await get_error(jp_fetch, "energy", scope=f"pid:{os.getpid()}",
                                 **{"from": f"{time.time() - 5:.3f}"})
    assert code == 403 and "not a running process of yours" in body["error"]
    code, _ = await get_error(jp_fetch, "energy", scope="cgroup:/", **{"from": "1"})
    assert code == 403
    # The same check on /runs, which takes a scope as /energy does.
    t = time.time() - 2
    code, body = await get_error(jp_fetch, "runs", scope="user:0",
                                 runs=f"{t - 1:.3f}/{t - 0.5:.3f},{t - 0.5:.3f}/{t:.3f}")
    assert code == 403 and "another user" in body["error"]


async def test_root_server_sees_every_process(jp_fetch, energyd):
    answer = await wait_for_attribution(jp_fetch, ["processes"], top="1000")
    assert any(p["uid"] == 0 for p in answer["processes"])
    assert (await get(jp_fetch, "status"))["others_visible"] is True


async def test_runs_are_forwarded(jp_fetch, energyd, emulated):
    """/runs through the extension is energyd's answer: per run as /energy gives it, and the
    statistics over the runs."""
    await asyncio.sleep(1.2)
    t = time.time() - 0.3
    spans = [(t - 0.9, t - 0.6), (t - 0.6, t - 0.3), (t - 0.3, t)]
    runs = ",".join(f"{a:.6f}/{b:.6f}" for a, b in spans)
    answer = await get(jp_fetch, "runs", runs=runs)
    direct = EnergydClient(energyd.sock).get("runs", runs=runs)
    assert answer["stats"] == direct["stats"]
    assert len(answer["runs"]) == 3
    ts = await sample_times(jp_fetch)
    for run, (a, b) in zip(answer["runs"], spans):
        one = EnergydClient(energyd.sock).get("energy", **{"from": f"{a:.6f}", "to": f"{b:.6f}"})
        assert run["host"]["joules"] == one["host"]["joules"]
        assert run["host"]["watts"] == one["host"]["watts"]
        assert close_to(run["host"]["joules"], emulated.host_between(a, b, ts)), run
    assert answer["stats"]["host"]["joules"]["n"] == 3
