"""The socket search (docs/api.md, "Finding energyd"): the `energy` CLI (libenergy) and the Python
client (python/jupyter_energy/transport.py) pick the same address in every case.

Each case lays out candidate sockets, each a tiny HTTP server that notes which requests reach
it (or a real energyd), then runs the CLI and a Python process with the case's environment and
checks which server each of them reached. Both run in a mount namespace of their own whose /run
is an empty tmpfs, so the machine's /run/energyd/energyd.sock is neither seen nor touched; the
cases with a system socket link /run/energyd/energyd.sock to one of the test's servers inside
that namespace only. The /tmp/energyd-UID.sock case runs both as an unused uid, whose socket
path no one else uses.
"""

from __future__ import annotations

import http.server
import json
import os
import pwd
import socket
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ENERGY, ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root for a private mount namespace (unshare -m)")

# Runs "$@" with /run replaced by an empty tmpfs; with a first argument other than "-", the
# system socket /run/energyd/energyd.sock is a link to it (in this namespace only).
NAMESPACE = ('set -e; sys=$1; shift; mount -t tmpfs tmpfs /run; '
             'if [ "$sys" != - ]; then mkdir /run/energyd; ln -s "$sys" /run/energyd/energyd.sock; '
             'fi; exec "$@"')

# The Python client as a user of the package uses it: the default EnergydClient (or one given
# an explicit address), one request; prints the address it chose and the answer or the error.
PYTHON_CLIENT = """
import json, sys
from jupyter_energy.client import EnergydClient, EnergydError
c = EnergydClient(sys.argv[1] or None)
try:
    out = {"address": c.socket_path, "answer": c.get("info")}
except EnergydError as exc:
    out = {"address": c.socket_path, "error": exc.error}
print(json.dumps(out))
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)
        body = json.dumps({"fake": self.server.name, "pid": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


class Fake:
    """A tiny HTTP server on a unix socket (or on 127.0.0.1 with a free port) that records the
    paths asked of it."""

    def __init__(self, name: str, path: str | None = None):
        if path is None:
            self.server = _TCPServer(("127.0.0.1", 0), _Handler)
            self.address = f"127.0.0.1:{self.server.server_address[1]}"
        else:
            self.server = _UnixServer(path, _Handler)
            os.chmod(path, 0o666)  # the unused-uid case connects as another user
            self.address = path
        self.path = path
        self.server.name, self.server.hits = name, []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> list:
        return self.server.hits

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)


@pytest.fixture
def fakes():
    made: list[Fake] = []

    def make(name: str, path: str | None = None) -> Fake:
        f = Fake(name, str(path) if path is not None else None)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def _env(case_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("ENERGYD_SOCKET", "XDG_RUNTIME_DIR")}
    env.update(case_env)
    env["PYTHONPATH"] = str(ROOT / "python")
    return env


def _run(argv: list, env: dict, system: str | None, uid: int | None):
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE, "sh",
              system or "-"]
    if uid is not None:
        prefix += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return subprocess.run(prefix + argv, env=env, capture_output=True, text=True, timeout=60,
                          cwd="/")


def both_clients(case_env: dict, explicit: str = "", system: str | None = None,
                 uid: int | None = None, everyone=()):
    """Runs the CLI (`energy [--socket X] status`) then the Python client; returns, for each,
    the names of the fakes it reached, its output, and (Python) what it printed."""
    env = _env(case_env)
    for f in everyone:
        f.hits.clear()
    cli = _run([str(ENERGY)] + (["--socket", explicit] if explicit else []) + ["status"],
               env, system, uid)
    cli_reached = sorted(f.server.name for f in everyone if f.hits)
    for f in everyone:
        f.hits.clear()
    py = _run([sys.executable, "-c", PYTHON_CLIENT, explicit], env, system, uid)
    assert py.returncode == 0, py.stderr
    py_out = json.loads(py.stdout)
    py_reached = sorted(f.server.name for f in everyone if f.hits)
    return cli_reached, cli, py_reached, py_out


@pytest.fixture
def layout(tmp_path, fakes):
    """One fake per step of the search: explicit, $ENERGYD_SOCKET, the system socket (linked
    in by the namespace when a case asks for it), $XDG_RUNTIME_DIR/energyd.sock; and TCP."""
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    f = {name: fakes(name, tmp_path / f"{name}.sock") for name in ("explicit", "env", "system")}
    f["xdg"] = fakes("xdg", xdg / "energyd.sock")
    f["tcp"] = fakes("tcp")
    return f, str(xdg)


CASES = {
    # name: (environment, explicit address, system socket present, expected fake)
    "explicit path beats everything": ({"ENERGYD_SOCKET": "env", "XDG_RUNTIME_DIR": "xdg"},
                                       "explicit", True, "explicit"),
    "explicit unix:PATH": ({"ENERGYD_SOCKET": "env"}, "unix:explicit", True, "explicit"),
    "explicit HOST:PORT": ({"ENERGYD_SOCKET": "env"}, "tcp", True, "tcp"),
    "ENERGYD_SOCKET beats system and user": ({"ENERGYD_SOCKET": "env", "XDG_RUNTIME_DIR": "xdg"},
                                             "", True, "env"),
    "ENERGYD_SOCKET as unix:PATH": ({"ENERGYD_SOCKET": "unix:env"}, "", True, "env"),
    "ENERGYD_SOCKET as HOST:PORT": ({"ENERGYD_SOCKET": "tcp", "XDG_RUNTIME_DIR": "xdg"}, "",
                                    True, "tcp"),
    "empty ENERGYD_SOCKET is ignored": ({"ENERGYD_SOCKET": "", "XDG_RUNTIME_DIR": "xdg"}, "",
                                        True, "system"),
    "system socket beats the user's": ({"XDG_RUNTIME_DIR": "xdg"}, "", True, "system"),
    "no system socket: XDG_RUNTIME_DIR": ({"XDG_RUNTIME_DIR": "xdg"}, "", False, "xdg"),
}


def _resolve(value: str, fakes_by_name: dict, xdg: str) -> str:
    """A case's symbolic address ("env", "unix:env", "tcp", "xdg") as a real one."""
    if value == "xdg":
        return xdg
    prefix, _, name = value.rpartition(":")
    if name in fakes_by_name:
        return (prefix + ":" if prefix else "") + fakes_by_name[name].address
    return value


@pytest.mark.parametrize("case", list(CASES))
def test_cli_and_python_pick_the_same_socket(layout, case):
    f, xdg = layout
    env, explicit, system, expected = CASES[case]
    env = {k: _resolve(v, f, xdg) for k, v in env.items()}
    explicit = _resolve(explicit, f, xdg) if explicit else ""
    cli_reached, cli, py_reached, py = both_clients(
        env, explicit, f["system"].address if system else None, everyone=f.values())
    assert cli_reached == [expected], (cli.stdout, cli.stderr)
    assert py_reached == [expected], py
    assert py["answer"]["fake"] == expected


def test_no_fall_through_when_energyd_socket_is_dead(layout, tmp_path):
    """$ENERGYD_SOCKET names a socket where nothing listens: both report that address and
    neither tries the system or the user's socket, which would answer."""
    f, xdg = layout
    dead = str(tmp_path / "nobody-here.sock")
    cli_reached, cli, py_reached, py = both_clients(
        {"ENERGYD_SOCKET": dead, "XDG_RUNTIME_DIR": xdg}, system=f["system"].address,
        everyone=f.values())
    assert cli_reached == [] and py_reached == []
    assert cli.returncode != 0 and dead in cli.stderr
    assert py["address"] == dead and dead in py["error"]


def test_stale_system_socket_is_still_chosen(layout, tmp_path):
    """A system socket file with no daemon behind it exists, so it is chosen (and reported);
    the user's socket is not tried."""
    f, xdg = layout
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()  # the file stays, nothing listens
    cli_reached, cli, py_reached, py = both_clients({"XDG_RUNTIME_DIR": xdg}, system=stale,
                                                    everyone=f.values())
    assert cli_reached == [] and py_reached == []
    assert cli.returncode != 0 and "/run/energyd/energyd.sock" in cli.stderr
    assert py["address"] == "/run/energyd/energyd.sock" and "error" in py


def test_dangling_system_link_counts_as_absent(layout, tmp_path):
    """/run/energyd/energyd.sock that does not resolve to a file does not exist for access(2)
    nor for Python: the user's socket is used."""
    f, xdg = layout
    cli_reached, cli, py_reached, py = both_clients(
        {"XDG_RUNTIME_DIR": xdg}, system=str(tmp_path / "gone.sock"), everyone=f.values())
    assert cli_reached == ["xdg"] and py_reached == ["xdg"], (cli.stderr, py)


def _unused_uid() -> int:
    uid = 2_000_000_000 + os.getpid() % 100_000
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if not os.path.exists(f"/tmp/energyd-{uid}.sock"):
                return uid
        uid += 1


@pytest.mark.parametrize("xdg_value", [None, ""])
def test_without_xdg_runtime_dir_the_tmp_socket(layout, fakes, xdg_value):
    """XDG_RUNTIME_DIR unset or empty: /tmp/energyd-UID.sock, for the uid that runs the client
    (an unused uid here, so no one else's socket is at that path)."""
    f, _ = layout
    uid = _unused_uid()
    tmp_sock = fakes("tmp", f"/tmp/energyd-{uid}.sock")
    env = {} if xdg_value is None else {"XDG_RUNTIME_DIR": xdg_value}
    cli_reached, cli, py_reached, py = both_clients(env, uid=uid,
                                                    everyone=[*f.values(), tmp_sock])
    assert cli_reached == ["tmp"], (cli.stdout, cli.stderr)
    assert py_reached == ["tmp"] and py["address"] == f"/tmp/energyd-{uid}.sock"


def test_real_energyd_in_the_runtime_dir(tmp_path, start_energyd):
    """A real energyd on $XDG_RUNTIME_DIR/energyd.sock (no $ENERGYD_SOCKET, no system socket in
    the namespace): the CLI shows its status and the Python client gets its info (its pid)."""
    xdg = tmp_path / "run-user"
    xdg.mkdir()
    d = start_energyd(None, "--listen", f"unix:{xdg}/energyd.sock")
    env = _env({"XDG_RUNTIME_DIR": str(xdg)})
    cli = _run([str(ENERGY), "status"], env, None, None)
    assert cli.returncode == 0, cli.stderr
    assert "Host" in cli.stdout or "host" in cli.stdout
    py = _run([sys.executable, "-c", PYTHON_CLIENT, ""], env, None, None)
    out = json.loads(py.stdout)
    assert out["address"] == f"{xdg}/energyd.sock"
    assert out["answer"]["pid"] == d.pid
