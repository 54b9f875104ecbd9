"""The server extension's connections to energyd, on the event loop (no thread per request).

Two things, both bounded and both reconnecting by themselves:

``EnergydPool(address)``
    At most ``SIZE`` persistent HTTP/1.1 connections to energyd, kept open between requests
    (energyd closes one that stays idle past its timeout; the next request then opens another).
    ``await pool.request("GET", "/api/v1/now")`` returns a :class:`transport.Response`, energyd's
    answer as it sent it; a daemon that cannot be reached or breaks off raises
    :class:`EnergydUnavailable`. A request that finds every connection busy waits for one.

``LatestSample(pool)``
    One upstream event stream (``/api/v1/stream``, one ``now`` object per energyd sample), held
    while ``now`` is asked: ``fresh()`` returns energyd's latest sample as its own JSON text when
    that sample is at most ``FRESH_INTERVALS`` sample intervals old, else None (the caller then
    forwards the request). The stream opens at the first ``fresh()`` call, closes after
    ``IDLE_S`` without one, and after a failure is tried again at most once per ``RETRY_S``.

Connections to energyd of one Jupyter server: the pool's ``SIZE``, this stream, and the
browsers' streams (handlers.StreamHandler.STREAMS_MAX): 4 + 1 + 8 = 13, below energyd's 16 per
user (``--connections-per-user``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

from tornado import gen
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError

from . import transport
from .client import EnergydUnavailable

HEAD_MAX_BYTES = 16384


class _Broken(Exception):
    """The connection broke off; ``answered``: energyd had begun to answer."""

    def __init__(self, reason: str, answered: bool):
        super().__init__(reason)
        self.answered = answered


async def open_stream(address: str, timeout_s: float, max_buffer: int = 0) -> IOStream:
    """A connected IOStream to an energyd address (unix socket or TCP)."""
    kind, where, port = transport.parse_address(address)
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
    if kind == "tcp" and ":" in where:
        family = socket.AF_INET6
    stream = IOStream(socket.socket(family, socket.SOCK_STREAM),
                      max_buffer_size=max_buffer or None)
    try:
        await gen.with_timeout(timedelta(seconds=timeout_s),
                               stream.connect(where if kind == "unix" else (where, port)),
                               quiet_exceptions=(StreamClosedError,))
    except BaseException:
        stream.close()
        raise
    if kind == "tcp":
        stream.set_nodelay(True)
    return stream


def _head(raw: bytes) -> Tuple[str, int, HTTPHeaders]:
    line, _, rest = raw.decode("latin-1").partition("\r\n")
    version, status, _ = (line.split(" ", 2) + ["", ""])[:3]
    if not version.startswith("HTTP/") or not status.isdigit():
        raise ValueError(f"energyd sent no HTTP status line: {line[:80]!r}")
    return version, int(status), HTTPHeaders.parse(rest)


async def _read_body(stream: IOStream, headers: HTTPHeaders) -> Tuple[bytes, bool]:
    """The body, at most MAX_RESPONSE_BYTES, and whether the connection may be used again."""
    limit = transport.MAX_RESPONSE_BYTES
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: List[bytes] = []
        size = 0
        while True:
            line = await stream.read_until(b"\r\n", 64)
            n = int(line.split(b";", 1)[0].strip(), 16)
            if n == 0:
                await stream.read_until(b"\r\n", 4096)  # energyd sends no trailer
                return b"".join(parts), True
            size += n
            if size > limit:
                raise ValueError(f"energyd's answer exceeds {limit} bytes")
            parts.append((await stream.read_bytes(n + 2))[:-2])
    if "Content-Length" in headers:
        n = int(headers["Content-Length"])
        if n > limit:
            raise ValueError(f"energyd's answer exceeds {limit} bytes")
        return (await stream.read_bytes(n) if n else b""), True
    return await stream.read_until_close(), False


class EnergydPool:
    SIZE = 4

    def __init__(self, address: str, timeout_s: float = 5.0):
        self.address = address
        self.timeout_s = timeout_s
        self._idle: List[IOStream] = []
        self._slots = asyncio.Semaphore(self.SIZE)
        self.connections_opened = 0  # counts, for the tests and the status
        self.requests = 0

    async def _exchange(self, stream: IOStream, request: bytes) -> Tuple[transport.Response, bool]:
        answered = False
        try:
            await stream.write(request)
            head = await stream.read_until(b"\r\n\r\n", HEAD_MAX_BYTES)
            answered = True
            version, status, headers = _head(head)
            body, reusable = await _read_body(stream, headers)
        except (StreamClosedError, OSError) as exc:
            raise _Broken(str(exc.real_error if isinstance(exc, StreamClosedError)
                              and exc.real_error else exc) or "connection closed", answered)
        keep = (reusable and version == "HTTP/1.1"
                and headers.get("Connection", "").lower() != "close")
        return transport.Response(status, headers.get("Content-Type", ""), body), keep

    async def request(self, method: str, path: str, body: Optional[bytes] = None,
                      headers: Optional[Dict[str, str]] = None) -> transport.Response:
        lines = [f"{method} {path} HTTP/1.1", "Host: energyd", "Accept: application/json"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        self.requests += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout_s)
        except asyncio.TimeoutError:
            raise EnergydUnavailable(self.address, f"all {self.SIZE} connections to energyd "
                                     f"stayed busy for {self.timeout_s:g} s") from None
        try:
            return await self._send(raw)
        finally:
            self._slots.release()

    async def _send(self, raw: bytes) -> transport.Response:
        # A kept connection may have been closed by energyd meanwhile (its idle timeout):
        # then the request goes once more on a new connection, unless energyd had begun
        # to answer it.
        while True:
            stream = self._idle.pop() if self._idle else None
            reused = stream is not None
            try:
                if stream is None:
                    stream = await open_stream(self.address, self.timeout_s)
                    self.connections_opened += 1
                resp, keep = await gen.with_timeout(
                    timedelta(seconds=self.timeout_s), self._exchange(stream, raw),
                    quiet_exceptions=(_Broken,))
            except _Broken as exc:
                stream.close()
                if reused and not exc.answered:
                    continue
                raise EnergydUnavailable(self.address, str(exc)) from exc
            except (OSError, StreamClosedError, gen.TimeoutError, ValueError,
                    UnsatisfiableReadError) as exc:
                if stream is not None:
                    stream.close()
                raise EnergydUnavailable(self.address,
                                         str(exc) or type(exc).__name__) from exc
            if keep and not stream.closed():
                self._idle.append(stream)
            else:
                stream.close()
            return resp

    def close(self) -> None:
        for stream in self._idle:
            stream.close()
        self._idle.clear()


class LatestSample:
    FRESH_INTERVALS = 2.0
    IDLE_S = 30.0
    RETRY_S = 1.0
    STALL_S = 60.0
    EVENT_MAX_BYTES = 1 << 20

    def __init__(self, pool: EnergydPool):
        self.pool = pool
        self.interval_s: Optional[float] = None
        self.streams_opened = 0  # counts, for the tests and the status
        self.served = 0
        self._event: Optional[bytes] = None  # "data: {...}\n\n" as energyd sent it
        self._parsed: Optional[Tuple[bytes, bytes, float]] = None  # (event, JSON, sample time)
        self._task: Optional[asyncio.Task] = None
        self._stream: Optional[IOStream] = None
        self._asked = 0.0
        self._retry_at = 0.0

    def fresh(self) -> Optional[bytes]:
        """energyd's latest sample (its ``now`` JSON) when it is fresh, else None."""
        self._asked = time.monotonic()
        if self._task is None:
            if self._asked >= self._retry_at:
                self._task = asyncio.ensure_future(self._run())
            return None
        event = self._event
        if event is None or self.interval_s is None:
            return None
        if self._parsed is None or self._parsed[0] is not event:
            # Once per event, and only for an event someone asks about.
            body = event[6:-2] if event.startswith(b"data: ") else b""
            try:
                sample_time = float(json.loads(body)["time"])
            except (ValueError, KeyError, TypeError):
                sample_time = float("-inf")
            self._parsed = (event, body, sample_time)
        if time.time() - self._parsed[2] > self.FRESH_INTERVALS * self.interval_s:
            return None
        self.served += 1
        return self._parsed[1]

    async def _run(self) -> None:
        stream = None
        try:
            info = await self.pool.request("GET", "/api/v1/info")
            interval = json.loads(info.body).get("interval_s") if info.status == 200 else None
            if not isinstance(interval, (int, float)) or interval <= 0:
                raise ValueError("energyd's info has no interval_s")
            stream = self._stream = await open_stream(self.pool.address, self.pool.timeout_s,
                                                      2 * self.EVENT_MAX_BYTES)
            self.streams_opened += 1
            await stream.write(b"GET /api/v1/stream HTTP/1.0\r\nHost: energyd\r\n\r\n")
            head = await self._read(stream.read_until(b"\r\n\r\n", HEAD_MAX_BYTES))
            if _head(head)[1] != 200:
                raise ValueError("energyd refused the event stream")
            self.interval_s = float(interval)
            while time.monotonic() - self._asked < self.IDLE_S:
                self._event = await self._read(stream.read_until(b"\n\n",
                                                                 self.EVENT_MAX_BYTES))
            self._retry_at = 0.0
        except Exception:  # any failure: forward until the stream is back
            self._retry_at = time.monotonic() + self.RETRY_S
        finally:
            if stream is not None:
                stream.close()
            self._stream = None
            self._event = None
            self._parsed = None
            self._task = None

    async def _read(self, future: Any) -> bytes:
        return await gen.with_timeout(timedelta(seconds=self.STALL_S), future,
                                      quiet_exceptions=(StreamClosedError,))

    def close(self) -> None:
        self._asked = 0.0
        if self._stream is not None:
            self._stream.close()
