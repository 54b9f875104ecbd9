"""energyd's HTTP serving: a small thread pool in epoll mode, and event streams that hold none of
its threads while they wait for the next tick (docs/api.md, docs/security.md).

A stream that blocked its thread while waiting would, with a pool of N threads, stop every other
connection given to that thread: these tests open more streams than the pool has threads and
check that each stream still receives (nearly) every tick and that other requests are answered
at once.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time

import pytest

from conftest import UnixHTTPConnection

EVENT = re.compile(rb"data: (\{.*?\})\n\n")


def open_stream(path: str) -> socket.socket:
    """A raw event stream over the unix socket. HTTP/1.0: the body is the events themselves
    (no chunk framing), as the Jupyter server extension asks for it."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"GET /api/v1/stream HTTP/1.0\r\nHost: energyd\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    assert b" 200 " in status, head
    s.setblocking(False)
    return s, head.partition(b"\r\n\r\n")[2]


def read_events(streams, seconds: float) -> list[list[dict]]:
    """Read every stream for `seconds`; the events each received, in order."""
    bufs = [rest for _, rest in streams]
    socks = [s for s, _ in streams]
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            i = socks.index(s)
            data = s.recv(65536)
            assert data, f"stream {i} was closed"
            bufs[i] += data
    return [[json.loads(m) for m in EVENT.findall(b)] for b in bufs]


def now_latency(path: str) -> float:
    c = UnixHTTPConnection(path, timeout=20)
    t0 = time.monotonic()
    c.request("GET", "/api/v1/now")
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    return time.monotonic() - t0


@pytest.mark.parametrize("threads", [1, 2])
def test_more_streams_than_threads_each_get_every_tick(start_energyd, threads):
    """With a pool of N threads, 4N + 1 streams at one tick per second: each receives every tick,
    and /now is answered at once meanwhile. A stream that waited for the tick on a pool thread
    would hold it most of each second: /now, given to such a thread, would wait for the tick
    (half a second on average)."""
    d = start_energyd(None, "--http-threads", str(threads), interval="1")
    streams = [open_stream(d.socket) for _ in range(4 * threads + 1)]
    try:
        start = d.get("/api/v1/now")["tick"]
        latencies = []
        events = [[] for _ in streams]
        t_end = time.monotonic() + 4.0
        while time.monotonic() < t_end:
            got = read_events(streams, 0.2)
            streams = [(s, b"") for s, _ in streams]
            for i, e in enumerate(got):
                events[i] += e
            latencies.append(now_latency(d.socket))
        end = d.get("/api/v1/now")["tick"]
        for i, e in enumerate(read_events(streams, 1.2)):  # the tick of `end`, if not yet read
            events[i] += e
    finally:
        for s, _ in streams:
            s.close()
    assert end - start >= 3, (start, end)
    for i, ev in enumerate(events):
        ticks = [e["tick"] for e in ev]
        assert ticks == sorted(set(ticks)), (i, ticks)
        assert set(range(start + 1, end + 1)) <= set(ticks), (i, start, end, ticks)
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.25 and latencies[-1] < 0.9, latencies
    assert d.get("/api/v1/info")["pid"] == d.pid


def test_streams_end_when_energyd_stops(start_energyd):
    """Waiting streams are resumed to end at shutdown (libmicrohttpd must not be stopped with a
    suspended connection): energyd exits cleanly and each stream sees the end."""
    d = start_energyd(None, "--http-threads", "2")
    streams = [open_stream(d.socket) for _ in range(6)]
    read_events(streams, 0.5)
    assert d.stop() == 0, d.log()
    for s, _ in streams:
        s.setblocking(True)
        s.settimeout(10)
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
        s.close()


def test_a_stream_that_is_not_read_is_dropped_by_its_timeout(start_energyd):
    """A client that opens a stream and stops reading: energyd writes until the socket's buffer
    is full, then nothing moves for --request-timeout and the connection is closed; it holds no
    thread meanwhile (another stream keeps its ticks)."""
    d = start_energyd(None, "--request-timeout", "1", "--http-threads", "1", interval="0.01")
    stalled, _ = open_stream(d.socket)
    reader = open_stream(d.socket)
    t0 = time.monotonic()
    got = []
    # Keep one stream read while the other one's buffer fills (a few hundred kB at 100 events
    # per second) and its timeout runs.
    while time.monotonic() - t0 < 60 and not stalled_closed(stalled):
        got += read_events([reader], 0.5)[0]
        reader = (reader[0], b"")
    closed_after = time.monotonic() - t0
    reader[0].close()
    assert stalled_closed(stalled), "the stream that is not read was never dropped"
    tick_at_close = d.get("/api/v1/now")["tick"]
    # What it had been sent before the close: events until its buffer filled, then the end.
    stalled.setblocking(True)
    stalled.settimeout(10)
    data = b""
    while chunk := stalled.recv(1 << 20):
        data += chunk
    stalled.close()
    last = json.loads(EVENT.findall(data)[-1])["tick"]
    # The buffer filled, then nothing was written for at least the timeout (1 s: 100 ticks).
    assert closed_after >= 1.0 and tick_at_close - last >= 50, (closed_after, tick_at_close, last)
    ticks = [e["tick"] for e in got]
    assert len(ticks) >= 50 and ticks == sorted(set(ticks)), ticks[:5]
    assert d.get("/api/v1/info")["pid"] == d.pid


def stalled_closed(s: socket.socket) -> bool:
    """Whether energyd closed s, seen without reading it: the peer's close shows as a hang-up
    even while unread data is queued."""
    p = select.poll()
    p.register(s, select.POLLRDHUP)
    return any(ev & (select.POLLRDHUP | select.POLLHUP) for _, ev in p.poll(0))
