"""HTTP handlers under ``/api/energy/v1/``: thin forwarders to energyd.

They compute nothing energyd already knows.  Errors from energyd are passed through with their
status and JSON body (``{"error", "hint"}``); an unreachable energyd is a 503 with the same shape.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from typing import Any, Dict, Optional, Tuple

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import gen, web
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError

from .client import EnergydError, EnergydUnavailable, api_url, decode_answer
from .users import foreign_scope, user_energy_query, user_share

# Read-only energyd endpoints the front end may use, forwarded as they are.
FORWARDED = ("info", "sources", "now", "history", "energy", "runs", "longterm", "carbon",
             "processes")


class EnergyHandler(APIHandler):
    @property
    def energy(self) -> Any:
        return self.settings["jupyter_energy"]

    def write_json(self, data: Dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def write_energyd_error(self, exc: EnergydError) -> None:
        body = dict(exc.body) if isinstance(exc.body, dict) else {}
        body.setdefault("error", exc.error)
        body.setdefault("hint", exc.hint)
        self.write_json(body, exc.status if 400 <= exc.status < 600 else 502)

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # The client is blocking (a unix-socket round trip of a millisecond or so); keep it off
        # the event loop anyway so a stuck daemon cannot freeze the server.
        return await IOLoop.current().run_in_executor(None, lambda: fn(*args, **kwargs))

    async def energyd_get(self, endpoint: str, params: Dict[str, str]) -> bytes:
        """energyd's answer (its JSON text) through the kept connections, or EnergydError
        with energyd's status and body."""
        answer = await self.energy.pool().request("GET", api_url(endpoint, params))
        if answer.status >= 400:
            decode_answer(answer.status, answer.body)
        return answer.body

    def query(self) -> Dict[str, str]:
        # ``token`` is Jupyter's own (authentication), never passed on to energyd.
        return {k: self.get_argument(k) for k in self.request.arguments if k != "token"}

    def interval(self, default_s: float) -> Optional[Tuple[float, float]]:
        """``from`` and ``to`` (Unix seconds; defaults: now and ``to`` − default_s), or None
        after answering 400."""
        params = self.query()
        try:
            t1 = float(params.get("to", time.time()))
            t0 = float(params.get("from", t1 - default_s))
        except ValueError:
            self.write_json({"error": "from and to must be Unix seconds",
                             "hint": "e.g. ?from=1700000000.5&to=1700000002.25"}, 400)
            return None
        return t0, t1


class ForwardHandler(EnergyHandler):
    """energyd's read-only endpoints.  On a server that does not run as root (a single-user
    server of a hub, a user's JupyterLab on a shared machine), unless the administrator set
    ``others_visible``: ``processes`` lists only the server user's processes, and a ``scope`` of
    another user (their uid, pid, kernel watch, or any cgroup) is refused with 403."""

    @web.authenticated
    async def get(self, endpoint: str) -> None:
        params = self.query()
        if not self.energy.sees_others:
            if endpoint == "processes":
                params["user"] = str(self.energy.uid)
            scope = params.get("scope")
            if scope:
                why = await self.call(foreign_scope, self.energy.client(), scope,
                                      self.energy.uid)
                if why:
                    self.write_json({"error": why, "hint": "set c.EnergyExtensionApp."
                                     "others_visible = True to show every user's figures"}, 403)
                    return
        try:
            # ``now`` without parameters: energyd's latest sample from the shared event
            # stream while that sample is fresh (upstream.LatestSample), else forwarded.
            body = self.energy.latest_sample() if endpoint == "now" and not params else None
            if body is None:
                body = await self.energyd_get(endpoint, params)
        except EnergydError as exc:
            self.write_energyd_error(exc)
            return
        # energyd's JSON as it sent it: nothing to decode and encode again.
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


class StatusHandler(EnergyHandler):
    """What the extension itself knows: where energyd is, whether it is embedded, when this
    Jupyter server started (the front end's "since the server started" figures)."""

    @web.authenticated
    async def get(self) -> None:
        self.write_json(self.energy.status())


class YouHandler(EnergyHandler):
    """The server user's share ("you": ``user:UID``, every process of the uid this server runs
    as) beside the machine's total over the same interval; default interval: since this server
    started."""

    @web.authenticated
    async def get(self) -> None:
        span = self.interval(time.time() - self.energy.started_at)
        if span is None:
            return
        uid = self.energy.uid
        try:
            answer = await self.energyd_get("energy", user_energy_query(uid, *span))
        except EnergydError as exc:
            self.write_energyd_error(exc)
            return
        data = user_share(decode_answer(200, answer), uid)
        data["you"] = data.pop("user")
        self.write_json(data)


class StreamHandler(EnergyHandler):
    """energyd's Server-Sent Events (``/api/v1/stream``: one ``now`` object per tick) relayed
    as they come.  One energyd connection per browser stream, closed when the browser goes.
    Bounded: at most STREAMS_MAX streams at once per Jupyter server (energyd limits the
    connections of a user), an event of at most EVENT_MAX_BYTES, and STALL_S without one ends
    the stream (the browser reconnects)."""

    STREAMS_MAX = 8
    EVENT_MAX_BYTES = 1 << 20
    STALL_S = 60.0  # far above energyd's sample interval (0.1 s by default)
    streams_open = 0
    upstream: Optional[IOStream] = None
    browser_gone = False

    async def _read(self, read: Any) -> bytes:
        return await gen.with_timeout(timedelta(seconds=self.STALL_S), read,
                                      quiet_exceptions=(StreamClosedError,))

    @web.authenticated
    async def get(self) -> None:
        if StreamHandler.streams_open >= self.STREAMS_MAX:
            self.write_json({"error": f"{self.STREAMS_MAX} energy streams are open on this "
                             "Jupyter server already", "hint": "close other tabs"}, 429)
            return
        StreamHandler.streams_open += 1
        path = None
        try:
            path = (await self.call(self.energy.client)).socket_path
            self.upstream = IOStream(socket.socket(socket.AF_UNIX),
                                     max_buffer_size=2 * self.EVENT_MAX_BYTES)
            await self._read(self.upstream.connect(path))
            await self.upstream.write(b"GET /api/v1/stream HTTP/1.0\r\nHost: energyd\r\n\r\n")
            head = await self._read(self.upstream.read_until(b"\r\n\r\n", 16384))
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                body = await self._read(self.upstream.read_until_close())
                self.write_json(json.loads(body or b"{}"), status)
                return
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-store")
            while True:
                self.write(await self._read(
                    self.upstream.read_until(b"\n\n", self.EVENT_MAX_BYTES)))
                await self.flush()
        except EnergydError as exc:
            self.write_energyd_error(exc)
        except (OSError, StreamClosedError, UnsatisfiableReadError, gen.TimeoutError,
                ValueError, IndexError) as exc:
            if not self._headers_written and not self.browser_gone:
                self.write_energyd_error(EnergydUnavailable(path, str(exc) or type(exc).__name__))
        finally:
            StreamHandler.streams_open -= 1
            if self.upstream:
                self.upstream.close()

    def on_connection_close(self) -> None:
        # The browser went: end energyd's connection too (the pending read then fails).
        self.browser_gone = True
        if self.upstream:
            self.upstream.close()


class KernelEnergyHandler(EnergyHandler):
    @web.authenticated
    async def get(self, kernel_id: str) -> None:
        km = self.kernel_manager
        if kernel_id not in km:
            self.write_json({"error": f"no kernel {kernel_id} on this Jupyter server",
                             "hint": "list kernels with GET /api/kernels"}, 404)
            return
        span = self.interval(10.0)
        if span is None:
            return
        t0, t1 = span
        try:
            data = await self.call(self.energy.kernel_energy, kernel_id, t0, t1)
        except EnergydError as exc:
            self.write_energyd_error(exc)
            return
        self.write_json(data)


def setup_handlers(web_app: Any, base_url: str) -> list:
    prefix = url_path_join(base_url, "api", "energy", "v1")
    return [
        (url_path_join(prefix, "status"), StatusHandler),
        (url_path_join(prefix, "you"), YouHandler),
        (url_path_join(prefix, "stream"), StreamHandler),
        (url_path_join(prefix, r"kernels/([^/]+)/energy"), KernelEnergyHandler),
        (url_path_join(prefix, "(" + "|".join(FORWARDED) + ")"), ForwardHandler),
    ]
