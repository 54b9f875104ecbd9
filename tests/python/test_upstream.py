"""The server extension's connections to energyd (jupyter_energy.upstream).

Against a small scripted HTTP server on a unix socket, which counts its connections and answers
what each test tells it (keep-alive, chunked, a closed idle connection, an event stream with
chosen sample times), and through Jupyter against the real energyd.
"""

import asyncio
import json
import time

import pytest

from jupyter_energy.client import EnergydUnavailable
from jupyter_energy.upstream import EnergydPool, LatestSample


class Scripted:
    """A unix-socket HTTP server: ``answers[path]`` is a function of the request count giving
    the raw bytes to send back (or None: send nothing and keep the connection)."""

    def __init__(self, path):
        self.path = path
        self.connections = 0
        self.requests = []
        self.answers = {}
        self.writers = []
        self.server = None

    async def start(self):
        self.server = await asyncio.start_unix_server(self._serve, self.path)
        return self

    async def _serve(self, reader, writer):
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                self.requests.append(path)
                answer = self.answers[path.split("?")[0]](len(self.requests))
                if answer is None:
                    continue
                if callable(answer):  # a stream: the test writes to it
                    await answer(reader, writer)
                    return
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def drop_connections(self):
        for w in self.writers:
            w.close()
        self.writers.clear()

    async def stop(self):
        self.drop_connections()
        self.server.close()
        await self.server.wait_closed()


def json_answer(obj, status="200 OK", extra=""):
    body = json.dumps(obj).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def scripted_test(test):
    """Runs the test with a started Scripted server (pytest-jupyter has no async fixtures)."""
    async def run(tmp_path):
        s = await Scripted(str(tmp_path / "s.sock")).start()
        try:
            await test(s, tmp_path)
        finally:
            await s.stop()
    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@scripted_test
async def test_pool_keeps_one_connection_for_requests_in_turn(scripted, tmp_path):
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"n": n})
    pool = EnergydPool(scripted.path)
    for i in range(1, 6):
        resp = await pool.request("GET", "/api/v1/info")
        assert (resp.status, json.loads(resp.body)) == (200, {"n": i})
    assert scripted.connections == pool.connections_opened == 1
    pool.close()


@scripted_test
async def test_pool_is_bounded_and_requests_wait_for_a_connection(scripted, tmp_path):
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"n": n})
    pool = EnergydPool(scripted.path)
    answers = await asyncio.gather(*(pool.request("GET", "/api/v1/info") for _ in range(20)))
    assert sorted(json.loads(a.body)["n"] for a in answers) == list(range(1, 21))
    assert scripted.connections <= EnergydPool.SIZE
    pool.close()


@scripted_test
async def test_pool_decodes_chunked_answers_and_passes_errors_through(scripted, tmp_path):
    body = json.dumps({"error": "bad from", "hint": "Unix seconds"}).encode()
    chunked = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7)) + b"0\r\n\r\n")
    scripted.answers["/api/v1/energy"] = lambda n: chunked
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"ok": True})
    pool = EnergydPool(scripted.path)
    resp = await pool.request("GET", "/api/v1/energy?from=x")
    assert (resp.status, resp.body) == (400, body)
    assert json.loads((await pool.request("GET", "/api/v1/info")).body) == {"ok": True}
    assert scripted.connections == 1  # the chunked answer's end was found: kept
    assert scripted.requests == ["/api/v1/energy?from=x", "/api/v1/info"]
    pool.close()


@scripted_test
async def test_pool_reconnects_when_energyd_closed_an_idle_connection(scripted, tmp_path):
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"n": n})
    pool = EnergydPool(scripted.path)
    await pool.request("GET", "/api/v1/info")
    scripted.drop_connections()  # energyd's idle timeout, or a restart
    await asyncio.sleep(0.05)
    resp = await pool.request("GET", "/api/v1/info")
    assert json.loads(resp.body) == {"n": 2}
    assert scripted.connections == 2
    # A connection whose answer said Connection: close is not used again: the kept one
    # answers once, then each request has a new one.
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"n": n},
                                                             extra="Connection: close\r\n")
    for _ in range(3):
        await pool.request("GET", "/api/v1/info")
    assert scripted.connections == 4
    pool.close()


@scripted_test
async def test_pool_gives_up_after_its_timeout_and_when_nothing_listens(scripted, tmp_path):
    scripted.answers["/api/v1/now"] = lambda n: None  # never answers
    pool = EnergydPool(scripted.path, timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(EnergydUnavailable) as info:
        await pool.request("GET", "/api/v1/now")
    assert 0.4 < time.monotonic() - t0 < 3.0
    assert info.value.status == 503 and scripted.path in info.value.error
    # More requests than connections: each still ends within its timeouts (a slot, then energyd).
    t0 = time.monotonic()
    failed = await asyncio.gather(*(pool.request("GET", "/api/v1/now")
                                    for _ in range(EnergydPool.SIZE + 2)), return_exceptions=True)
    assert all(isinstance(f, EnergydUnavailable) for f in failed), failed
    assert time.monotonic() - t0 < 4.0
    with pytest.raises(EnergydUnavailable):
        await EnergydPool(str(tmp_path / "nothing.sock")).request("GET", "/api/v1/now")
    pool.close()


class Events:
    """The scripted server's event stream: the test sends samples with chosen times."""

    def __init__(self):
        self.writer = None
        self.opened = asyncio.Event()

    async def __call__(self, reader, writer):
        self.reader = reader
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        self.writer = writer
        self.opened.set()
        while not writer.is_closing():
            await asyncio.sleep(0.02)

    async def send(self, sample, latest):
        event = b"data: " + json.dumps(sample).encode() + b"\n\n"
        self.writer.write(event)
        await self.writer.drain()
        await until(lambda: latest._event == event)  # read by the client


async def until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


@scripted_test
async def test_latest_sample_is_served_only_while_fresh(scripted, tmp_path):
    events = Events()
    # A 1 s interval: the ages below are far from the 2 s bound, whatever the machine's load.
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"interval_s": 1.0})
    scripted.answers["/api/v1/stream"] = lambda n: events
    latest = LatestSample(EnergydPool(scripted.path))
    assert latest.fresh() is None  # the stream opens now; the caller forwards meanwhile
    await asyncio.wait_for(events.opened.wait(), 5)
    assert latest.fresh() is None  # no sample yet
    sample = {"time": time.time(), "host": {"watts": 12.5}, "tick": 7}
    await events.send(sample, latest)
    assert json.loads(latest.fresh()) == sample  # energyd's JSON as it came
    # At most FRESH_INTERVALS (2) sample intervals old: 1 s is served, 3 s is not.
    await events.send({**sample, "time": time.time() - 1.0, "tick": 8}, latest)
    assert json.loads(latest.fresh())["tick"] == 8
    await events.send({**sample, "time": time.time() - 3.0, "tick": 9}, latest)
    assert latest.fresh() is None
    # A sample goes stale as time passes, too.
    await events.send({**sample, "time": time.time() - 1.7, "tick": 10}, latest)
    assert json.loads(latest.fresh())["tick"] == 10
    await asyncio.sleep(0.4)
    assert latest.fresh() is None
    assert latest.served == 3
    assert latest.streams_opened == 1 and scripted.connections == 2  # info + the stream
    latest.close()
    latest.pool.close()
    await until(lambda: latest._task is None)


@scripted_test
async def test_latest_sample_stream_closes_when_idle_and_retries_after_failing(scripted,
                                                                              tmp_path):
    events = Events()
    scripted.answers["/api/v1/info"] = lambda n: json_answer({"interval_s": 0.1})
    scripted.answers["/api/v1/stream"] = lambda n: events
    latest = LatestSample(EnergydPool(scripted.path))
    latest.IDLE_S = 0.3
    latest.fresh()
    await asyncio.wait_for(events.opened.wait(), 5)
    await events.send({"time": time.time()}, latest)
    assert latest.fresh() is not None
    # Nobody asks: closed at the first event past IDLE_S.
    await asyncio.sleep(0.4)
    events.writer.write(b"data: {}\n\n")
    await until(lambda: latest._task is None)
    await until(lambda: events.reader.at_eof())  # the client closed its end
    # energyd refuses the stream: forwarded meanwhile, tried again at most once per RETRY_S.
    scripted.answers["/api/v1/stream"] = lambda n: json_answer({"error": "no"}, "503 No")
    latest.RETRY_S = 0.5
    assert latest.fresh() is None
    await until(lambda: latest._task is None)
    refused = scripted.requests.count("/api/v1/stream")
    for _ in range(10):
        assert latest.fresh() is None
        await asyncio.sleep(0.02)
    assert scripted.requests.count("/api/v1/stream") == refused
    await asyncio.sleep(0.5)
    latest.fresh()
    await until(lambda: scripted.requests.count("/api/v1/stream") == refused + 1)
    latest.close()
    latest.pool.close()
    await until(lambda: latest._task is None)
