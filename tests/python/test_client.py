"""client.py and transport.py on their own: the search, errors, ensure_energyd (real energyd, emulated RAPL)."""

import os
import time

import pytest

from jupyter_energy import client, transport
from jupyter_energy.client import EnergydClient, EnergydError, EnergydUnavailable

from energyd_testing import HOST_W, energyd_args, energyd_binary


def test_search_follows_libenergy(monkeypatch, tmp_path):
    # The order of docs/api.md, "Finding energyd" (the CLI's side: test_socket_search.py).
    system = tmp_path / "system.sock"
    monkeypatch.setattr(transport, "SYSTEM_SOCKET", str(system))
    monkeypatch.setenv("ENERGYD_SOCKET", "/x/env.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert transport.default_address("unix:/x/given.sock") == "unix:/x/given.sock"
    assert transport.default_address() == "/x/env.sock"
    monkeypatch.setenv("ENERGYD_SOCKET", "")
    assert transport.default_address() == "/run/user/1000/energyd.sock"  # no system socket
    system.write_text("")
    assert transport.default_address() == str(system)
    monkeypatch.delenv("ENERGYD_SOCKET")
    system.unlink()
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert transport.default_address() == f"/tmp/energyd-{os.getuid()}.sock"
    assert transport.parse_address("127.0.0.1:9") == ("tcp", "127.0.0.1", 9)
    assert transport.parse_address("unix:/a:b") == ("unix", "/a:b", 0)
    with pytest.raises(ValueError):
        transport.parse_address("nowhere")


def test_find_socket_does_not_fall_through(monkeypatch, tmp_path, energyd):
    # $ENERGYD_SOCKET names a socket where nothing answers: that address is reported, the
    # user's socket (where energyd answers) is not tried, as with the CLI.
    dead = str(tmp_path / "nobody-here.sock")
    monkeypatch.setenv("ENERGYD_SOCKET", dead)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # energyd's socket is energyd.sock here
    assert client.find_socket() is None
    with pytest.raises(EnergydUnavailable) as gone:
        EnergydClient().get("info")
    assert dead in gone.value.error
    monkeypatch.delenv("ENERGYD_SOCKET")
    monkeypatch.setattr(transport, "SYSTEM_SOCKET", str(tmp_path / "no-system.sock"))
    assert client.find_socket() == energyd.sock
    assert EnergydClient().get("info")["pid"] == energyd.proc.pid
    assert client.find_socket(str(tmp_path / "also-nothing.sock")) is None


def test_get_post_delete_and_errors(energyd, tmp_path):
    c = EnergydClient(energyd.sock)
    assert c.get("/api/v1/info")["pid"] == energyd.proc.pid
    time.sleep(0.3)  # a few samples (50 ms interval) so that power is defined
    now = c.get("now")
    assert now["host"]["watts"] == pytest.approx(HOST_W, rel=0.05)
    with pytest.raises(EnergydError) as bad:
        c.get("energy", **{"from": "x"})
    assert bad.value.status == 400 and bad.value.body["error"]
    with pytest.raises(EnergydError) as missing:
        c.delete("watch/12345")
    assert 400 <= missing.value.status < 500
    with pytest.raises(EnergydUnavailable) as gone:
        EnergydClient(str(tmp_path / "none.sock")).get("now")
    assert gone.value.status == 503 and "none.sock" in gone.value.error


def test_ensure_energyd(tmp_path, energyd, fake_sys):
    assert client.ensure_energyd(energyd.sock, auto_start=False) is None  # already answering
    with pytest.raises(EnergydUnavailable):
        client.ensure_energyd(str(tmp_path / "off.sock"), auto_start=False)
    emb = client.ensure_energyd(str(tmp_path / "emb.sock"), energyd_path=energyd_binary(),
                                state_dir=tmp_path / "emb-state", extra_args=energyd_args(fake_sys))
    try:
        assert emb is not None and emb.running
        assert EnergydClient(emb.socket_path).get("info")["pid"] == emb.pid
    finally:
        emb.stop()
    assert not emb.running


def test_binary_lookup(tmp_path):
    not_exec = tmp_path / "energyd"
    not_exec.write_text("")
    assert client.find_energyd_binary(str(not_exec)) is None
    assert client.find_energyd_binary(energyd_binary()) == energyd_binary()
    with pytest.raises(EnergydError) as info:
        client.start_energyd(str(tmp_path / "s.sock"), energyd_path=str(not_exec))
    assert "not found" in info.value.error


def test_embedded_energyd_dies_with_a_killed_server(tmp_path, fake_sys):
    """kill -9 of the process that started energyd must not leave energyd behind (energyd drops
    privileges when started as root, which clears its own parent-death signal)."""
    import signal
    import subprocess
    import sys

    sock = tmp_path / "orphan.sock"
    script = (
        "import sys, time\n"
        "from jupyter_energy.client import ensure_energyd\n"
        f"emb = ensure_energyd({str(sock)!r}, energyd_path={energyd_binary()!r}, "
        f"state_dir={str(tmp_path / 'orphan-state')!r}, extra_args={energyd_args(fake_sys)!r})\n"
        "print(emb.pid, flush=True)\n"
        "time.sleep(60)\n")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid = int(server.stdout.readline())
    os.kill(pid, 0)  # energyd runs
    server.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"energyd {pid} outlived the killed server")


def test_ensure_energyd_prefers_the_system_energyd(monkeypatch, tmp_path, energyd):
    # A system energyd (the service, /run/energyd/energyd.sock; here the test's daemon in its
    # place) is used even with auto_start on: no embedded daemon is started. The energyd path
    # given does not exist, so any attempt to start one would fail the call.
    monkeypatch.delenv("ENERGYD_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "no-user-energyd"))
    monkeypatch.setattr(transport, "SYSTEM_SOCKET", energyd.sock)
    state = tmp_path / "embedded-state"
    assert client.ensure_energyd(None, auto_start=True, energyd_path=str(tmp_path / "missing"),
                                 state_dir=state) is None
    assert client.resolve_socket(None, state) == energyd.sock
    assert not state.exists()
