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

Every figure is energyd's: joules, mean watts (``host_watts``, ``watts``), the idle-corrected
figures (``remove_idle`` asks energyd with ``idle_watts=``) and the statistics over repeated
runs (:meth:`EnergyMeter.get_runs`, ``GET /api/v1/runs``). This module only asks and sorts.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

from .client import EnergydClient, EnergydError, ensure_energyd, resolve_socket

#: How long to wait for energyd to sample past a segment's end before asking for its energy.
WAIT_FOR_SAMPLE_S = 2.0
#: How long to wait for energyd's attribution to cover a segment (it follows process scans).
WAIT_FOR_ATTRIBUTION_S = 3.0
#: The most segments energyd's /runs takes in one request.
RUNS_MAX = 300

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
    #: The host's mean power over the sample (energyd's ``watts``; above idle after remove_idle).
    host_watts: float = math.nan
    #: Mean power per channel (energyd's ``watts``; above idle after remove_idle where a
    #: channel had a baseline).
    watts: Dict[str, float] = field(default_factory=dict)
    #: ``process_joules`` as a fraction of the host's energy with idle (energyd's ``share``).
    process_share: Optional[float] = None

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
                "host_joules_with_idle": self.host_joules_with_idle,
                "host_watts": self.host_watts, "watts": dict(self.watts),
                "process_share": self.process_share}


@dataclass
class IdleBaseline:
    """Mean power per channel (and of the host) while nothing of ours ran."""

    duration: float
    watts: Dict[str, float]
    host_watts: float


class EnergyTrace:
    """A list of :class:`EnergySample`, with pyJoules' clean-up helpers. ``client``: the energyd
    that measured the samples (``remove_idle`` asks it again; default: the one the CLI would
    use)."""

    def __init__(self, samples: Iterable[EnergySample] = (),
                 client: Optional[EnergydClient] = None):
        self._samples = list(samples)
        self.client = client

    def __iter__(self) -> Iterator[EnergySample]:
        return iter(self._samples)

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, i):
        return self._samples[i]

    def __add__(self, other: "EnergyTrace") -> "EnergyTrace":
        return EnergyTrace(self._samples + list(other),
                           self.client or getattr(other, "client", None))

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
        """Replace the host and channel figures by energyd's figures above an idle baseline;
        returns self.

        ``idle`` is what :func:`measure_idle` returns, a dict of channel -> idle watts (``"host"``
        for the host total), or a list of such dicts, one per sample. It is *power* (W): energyd
        subtracts it times each sample's own interval (``GET /api/v1/energy?…&idle_watts=``,
        ``joules_above_idle`` and ``watts_above_idle``), so each sample's interval must still be
        in energyd's history (the last ``history_s`` seconds, 900 by default): an interval that
        has left it raises :class:`EnergydError` saying so. Calling it again replaces the
        baseline; it never subtracts twice.

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
        client = self.client or default_client()
        baselines = [{k: w for k, w in watts.items()
                      if (k == "host" or k in s.energy) and w is not None and math.isfinite(w)}
                     for s, watts in zip(self._samples, per_sample)]
        # Every answer first, so that an interval that left the history changes no sample.
        answers = [_energy_above_idle(client, s, b) if b else None
                   for s, b in zip(self._samples, baselines)]
        for s, baseline, e in zip(self._samples, baselines, answers):
            if s.host_joules_with_idle is None:
                s.host_joules_with_idle = s.host_joules
            if e is None:
                continue
            if "host" in baseline:
                s.host_joules = _num(e["host"].get("joules_above_idle"))
                s.host_watts = _num(e["host"].get("watts_above_idle"))
            for ch in s.energy:
                if ch in baseline:
                    fig = e["channels"][ch]
                    s.energy[ch] = _num(fig.get("joules_above_idle"))
                    s.watts[ch] = _num(fig.get("watts_above_idle"))
        return self


def _energy_above_idle(client: EnergydClient, s: EnergySample,
                       baseline: Dict[str, float]) -> dict:
    """energyd's /energy answer over the sample's interval with the idle baseline given."""
    spec = ",".join(f"{key}:{w:.9g}" for key, w in baseline.items())
    t0, t1 = s.timestamp, s.timestamp + s.duration
    gone = (f"remove_idle: sample {s.tag!r} ({t0:.3f} to {t1:.3f}) has left energyd's history, "
            "which energyd needs to subtract the baseline")
    hint = ("call remove_idle within energyd's history (GET /api/v1/info: history_s; "
            "energyd --history SECONDS) of measuring, and before energyd restarts")
    try:
        e = client.get("energy", **{"from": f"{t0:.6f}", "to": f"{t1:.6f}", "idle_watts": spec})
    except EnergydError as exc:
        if exc.status == 404:
            raise EnergydError(404, gone, hint, exc.body) from exc
        raise
    if e.get("clamped"):
        raise EnergydError(404, gone + f" (it holds {e.get('from')} to {e.get('to')} of it)", hint, e)
    return e


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
        return EnergyTrace(self._samples, self.client)

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
        scoped = self._scoped("energy", {"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
        return self._sample(tag, t0, duration, e, scoped and scoped.get("scope"))

    def _sample(self, tag: str, t0: float, duration: float, e: dict,
                scope: Optional[dict]) -> EnergySample:
        """A sample from energyd's figures over its interval (an /energy answer, or one run of
        a /runs answer) and the scope's (None where energyd does not attribute)."""
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
            process_joules=None if scope is None else _num(scope.get("joules")),
            emissions_g=None if emissions is None else float(emissions),
            measured={c: bool(v.get("measured")) for c, v in channels.items()},
            host_measured=bool(host.get("measured")),
            host_coverage=list(host.get("coverage", [])),
            resolution_s=float(e.get("resolution_s") or 0.0),
            host_watts=_num(host.get("watts")),
            watts={c: _num(v.get("watts")) for c, v in channels.items()},
            process_share=None if scope is None or scope.get("share") is None
            else float(scope["share"]))

    def _scoped(self, endpoint: str, params: Dict[str, str]) -> Optional[dict]:
        """energyd's answer for this process tree's scope (``kernel:WATCH``, else ``pid:PID``),
        or None where energyd does not attribute.

        Attribution runs behind the sampler (it needs two process scans, at most a second
        apart): until it has covered the whole interval energyd answers 503 or a clamped
        interval, so ask again for a few seconds before giving up (unknown, not zero)."""
        if self._scope_supported is False:
            return None
        watch = _own_watch(self.client)
        scope = f"kernel:{watch}" if watch else f"pid:{os.getpid()}"
        deadline = time.monotonic() + WAIT_FOR_ATTRIBUTION_S
        while True:
            try:
                e = self.client.get(endpoint, scope=scope, **params)
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
                    return None
                time.sleep(0.1)
                continue
            clamped = e.get("clamped") or any(r.get("clamped") for r in e.get("runs", ()))
            if clamped and time.monotonic() <= deadline:
                time.sleep(0.1)
                continue
            if clamped:
                return None
            scopes = [e.get("scope")] + [r.get("scope") for r in e.get("runs", ())]
            if any(sc is not None and "joules" not in sc for sc in scopes):
                self._scope_supported = False
                return None
            self._scope_supported = True
            return e

    def get_runs(self) -> Tuple[EnergyTrace, dict]:
        """The trace (after stop()), one sample per segment, and energyd's statistics over the
        segments (``GET /api/v1/runs``: ``stats`` with ``n``, ``mean``, ``sd``, ``rel_sd``,
        ``ci95_low``, ``ci95_high`` of ``seconds``, of the host's and each channel's ``joules``
        and ``watts``, and of the ``scope`` (this process tree) where energyd attributes), all
        in one request. At most RUNS_MAX segments, all within energyd's history."""
        if self._running:
            raise RuntimeError("EnergyMeter.get_runs: stop() first")
        if not self._segments:
            raise RuntimeError("EnergyMeter.get_runs: nothing measured (start() first)")
        if len(self._segments) > RUNS_MAX:
            raise ValueError(f"EnergyMeter.get_runs: {len(self._segments)} segments, energyd "
                             f"gives statistics over at most {RUNS_MAX}")
        runs = ",".join(f"{t0:.6f}/{t0 + dur:.6f}" for _, t0, _, dur in self._segments)
        tag, t0, _, dur = self._segments[-1]
        self._wait_for_sample(t0 + dur)
        answer = self._scoped("runs", {"runs": runs}) or self.client.get("runs", runs=runs)
        self._samples = [self._sample(tag, t0, dur, run, run.get("scope"))
                         for (tag, t0, _, dur), run in zip(self._segments, answer["runs"])]
        return EnergyTrace(self._samples, self.client), answer["stats"]


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
    return IdleBaseline(duration=s.duration, watts=dict(s.watts), host_watts=s.host_watts)


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
