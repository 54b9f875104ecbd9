"""Measure the energy of Python code, in the shapes pyJoules users know, on top of energyd.

    from jupyter_energy import measure_energy, EnergyContext, EnergyMeter, CSVHandler

    @measure_energy(handler=CSVHandler("train.csv"))
    def train(): ...

    with EnergyContext(start_tag="load") as ctx:
        load(); ctx.record("train"); train()

    meter = EnergyMeter()
    meter.start("a"); ...; meter.record("b"); ...; meter.stop()
    meter.resume("c"); ...; meter.stop()
    trace = meter.get_trace()

Unlike pyJoules, nothing here reads RAPL: energyd samples every sensor of the machine
continuously (no root needed by the user, wraparounds handled), and a meter only notes clock
times while it runs. The energy of each segment is asked of energyd afterwards
(``GET /api/v1/energy``), interpolated to the segment's start and end. energyd is found as the
CLI finds it ($ENERGYD_SOCKET, the system socket, the user's); when none answers, one is started
for this process (embedded mode, estimated where nothing can be measured).

Units: joules, seconds, watts, grams CO2eq. ``EnergySample.energy`` maps channel ids
(``rapl:package-0`` …) to joules; ``host_joules`` is the whole machine without double counting;
``process_joules`` the share attributed to this process and its children (an estimate; ``None``
where energyd does not attribute); ``emissions_g`` ``None`` where energyd reports none. After
``remove_idle``, ``host_joules`` is above idle and ``host_joules_with_idle`` the whole host's
energy that ``process_joules`` is a share of.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from .client import EnergydClient, EnergydError, ensure_energyd, resolve_socket

#: How long to wait for energyd to sample past a segment's end before asking for its energy.
WAIT_FOR_SAMPLE_S = 2.0
#: How long to wait for energyd's attribution to cover a segment (it follows process scans).
WAIT_FOR_ATTRIBUTION_S = 3.0

_embedded = None  # an energyd this process started because none answered


def default_client() -> EnergydClient:
    """A client of the energyd the CLI would use, starting an embedded one if none answers."""
    global _embedded
    sock = resolve_socket()
    if sock is None:
        if _embedded is None or not _embedded.running:
            _embedded = ensure_energyd()
        sock = _embedded.socket_path if _embedded else resolve_socket()
    return EnergydClient(sock)


@dataclass
class EnergySample:
    """The energy of one tagged segment of time."""

    timestamp: float  # Unix seconds at the segment's start
    tag: str
    duration: float  # seconds (monotonic clock)
    energy: Dict[str, float]  # channel id -> joules
    host_joules: float = math.nan
    process_joules: Optional[float] = None  # attributed to this process tree (estimated)
    emissions_g: Optional[float] = None
    measured: Dict[str, bool] = field(default_factory=dict)  # channel id -> measured?
    host_measured: bool = False
    host_coverage: List[str] = field(default_factory=list)
    resolution_s: float = 0.0
    #: After remove_idle: ``host_joules`` and ``energy`` are above the idle baseline, and this is
    #: the whole host's energy as measured, idle included: the figure ``process_joules`` is a
    #: share of. None while no baseline was removed.
    host_joules_with_idle: Optional[float] = None

    @property
    def idle_removed(self) -> bool:
        return self.host_joules_with_idle is not None

    @property
    def host_joules_above_idle(self) -> Optional[float]:
        """The host's energy minus idle power x duration (after remove_idle), else None."""
        return self.host_joules if self.idle_removed else None

    @property
    def process_share_exceeds_host(self) -> bool:
        """True when the attributed share is larger than the host figure shown next to it: it is
        a share of the host's energy idle included, and the idle baseline was removed from the
        host figure (see docs/python.md, "Idle removal")."""
        return (self.process_joules is not None and math.isfinite(self.host_joules)
                and self.process_joules > self.host_joules)

    def as_dict(self) -> Dict[str, Any]:
        return {"timestamp": self.timestamp, "tag": self.tag, "duration_s": self.duration,
                "energy": dict(self.energy), "host_joules": self.host_joules,
                "process_joules": self.process_joules, "emissions_g": self.emissions_g,
                "measured": dict(self.measured), "host_measured": self.host_measured,
                "host_coverage": list(self.host_coverage), "resolution_s": self.resolution_s,
                "idle_removed": self.idle_removed,
                "host_joules_above_idle": self.host_joules_above_idle,
                "host_joules_with_idle": self.host_joules_with_idle}


@dataclass
class IdleBaseline:
    """Mean power per channel (and of the host) while nothing of ours ran."""

    duration: float
    watts: Dict[str, float]
    host_watts: float


class EnergyTrace:
    """A list of :class:`EnergySample`, with pyJoules' clean-up helpers."""

    def __init__(self, samples: Iterable[EnergySample] = ()):
        self._samples = list(samples)

    def __iter__(self) -> Iterator[EnergySample]:
        return iter(self._samples)

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, i):
        return self._samples[i]

    def __add__(self, other: "EnergyTrace") -> "EnergyTrace":
        return EnergyTrace(self._samples + list(other))

    def __repr__(self) -> str:
        return f"EnergyTrace({self._samples!r})"

    def clean_data(self, guards: Sequence[Callable[[EnergySample], bool]] = ()) -> "EnergyTrace":
        """Drop samples with a negative or unknown energy (for instance after remove_idle on a
        segment quieter than the baseline) and those any guard rejects; returns self."""
        def keep(s: EnergySample) -> bool:
            values = list(s.energy.values()) + [s.host_joules]
            if any(v is None or not math.isfinite(v) or v < 0 for v in values):
                return False
            return all(g(s) for g in guards)
        self._samples = [s for s in self._samples if keep(s)]
        return self

    def remove_idle(self, idle: Union[IdleBaseline, Dict[str, float], Sequence[Dict[str, float]]]
                    ) -> "EnergyTrace":
        """Subtract idle power × duration from the host and channel figures; returns self.

        ``idle`` is what :func:`measure_idle` returns, a dict of channel -> idle watts (``"host"``
        for the host total), or a list of such dicts, one per sample. It is *power* (W), turned
        into energy with each sample's own duration: subtracting an idle energy measured over a
        different duration is the unit error this method avoids.

        ``process_joules`` is left as it is: it is this process's share of the host's energy
        *with* idle (energyd splits the measured energy by CPU time), not of the energy above
        idle, so subtracting a baseline from it would mean nothing. Each sample then says which
        figure is which: ``host_joules`` (= ``host_joules_above_idle``) is above idle,
        ``host_joules_with_idle`` is what ``process_joules`` is a share of, and the share may
        be larger than the host figure above idle (``process_share_exceeds_host``).
        """
        if isinstance(idle, IdleBaseline):
            per_sample = [dict(idle.watts, host=idle.host_watts)] * len(self._samples)
        elif isinstance(idle, dict):
            per_sample = [idle] * len(self._samples)
        else:
            per_sample = list(idle)
            if len(per_sample) != len(self._samples):
                raise ValueError(f"remove_idle: {len(per_sample)} idle values for "
                                 f"{len(self._samples)} samples")
        for s, watts in zip(self._samples, per_sample):
            if s.host_joules_with_idle is None:
                s.host_joules_with_idle = s.host_joules
            for ch in s.energy:
                if ch in watts:
                    s.energy[ch] -= watts[ch] * s.duration
            if "host" in watts:
                s.host_joules -= watts["host"] * s.duration
        return self


class EnergyMeter:
    """Cuts time into tagged segments; energyd reports each segment's energy afterwards.

    ``channels``: the channel ids to keep in ``EnergySample.energy`` (default: all).
    ``client``: an :class:`EnergydClient` (default: the one the CLI would use).
    """

    def __init__(self, channels: Optional[Sequence[str]] = None,
                 client: Optional[EnergydClient] = None):
        self.channels = list(channels) if channels else None
        self._client = client
        self._segments: List[list] = []  # [tag, wall start, monotonic start, duration]
        self._samples: List[EnergySample] = []  # computed segments, in order
        self._running = False
        self._scope_supported: Optional[bool] = None

    @property
    def client(self) -> EnergydClient:
        if self._client is None:
            self._client = default_client()
        return self._client

    def _open(self, tag: str) -> None:
        self._segments.append([str(tag), time.time(), time.monotonic(), None])
        self._running = True

    def _close(self) -> None:
        seg = self._segments[-1]
        seg[3] = time.monotonic() - seg[2]

    def start(self, tag: str = "start") -> None:
        """Begin a new trace with a segment named tag."""
        if self._running:
            raise RuntimeError("EnergyMeter.start: already running (stop() first)")
        _own_watch(self.client)  # find energyd and register before measuring
        self._segments, self._samples = [], []
        self._open(tag)

    def record(self, tag: str = "") -> None:
        """End the current segment and begin the next, named tag."""
        if not self._running:
            raise RuntimeError("EnergyMeter.record: not running (start() first)")
        self._close()
        self._open(tag)

    def stop(self) -> None:
        """End the current segment."""
        if not self._running:
            raise RuntimeError("EnergyMeter.stop: not running")
        self._close()
        self._running = False

    def resume(self, tag: str = "resume") -> None:
        """After stop(): continue the same trace with a new segment named tag."""
        if self._running:
            raise RuntimeError("EnergyMeter.resume: already running")
        if not self._segments:
            raise RuntimeError("EnergyMeter.resume: nothing to resume (start() first)")
        self._open(tag)

    def get_trace(self) -> EnergyTrace:
        """The samples of every segment so far (after stop())."""
        if self._running:
            raise RuntimeError("EnergyMeter.get_trace: stop() first")
        while len(self._samples) < len(self._segments):
            self._samples.append(self._measure(*self._segments[len(self._samples)]))
        return EnergyTrace(self._samples)

    # -- asking energyd ----------------------------------------------------------------------

    def _wait_for_sample(self, t1: float) -> None:
        deadline = time.monotonic() + WAIT_FOR_SAMPLE_S
        while time.monotonic() < deadline:
            if self.client.get("now").get("time", 0) >= t1:
                return
            time.sleep(0.01)

    def _measure(self, tag: str, t0: float, _mono: float, duration: float) -> EnergySample:
        t1 = t0 + duration
        self._wait_for_sample(t1)
        e = self.client.get("energy", **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
        channels = e.get("channels", {})
        if self.channels:
            unknown = [c for c in self.channels if c not in channels]
            if unknown:
                raise ValueError(f"unknown channel(s) {unknown}; energyd has {sorted(channels)}")
            channels = {c: channels[c] for c in self.channels}
        host = e.get("host", {})
        emissions = e.get("emissions_g", host.get("emissions_g"))
        return EnergySample(
            timestamp=t0, tag=tag, duration=duration,
            energy={c: _num(v.get("joules")) for c, v in channels.items()},
            host_joules=_num(host.get("joules")),
            process_joules=self._process_joules(t0, t1),
            emissions_g=None if emissions is None else float(emissions),
            measured={c: bool(v.get("measured")) for c, v in channels.items()},
            host_measured=bool(host.get("measured")),
            host_coverage=list(host.get("coverage", [])),
            resolution_s=float(e.get("resolution_s") or 0.0))

    def _process_joules(self, t0: float, t1: float) -> Optional[float]:
        """This process tree's attributed energy, where energyd attributes (else None).

        Attribution runs behind the sampler (it needs two process scans, at most a second
        apart): until it has covered the whole segment energyd answers 503 or a clamped
        interval, so ask again for a few seconds before giving up on this sample."""
        if self._scope_supported is False:
            return None
        watch = _own_watch(self.client)
        scope = f"kernel:{watch}" if watch else f"pid:{os.getpid()}"
        deadline = time.monotonic() + WAIT_FOR_ATTRIBUTION_S
        while True:
            try:
                e = self.client.get("energy", **{"from": f"{t0:.6f}", "to": f"{t1:.6f}",
                                                 "scope": scope})
            except EnergydError as exc:
                if exc.status == 404 and watch:
                    # energyd restarted and forgot our watch: register again, once.
                    _watches.pop(str(self.client.socket_path), None)
                    watch = _own_watch(self.client)
                    scope = f"kernel:{watch}" if watch else f"pid:{os.getpid()}"
                    watch = None
                    continue
                if exc.status in (400, 404):  # this energyd does not attribute
                    self._scope_supported = False
                    return None
                if exc.status != 503 or time.monotonic() > deadline:
                    return None  # not (yet) attributed: unknown, not zero
                time.sleep(0.1)
                continue
            scope = e.get("scope") or {}
            if "joules" not in scope:
                self._scope_supported = False
                return None
            self._scope_supported = True
            if not e.get("clamped") or time.monotonic() > deadline:
                return None if e.get("clamped") else _num(scope.get("joules"))
            time.sleep(0.1)


_watches: Dict[str, Optional[int]] = {}  # socket -> watch id of this process (or None)


def _own_watch(client: EnergydClient) -> Optional[int]:
    """A watch on this process tree, registered once per energyd: energyd then attributes it at
    its sample rate (full process scans are only about once a second). None where energyd does
    not attribute or refuses."""
    key = str(client.socket_path)
    if key not in _watches:
        try:
            w = client.post("watch", {"pid": os.getpid(),
                                      "label": f"python {os.getpid()} (jupyter_energy)"})
            _watches[key] = int(w["id"])
            atexit.register(_drop_watch, client, _watches[key])
        except (EnergydError, KeyError, TypeError, ValueError):
            _watches[key] = None
    return _watches[key]


def _drop_watch(client: EnergydClient, watch: int) -> None:
    try:
        client.delete(f"watch/{watch}")
    except EnergydError:
        pass


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def measure_idle(seconds: float = 1.0, client: Optional[EnergydClient] = None) -> IdleBaseline:
    """Measure the idle power for `seconds` (sleeping meanwhile): the baseline for remove_idle."""
    meter = EnergyMeter(client=client)
    meter.start("idle")
    time.sleep(seconds)
    meter.stop()
    s = meter.get_trace()[0]
    return IdleBaseline(duration=s.duration,
                        watts={c: j / s.duration for c, j in s.energy.items()},
                        host_watts=s.host_joules / s.duration)


class EnergyContext:
    """``with EnergyContext(handler, channels, start_tag) as ctx: ... ctx.record("next")``;
    on exit the trace goes to ``handler.process(trace)`` (if a handler is given) and stays
    available as ``ctx.trace``."""

    def __init__(self, handler=None, channels: Optional[Sequence[str]] = None,
                 start_tag: str = "start", client: Optional[EnergydClient] = None):
        self.handler = handler
        self.start_tag = start_tag
        self.meter = EnergyMeter(channels, client)
        self.trace: Optional[EnergyTrace] = None

    def __enter__(self) -> "EnergyContext":
        self.meter.start(self.start_tag)
        return self

    def record(self, tag: str = "") -> None:
        self.meter.record(tag)

    def __exit__(self, *exc) -> None:
        self.meter.stop()
        self.trace = self.meter.get_trace()
        if self.handler is not None:
            self.handler.process(self.trace)


def measure_energy(func=None, *, handler=None, channels: Optional[Sequence[str]] = None,
                   client: Optional[EnergydClient] = None):
    """Decorator: every call of the function becomes one sample tagged with its name, sent to
    ``handler.process(trace)`` (default: printed)."""
    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            meter = EnergyMeter(channels, client)
            meter.start(f.__name__)
            try:
                return f(*args, **kwargs)
            finally:
                meter.stop()
                (handler if handler is not None else _print_handler()).process(meter.get_trace())
        return wrapper
    return decorate(func) if func is not None else decorate


def _print_handler():
    from .output import PrintHandler
    return PrintHandler()
