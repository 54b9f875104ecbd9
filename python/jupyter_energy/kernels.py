"""Kernel → pid → energyd watch.

The server extension registers a watch (``POST /api/v1/watch {pid, label}``) for every kernel this
Jupyter server runs, so that energyd can attribute energy to the kernel's process tree, and
removes it (``DELETE /api/v1/watch/ID``) when the kernel stops.  energyd versions without
attribution answer 404; the kernel is then remembered as "not attributable" with energyd's text,
and the front end shows the machine's figures only.

energyd keeps its watches in memory: when it restarts (a system service restarted, an embedded
daemon that crashed and was started again), every watch is gone.  Each sync therefore asks
``/api/v1/info`` first and compares energyd's ``pid`` and ``started_at`` with the last answer; a
different daemon means every kernel is registered again at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from .client import EnergydClient, EnergydError


@dataclass
class KernelWatch:
    kernel_id: str
    pid: Optional[int]
    watch_id: Optional[str] = None
    error: Optional[str] = None  # why there is no watch (energyd's text)
    unsupported: bool = False  # energyd has no /watch at all: do not ask again
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"kernel_id": self.kernel_id, "pid": self.pid, "watch_id": self.watch_id,
                "error": self.error}


def kernel_pid(kernel_manager: Any, kernel_id: str) -> Optional[int]:
    """The pid of a local kernel process, or None (remote kernels, gateways, not started yet)."""
    try:
        km = kernel_manager.get_kernel(kernel_id)
    except KeyError:
        return None
    prov = getattr(km, "provisioner", None)
    for obj, attr in ((prov, "pid"), (getattr(prov, "process", None), "pid"),
                      (getattr(km, "kernel", None), "pid")):
        pid = getattr(obj, attr, None) if obj is not None else None
        if isinstance(pid, int) and pid > 0:
            return pid
    return None


class KernelWatches:
    """Keeps energyd's watches in step with the kernels of one Jupyter server (thread-safe)."""

    def __init__(self, client_factory: Callable[[], EnergydClient], kernel_manager: Any, log: Any):
        self._client = client_factory
        self._km = kernel_manager
        self._log = log
        self._lock = threading.Lock()
        self.watches: Dict[str, KernelWatch] = {}
        # (pid, started_at) of the energyd the watches were registered with.
        self.energyd_identity: Optional[tuple] = None
        self.energyd_restarts = 0  # how often a new energyd was seen (status, tests)

    def _register(self, kernel_id: str, pid: int) -> KernelWatch:
        watch = KernelWatch(kernel_id, pid)
        try:
            answer = self._client().post("watch", {"pid": pid, "label": f"kernel:{kernel_id}"})
            watch.watch_id = str(answer.get("id")) if answer.get("id") is not None else None
            if watch.watch_id is None:
                watch.error = "energyd accepted the watch but returned no id"
        except EnergydError as exc:
            if exc.status == 404 and "no such endpoint" in exc.error:
                watch.unsupported = True
                watch.error = ("this energyd does not attribute energy to processes yet "
                               "(POST /api/v1/watch: 404)")
            else:
                watch.error = exc.error
            self._log.debug("watch for kernel %s (pid %d) not registered: %s", kernel_id, pid, exc)
        return watch

    def _unregister(self, watch: KernelWatch) -> None:
        if watch.watch_id is None:
            return
        try:
            self._client().delete(f"watch/{watch.watch_id}")
        except EnergydError as exc:
            self._log.debug("removing watch %s failed: %s", watch.watch_id, exc)

    def sync(self) -> None:
        """Register new kernels, forget stopped ones, re-register kernels whose pid changed
        (restarts), retry kernels whose registration failed for a reason other than 404."""
        live = set(self._km.list_kernel_ids())
        with self._lock:
            if not self._check_energyd():
                return
            for kid in list(self.watches):
                if kid not in live:
                    self._unregister(self.watches.pop(kid))
            for kid in live:
                pid = kernel_pid(self._km, kid)
                current = self.watches.get(kid)
                if pid is None:
                    if current is None:
                        self.watches[kid] = KernelWatch(kid, None, error="kernel has no local pid")
                    continue
                retry = current is not None and current.watch_id is None and not current.unsupported
                if current is None or current.pid != pid or retry:
                    if current is not None:
                        self._unregister(current)
                    self.watches[kid] = self._register(kid, pid)

    def _check_energyd(self) -> bool:
        """Whether energyd answers; forgets every watch id when it is not the daemon they were
        registered with."""
        try:
            info = self._client().get("info")
        except EnergydError as exc:
            # Down: nothing to register with.  The ids are kept until a daemon answers, which
            # then tells whether it is the same one (a short network hiccup) or a new one.
            self._log.debug("energyd not reachable for the watch sync: %s", exc)
            return False
        identity = (info.get("pid"), info.get("started_at"))
        if self.energyd_identity is not None and identity != self.energyd_identity:
            self._log.info("jupyter_energy: energyd restarted (pid %s); registering %d kernel(s) "
                           "again", identity[0], len(self.watches))
            self.energyd_restarts += 1
            # The new daemon never knew these watches: drop them without a DELETE, so that
            # the loop below registers every kernel afresh.
            self.watches.clear()
        self.energyd_identity = identity
        return True

    def get(self, kernel_id: str) -> Optional[KernelWatch]:
        with self._lock:
            return self.watches.get(kernel_id)

    def clear(self) -> None:
        with self._lock:
            for watch in self.watches.values():
                self._unregister(watch)
            self.watches.clear()
