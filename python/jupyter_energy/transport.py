"""How Python reaches energyd: the socket search, and HTTP/1.1 over a unix socket or loopback TCP.

Every request of the package (client, meter, magics, server extension, hub service) goes
through this module. It uses the standard library only and imports nothing else of the
package, so that the test helpers load this file on its own.

The search is libenergy's (``energy_client_open`` in src/lib/client.c), step for step; the one
description of it for users is docs/api.md, "Finding energyd":

1. the address given explicitly (``--socket``, ``EnergydClient(socket_path)``, the extension's
   ``socket_path``);
2. ``$ENERGYD_SOCKET`` when set and not empty;
3. ``/run/energyd/energyd.sock`` when that file exists;
4. else the user's socket: ``$XDG_RUNTIME_DIR/energyd.sock`` when ``XDG_RUNTIME_DIR`` is set
   and not empty, else ``/tmp/energyd-UID.sock``.

The first step that gives an address decides; nothing is probed and nothing falls through to a
later step when no daemon answers there (the caller then reports that address).

An address is ``unix:PATH``, a path starting with ``/`` or ``.``, or ``HOST:PORT`` (split at the
last colon) for TCP.
"""

from __future__ import annotations

import http.client
import os
import socket
from typing import Dict, NamedTuple, Optional, Tuple

SYSTEM_SOCKET = "/run/energyd/energyd.sock"
#: Seconds to wait for a connection and for each read (libenergy waits 10 s per read).
DEFAULT_TIMEOUT_S = 10.0
#: The largest answer read (libenergy's CLIENT_MAX_RESPONSE).
MAX_RESPONSE_BYTES = 64 << 20


def user_socket_path() -> str:
    """The per-user socket: ``$XDG_RUNTIME_DIR/energyd.sock``, else ``/tmp/energyd-UID.sock``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return f"{xdg}/energyd.sock"
    return f"/tmp/energyd-{os.getuid()}.sock"


def default_address(explicit: Optional[str] = None) -> str:
    """The address libenergy connects to for ``explicit`` (None or empty: the search)."""
    if explicit:
        return explicit
    env = os.environ.get("ENERGYD_SOCKET")
    if env:
        return env
    if os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return user_socket_path()


def parse_address(address: str) -> Tuple[str, str, int]:
    """``("unix", path, 0)`` or ``("tcp", host, port)``; ValueError when it is neither."""
    if address.startswith("unix:"):
        return "unix", address[5:], 0
    if address.startswith(("/", ".")):
        return "unix", address, 0
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad energyd address {address!r}: expected unix:PATH, a path, "
                         "or HOST:PORT")
    return "tcp", host, int(port)


class Connection(http.client.HTTPConnection):
    """An ``http.client`` connection to an energyd address (unix socket or TCP).

    For the JSON endpoints use :func:`request`; a caller that reads an answer as it comes (the
    event stream) opens one of these and reads the response incrementally."""

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT_S):
        self.kind, where, port = parse_address(address)
        super().__init__(where if self.kind == "tcp" else "energyd",
                         port if self.kind == "tcp" else None, timeout=timeout)
        self.address = address
        self.unix_path = where if self.kind == "unix" else None

    def connect(self) -> None:
        if self.kind == "tcp":
            super().connect()
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes


def request(address: str, method: str, path: str, body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Response:
    """One request on its own connection; the whole answer, at most MAX_RESPONSE_BYTES.

    Raises OSError or http.client.HTTPException when energyd cannot be reached or breaks off,
    ValueError for a malformed address or an answer over the limit."""
    conn = Connection(address, timeout_s)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read(MAX_RESPONSE_BYTES + 1)
        if len(data) > MAX_RESPONSE_BYTES:
            raise ValueError(f"energyd's answer to {path} exceeds {MAX_RESPONSE_BYTES} bytes")
        return Response(resp.status, resp.getheader("Content-Type", ""), data)
    finally:
        conn.close()
