"""The one place that finds energyd and talks to it.

Everything in Python that needs energy figures (the Jupyter server extension, the magics, the
``measure_energy`` API) goes through this module, which sends its requests through
:mod:`jupyter_energy.transport` (HTTP/1.1 over a unix socket or loopback TCP, the standard
library only).

Interface
---------
``find_socket(explicit=None) -> str | None``
    The address libenergy and the ``energy`` CLI would use (``transport.default_address``: the
    search in docs/api.md, "Finding energyd") when energyd answers there, else None.

``EnergydClient(socket_path=None, timeout_s=5.0)``
    ``.get(path, **params) -> dict``, ``.post(path, body) -> dict``, ``.delete(path) -> dict``.
    ``path`` is relative to ``/api/v1/`` (``"now"``, ``"energy"``) or absolute (``"/api/v1/now"``).
    Errors raise :class:`EnergydError` carrying the HTTP status and energyd's JSON body
    (``{"error", "hint"}``); an unreachable daemon raises :class:`EnergydUnavailable` (status 503).

``ensure_energyd(socket_path=None, auto_start=True, energyd_path=None, ...) -> EmbeddedEnergyd | None``
    Returns ``None`` when an energyd already answers; otherwise starts one as the current user
    (embedded mode) and returns its handle (``.socket_path``, ``.stop()``).  The embedded daemon
    keeps its state under ``jupyter_data_dir()/energy`` and dies with the process that started it.

All times are Unix seconds (float), energies joules, powers watts, as in energyd's API.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from . import transport
from .transport import default_address

log = logging.getLogger("jupyter_energy")

API_PREFIX = "/api/v1/"


class EnergydError(Exception):
    """An answer from energyd that is not a success, or no answer at all."""

    def __init__(self, status: int, error: str, hint: str = "", body: Optional[dict] = None):
        super().__init__(f"{status}: {error}" + (f" ({hint})" if hint else ""))
        self.status = status
        self.error = error
        self.hint = hint
        self.body = body if body is not None else {"error": error, "hint": hint}


class EnergydUnavailable(EnergydError):
    """No energyd answers on the socket (not running, wrong path, no permission)."""

    def __init__(self, socket_path: Optional[str], reason: str):
        super().__init__(
            503,
            f"energyd is not reachable at {socket_path or '(no socket found)'}: {reason}",
            "start energyd (or let the Jupyter server start one: "
            "c.EnergyExtensionApp.auto_start = True), or set ENERGYD_SOCKET",
        )
        self.socket_path = socket_path


def api_url(path: str, params: Optional[Dict[str, Any]] = None) -> str:
    """``path`` under ``/api/v1/`` (unless absolute) with the parameters that are not None."""
    url = path if path.startswith("/") else API_PREFIX + path
    query = {k: v for k, v in (params or {}).items() if v is not None}
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return url


def decode_answer(status: int, raw: bytes) -> Any:
    """energyd's JSON answer, or :class:`EnergydError` with its status and body (from 400)."""
    try:
        data = json.loads(raw.decode() or "{}")
    except ValueError:
        data = {"error": raw.decode(errors="replace")[:500], "hint": "energyd sent no JSON"}
    if status >= 400:
        if not isinstance(data, dict):
            data = {"error": str(data)}
        raise EnergydError(status, str(data.get("error", f"HTTP {status}")),
                           str(data.get("hint", "")), data)
    return data


class EnergydClient:
    """A client of one energyd.

    ``socket_path``: an address as :mod:`jupyter_energy.transport` takes it (a unix socket path,
    ``unix:PATH`` or ``HOST:PORT``); None uses the search (docs/api.md, "Finding energyd"), and
    requests to an address where nothing answers raise :class:`EnergydUnavailable` naming it.
    One connection per request: energyd requests are small and rare (a few a second at most),
    and this keeps the client thread-safe.
    """

    def __init__(self, socket_path: Optional[str] = None, timeout_s: float = 5.0):
        self._socket_path = socket_path
        self.timeout_s = timeout_s

    @property
    def socket_path(self) -> Optional[str]:
        if self._socket_path is None:
            self._socket_path = default_address()
        return self._socket_path

    def request(self, method: str, path: str, params: Optional[Dict[str, Any]] = None,
                body: Optional[Any] = None) -> dict:
        """Send one request; return the decoded JSON answer or raise :class:`EnergydError`."""
        sock_path = self.socket_path
        url = api_url(path, params)
        payload = None
        headers = {"Accept": "application/json"}
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            status, _, raw = transport.request(sock_path, method, url, payload, headers,
                                               self.timeout_s)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise EnergydUnavailable(sock_path, str(exc) or type(exc).__name__) from exc
        return decode_answer(status, raw)

    def get(self, path: str, **params: Any) -> dict:
        return self.request("GET", path, params)

    def post(self, path: str, body: Any = None, **params: Any) -> dict:
        return self.request("POST", path, params, body if body is not None else {})

    def delete(self, path: str, **params: Any) -> dict:
        return self.request("DELETE", path, params)

    def ping(self) -> bool:
        """True if energyd answers ``/api/v1/info``."""
        try:
            self.get("info")
            return True
        except EnergydError:
            return False


def _answers(address: str, timeout_s: float = 1.0) -> bool:
    if not address:
        return False
    try:
        kind, where, _ = transport.parse_address(address)
    except ValueError:
        return False
    if kind == "unix" and not os.path.exists(where):
        return False
    return EnergydClient(address, timeout_s).ping()


def find_socket(explicit: Optional[str] = None) -> Optional[str]:
    """The address the search picks for ``explicit`` when energyd answers there, else None."""
    address = default_address(explicit)
    return address if _answers(address) else None


def embedded_state_dir() -> Path:
    """Where an embedded energyd keeps its state: ``jupyter_data_dir()/energy``."""
    try:
        from jupyter_core.paths import jupyter_data_dir
        base = Path(jupyter_data_dir())
    except ImportError:  # used outside Jupyter (plain Python API)
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "jupyter"
    return base / "energy"


def embedded_socket_path(state_dir: Optional[Path] = None) -> str:
    path = str((state_dir or embedded_state_dir()) / "energyd.sock")
    # sun_path holds 108 bytes; deep temporary directories can exceed it.
    if len(path.encode()) > 100:
        path = f"/tmp/energyd-{os.getuid()}-{abs(hash(path)) % 10**8}.sock"
    return path


def find_energyd_binary(explicit: Optional[str] = None, name: str = "energyd") -> Optional[str]:
    """``explicit``, then the binary shipped in this package (``jupyter_energy/bin``), then PATH."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    bundled = Path(__file__).parent / "bin" / name
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return shutil.which(name)


class EmbeddedEnergyd:
    """An energyd started by this process as the current user.

    ``proc`` is the small guard process (``jupyter_energy._reaper``) whose child is energyd; it
    stops energyd when this process dies, however it dies. ``pid`` is energyd's own pid.
    """

    def __init__(self, proc: subprocess.Popen, socket_path: str, state_dir: Path, log_path: Path):
        self.proc = proc
        self.socket_path = socket_path
        self.state_dir = state_dir
        self.log_path = log_path
        self.pid: Optional[int] = None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        log.info("embedded energyd stopped (exit %s)", self.proc.returncode)

    def log_tail(self, n_bytes: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n_bytes:].decode(errors="replace")
        except OSError:
            return ""


def start_energyd(socket_path: Optional[str] = None, energyd_path: Optional[str] = None,
                  interval_s: float = 0.1, state_dir: Optional[Path] = None,
                  extra_args: Sequence[str] = (), wait_s: float = 10.0) -> EmbeddedEnergyd:
    """Start energyd as the current user, listening on ``socket_path``; wait until it answers."""
    binary = find_energyd_binary(energyd_path)
    if not binary:
        raise EnergydError(
            503, "energyd binary not found (looked in the jupyter_energy package, then PATH)",
            "reinstall jupyter_energy from the repository (pip install .) so the build hook "
            "compiles energyd, or set c.EnergyExtensionApp.energyd_path")
    state = Path(state_dir) if state_dir else embedded_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    sock = socket_path or embedded_socket_path(state)
    kind, where, _ = transport.parse_address(sock)
    if kind == "unix":
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(where) and not _answers(sock):
            os.unlink(where)  # stale socket of a daemon that died
    args = [binary, "--listen", f"unix:{where}" if kind == "unix" else sock,
            "--interval", f"{interval_s:g}"]
    if os.geteuid() != 0:
        args += ["--state-dir", str(state)]
    else:
        # Started as root, energyd drops to an unprivileged account and refuses to start when
        # that account cannot open its record: let energyd create the record's directory (it
        # gives it to that account), inside ours. It opens the record from inside that
        # directory, so the account needs no access to the parents (root's home); the system
        # service's /var/lib/energyd stays the service's.
        args += ["--state-dir", str(state / "record")]
    args += list(extra_args)
    log_path = state / "energyd.log"
    env = dict(os.environ)
    lib_dir = str(Path(binary).parent)
    env["LD_LIBRARY_PATH"] = lib_dir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    guard = [sys.executable, "-m", "jupyter_energy._reaper", str(os.getpid())]
    with open(log_path, "ab") as log_file:
        # A session of its own: a Ctrl+C in the server's terminal or a kill of the server's
        # process group reaches the server, which then stops energyd in order.
        proc = subprocess.Popen(guard + args, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=log_file, env=env, close_fds=True, start_new_session=True)
    handle = EmbeddedEnergyd(proc, sock, state, log_path)
    atexit.register(handle.stop)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EnergydError(503, f"embedded energyd exited with status {proc.returncode}",
                               f"its log ({log_path}) ends with: {handle.log_tail(600)}")
        if _answers(sock, 0.5):
            handle.pid = EnergydClient(sock).get("info").get("pid")
            log.info("embedded energyd %s answers on %s (pid %s)", binary, sock, handle.pid)
            return handle
        time.sleep(0.05)
    handle.stop()
    raise EnergydError(503, f"embedded energyd did not answer on {sock} within {wait_s:g} s",
                       f"see {log_path}")


def ensure_energyd(socket_path: Optional[str] = None, auto_start: bool = True,
                   energyd_path: Optional[str] = None, interval_s: float = 0.1,
                   state_dir: Optional[Path] = None,
                   extra_args: Sequence[str] = ()) -> Optional[EmbeddedEnergyd]:
    """Make sure an energyd answers.

    With ``socket_path`` given, only that socket counts (and an embedded daemon listens there);
    otherwise the CLI's discovery order is used and an embedded daemon listens under the Jupyter
    data directory.  Returns ``None`` if a daemon already answers, the embedded handle if one was
    started; raises :class:`EnergydUnavailable` if none answers and ``auto_start`` is false.
    """
    if socket_path:
        if _answers(socket_path):
            return None
    elif find_socket() or _answers(embedded_socket_path(Path(state_dir) if state_dir else None)):
        return None
    if not auto_start:
        raise EnergydUnavailable(socket_path, "no energyd answers and auto_start is off")
    return start_energyd(socket_path, energyd_path, interval_s, state_dir, extra_args)


def resolve_socket(socket_path: Optional[str] = None,
                   state_dir: Optional[Path] = None) -> Optional[str]:
    """The socket to use: explicit, discovered, else the embedded one if it answers."""
    if socket_path:
        return socket_path
    found = find_socket()
    if found:
        return found
    emb = embedded_socket_path(Path(state_dir) if state_dir else None)
    return emb if _answers(emb) else None


if __name__ == "__main__":  # tiny manual check: python -m jupyter_energy.client now
    print(json.dumps(EnergydClient(resolve_socket()).get(sys.argv[1] if len(sys.argv) > 1 else "info"), indent=2))
