"""The Jupyter server extension: finds (or starts) energyd, forwards its API, tracks kernels.

Configuration (``jupyter_server_config.py`` or the command line), all optional::

    c.EnergyExtensionApp.socket_path = "/run/energyd/energyd.sock"  # default: discovery
    c.EnergyExtensionApp.auto_start = True        # start an embedded energyd if none answers
    c.EnergyExtensionApp.energyd_path = ""        # default: the packaged binary, then PATH
    c.EnergyExtensionApp.interval_s = 0.1         # sample interval of an embedded energyd
    c.EnergyExtensionApp.energyd_args = []        # extra arguments for an embedded energyd
    c.EnergyExtensionApp.others_visible = False   # non-root servers: other users' processes
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, List, Unicode

from . import client as energy_client
from .client import EmbeddedEnergyd, EnergydClient, EnergydError, EnergydUnavailable
from .handlers import setup_handlers
from .kernels import KernelWatches
from .upstream import EnergydPool, LatestSample


class EnergyExtensionApp(ExtensionApp):
    name = "jupyter_energy"
    load_other_extensions = True

    socket_path = Unicode(
        "", config=True,
        help="energyd's address (a unix socket path, unix:PATH or HOST:PORT). Empty: the "
             "search of every client (docs/api.md, 'Finding energyd': $ENERGYD_SOCKET, "
             "/run/energyd/energyd.sock when it exists, else $XDG_RUNTIME_DIR/energyd.sock or "
             "/tmp/energyd-<uid>.sock), then the embedded daemon's socket under the Jupyter "
             "data directory. An embedded energyd listens here when this is set and nothing "
             "answers.")
    auto_start = Bool(
        True, config=True,
        help="Start an energyd as the current user (embedded mode) when none answers; it is "
             "stopped with the server.")
    energyd_path = Unicode(
        "", config=True,
        help="energyd binary for embedded mode. Empty: the one installed with this package "
             "(jupyter_energy/bin/energyd), then PATH.")
    interval_s = Float(0.1, config=True, help="Sample interval of an embedded energyd, seconds.")
    energyd_args = List(Unicode(), config=True,
                        help="Extra command-line arguments for an embedded energyd "
                             "(e.g. ['--sysfs-root', '/path/to/fake/sys']).")
    state_dir = Unicode("", config=True,
                        help="State directory of an embedded energyd. Empty: "
                             "jupyter_data_dir()/energy.")
    watch_sync_s = Float(2.0, config=True,
                         help="How often kernels are matched with energyd watches, seconds.")
    others_visible = Bool(
        False, config=True,
        help="Whether a Jupyter server that does not run as root shows other users' processes "
             "and scopes: False (the default, for shared machines and JupyterHub) filters "
             "/api/energy/v1/processes to the server user's own processes and refuses scopes "
             "of other users; True forwards the machine-wide ranking as energyd gives it. A "
             "server running as root always sees everything.")

    embedded: Optional[EmbeddedEnergyd] = None
    started_at: float = 0.0
    startup_error: Optional[str] = None
    _restart_at: float = -1e9
    _restart_lock = threading.Lock()
    _pool: Optional[EnergydPool] = None
    _latest: Optional[LatestSample] = None

    def _state_dir(self) -> Optional[Path]:
        return Path(self.state_dir) if self.state_dir else None

    def initialize_settings(self) -> None:
        self.started_at = time.time()
        self.watches = KernelWatches(self.client, self.serverapp.kernel_manager, self.log)
        try:
            self.embedded = energy_client.ensure_energyd(
                self.socket_path or None, self.auto_start, self.energyd_path or None,
                self.interval_s, self._state_dir(), self.energyd_args)
        except EnergydError as exc:
            self.startup_error = str(exc)
            self.log.warning("jupyter_energy: %s", exc)
        if self.embedded:
            self.log.info("jupyter_energy: started embedded energyd on %s (log %s)",
                          self.embedded.socket_path, self.embedded.log_path)
        self._socket = self.embedded.socket_path if self.embedded else (
            energy_client.resolve_socket(self.socket_path or None, self._state_dir()))
        if self._socket:
            self.log.info("jupyter_energy: using energyd on %s", self._socket)
            # Kernels inherit the server's environment: the magics and measure_energy in them
            # then use this same energyd instead of looking for (or starting) another.
            os.environ["ENERGYD_SOCKET"] = self._socket
        self.settings.update({"jupyter_energy": self})
        self._sync_cb = PeriodicCallback(self._sync_watches, self.watch_sync_s * 1000)
        self._sync_cb.start()

    def initialize_handlers(self) -> None:
        self.handlers.extend(setup_handlers(None, "/"))

    def _restart_embedded_if_dead(self) -> None:
        # The embedded daemon is ours: if it died (crash, OOM kill), start it again, at most
        # once every 10 s so that a daemon that cannot start does not slow every request.
        emb = self.embedded
        if emb is None or emb.running:
            return
        with self._restart_lock:  # requests run in executor threads
            if self.embedded is not emb or time.monotonic() - self._restart_at < 10.0:
                return
            self._restart_at = time.monotonic()
            self._restart(emb)

    def _restart(self, emb: EmbeddedEnergyd) -> None:
        self.log.warning("jupyter_energy: embedded energyd exited (status %s), restarting; "
                         "its log: %s", emb.proc.returncode, emb.log_path)
        try:
            self.embedded = energy_client.start_energyd(
                emb.socket_path, self.energyd_path or None, self.interval_s, emb.state_dir,
                self.energyd_args)
        except EnergydError as exc:
            self.startup_error = str(exc)
            self.log.warning("jupyter_energy: %s", exc)

    def address(self) -> str:
        """energyd's address, or :class:`EnergydUnavailable` when none is known."""
        self._restart_embedded_if_dead()
        if not self._socket:
            # energyd may have come up since the server started (a system daemon).
            self._socket = energy_client.resolve_socket(self.socket_path or None,
                                                        self._state_dir())
        if not self._socket:
            raise EnergydUnavailable(None, self.startup_error or "no energyd answers")
        return self._socket

    def client(self) -> EnergydClient:
        """A blocking client (for work done in a thread: watch syncs, kernel energy)."""
        return EnergydClient(self.address())

    def pool(self) -> EnergydPool:
        """The persistent connections the handlers forward through (on the event loop)."""
        address = self.address()
        if self._pool is None or self._pool.address != address:
            self._close_upstream()
            self._pool = EnergydPool(address)
            self._latest = LatestSample(self._pool)
        return self._pool

    def latest_sample(self) -> Optional[bytes]:
        """energyd's latest sample (``now``) from the shared event stream when fresh, else None."""
        self.pool()
        return self._latest.fresh() if self._latest else None

    def _close_upstream(self) -> None:
        if self._latest is not None:
            self._latest.close()
        if self._pool is not None:
            self._pool.close()
        self._pool = self._latest = None

    async def _sync_watches(self) -> None:
        from tornado.ioloop import IOLoop
        try:
            await IOLoop.current().run_in_executor(None, self.watches.sync)
        except Exception as exc:  # a failed sync must never stop the periodic callback
            self.log.debug("jupyter_energy: watch sync failed: %s", exc)

    @property
    def uid(self) -> int:
        """The user this Jupyter server runs as: the owner of its kernels and of "you"."""
        return os.getuid()

    @property
    def sees_others(self) -> bool:
        return self.uid == 0 or self.others_visible

    def status(self) -> Dict[str, Any]:
        return {
            "socket_path": self._socket,
            "embedded": bool(self.embedded and self.embedded.running),
            "embedded_log": str(self.embedded.log_path) if self.embedded else None,
            "server_started_at": self.started_at,
            "uid": self.uid,  # the front end's "my processes" (energyd's ?user=UID)
            "startup_error": self.startup_error,
            # energyd's (pid, started_at) at the last watch sync, and how often it changed.
            "energyd_pid": (self.watches.energyd_identity or (None, None))[0],
            "energyd_started_at": (self.watches.energyd_identity or (None, None))[1],
            "energyd_restarts": self.watches.energyd_restarts,
            "others_visible": self.sees_others,
            "kernels": {kid: w.to_json() for kid, w in self.watches.watches.items()},
            # The handlers' connections to energyd since the address last changed.
            "upstream": {
                "connections_opened": self._pool.connections_opened if self._pool else 0,
                "requests": self._pool.requests if self._pool else 0,
                "streams_opened": self._latest.streams_opened if self._latest else 0,
                "now_from_stream": self._latest.served if self._latest else 0,
            },
        }

    def kernel_energy(self, kernel_id: str, t0: float, t1: float) -> Dict[str, Any]:
        """Machine energy over [t0, t1] plus the kernel's attributed share when energyd can:
        energyd's figures as it gives them (``seconds``; ``joules`` and mean ``watts`` of
        ``host``, each of ``channels`` and ``kernel``), nothing computed here."""
        self.watches.sync()
        watch = self.watches.get(kernel_id)
        cli = self.client()
        machine = cli.get("energy", **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
        attributed = None
        note = watch.error if watch else "kernel not tracked"
        if watch and watch.watch_id is not None:
            try:
                scoped = cli.get("energy", scope=f"kernel:{watch.watch_id}",
                                 **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
                attributed = scoped.get("scope")
                note = None if attributed else "energyd answered without a scope figure"
            except EnergydError as exc:
                note = f"energyd cannot attribute this interval: {exc.error}"
        return {
            "kernel_id": kernel_id,
            "pid": watch.pid if watch else None,
            "watch_id": watch.watch_id if watch else None,
            "from": machine.get("from", t0),
            "to": machine.get("to", t1),
            "seconds": machine.get("seconds"),
            "resolution_s": machine.get("resolution_s"),
            "host": machine.get("host"),
            "channels": machine.get("channels"),
            "kernel": attributed,
            "kernel_note": note,
        }

    async def stop_extension(self) -> None:
        if getattr(self, "_sync_cb", None):
            self._sync_cb.stop()
        self._close_upstream()
        try:
            if getattr(self, "watches", None) is not None and self._socket:
                self.watches.clear()
        except Exception as exc:
            self.log.debug("jupyter_energy: clearing watches failed: %s", exc)
        if self.embedded:
            self.embedded.stop()
            self.embedded = None
