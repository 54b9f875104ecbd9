"""Watts over a meaningful window: a sensor whose counters stall and then catch up must not make
the shown power spike or drop, while energy stays what the counters say.

The powercap emulator's driver stalls for 0.3 s every 2 s (counters not written, then caught up
at once, tests/emulators/powercap.py `freeze`), under a load that steps between 63 W and 111 W
(the steps of the report that found 729 W and 1,827 W in `history`). Expected figures come from
what the emulator logged as used (`truth`), not from the nominal profile. On a loaded machine
the emulator's own driver thread can also run late (its counters then lag as in a stall, but
partially, which no presentation can tell from a real power change): the bounds widen by the
energy such a late write, found in its write log, can move across a window (P_HIGH x lateness
over one sample interval), and at least half the points must have an allowance small enough
(under a quarter of the lowest power) that a stall shown as a drop or a spike still fails.
"""

import bisect
import time

from emulators import powercap

P_LOW, P_HIGH = 63.0, 111.0
FREEZE_EVERY_S, FREEZE_FOR_S = 2.0, 0.3
RUN_S = 60.0
INTERVAL_S = 0.1


def used_uj(fake, t):
    """Energy the emulated package had used by time t (from its log, interpolated)."""
    times = [x[0] for x in fake.truth]
    k = bisect.bisect_left(times, t)
    assert 0 < k < len(times), t
    (ta, a), (tb, b) = fake.truth[k - 1], fake.truth[k]
    ea, eb = a["intel-rapl:0"], b["intel-rapl:0"]
    return ea + (eb - ea) * (t - ta) / (tb - ta)


def freeze_overlap(fake, a, b):
    """Seconds of [a, b] inside the programmed stalls."""
    total, k = 0.0, int((a - fake._t_start) // FREEZE_EVERY_S)
    while fake._t_start + k * FREEZE_EVERY_S < b:
        lo = fake._t_start + k * FREEZE_EVERY_S
        total += max(0.0, min(b, lo + FREEZE_FOR_S) - max(a, lo))
        k += 1
    return total


def write_gaps(fake, lo, hi):
    """The gaps between counter writes that overlap [lo, hi]: (start, end) pairs."""
    w = fake.writes
    k = max(bisect.bisect_left(w, lo) - 1, 0)
    out = []
    while k + 1 < len(w) and w[k] < hi:
        out.append((w[k], w[k + 1]))
        k += 1
    return out


def late_s(fake, x, before, after):
    """How late the driver ran near x (its longest write gap beyond the programmed stalls and
    its 2 ms step): the counter then lagged partially, by up to that much energy, which no
    presentation can tell from a power change."""
    return max((b - a - freeze_overlap(fake, a, b) - fake.period_s
                for a, b in write_gaps(fake, x - before, x + after)), default=0.0)


def stale_s(fake, x):
    """How long the counter may have gone unwritten around time x (the samples on either
    side included): the energy used then is counted only when it catches up."""
    return max((b - a for a, b in write_gaps(fake, x - 2 * INTERVAL_S, x + 2 * INTERVAL_S)),
               default=0.0)


def test_stalled_counters_make_no_spikes_and_keep_energy(tmp_path, start_energyd):
    fake = powercap.FakePowercap(tmp_path / "sys", [
        powercap.Zone("intel-rapl:0", "package-0", P_LOW)])
    fake.freeze(FREEZE_EVERY_S, FREEZE_FOR_S)

    def steps(f, t):  # 63 W and 111 W in turn, 1.3 s each (not in step with the stalls)
        f.zones["intel-rapl:0"].watts = P_HIGH if int((t - f._t_start) / 1.3) % 2 else P_LOW

    fake.start(on_step=steps)
    d = start_energyd(tmp_path / "sys", interval=str(INTERVAL_S))
    time.sleep(RUN_S)
    hist = d.get(f"/api/v1/history?seconds={RUN_S:g}")
    fake.stop()

    # Every watts value shown lies within the emulated range: none above the maximum + 5 %,
    # none below half the minimum (a stall shows as "no update yet", not 0 W).
    series = {"rapl:package-0": hist["channels"]["rapl:package-0"]["watts"],
              "host": hist["host"]["watts"]}
    t = hist["t"]

    def allowance(x):  # what the driver's own lateness near x can add or take, in watts
        return P_HIGH * late_s(fake, x, FREEZE_FOR_S + 2 * INTERVAL_S, 0.05) / (0.9 * INTERVAL_S)

    # The first half second has no window behind it yet, and the newest half second is live:
    # a stall that just began there cannot be told from a drop until the counter moves again.
    for name, watts in series.items():
        pts = [(w, x, allowance(x)) for w, x in list(zip(watts, t))[5:-5]]
        shown = [p for p in pts if p[0] is not None]
        assert len(shown) >= 0.9 * len(pts), name
        # The allowance must leave the check able to see what it is for: a stall shown as a
        # drop (0 W, below P_LOW / 2 by P_LOW / 2) or caught up as a spike (a 0.3 s stall
        # counted in one 0.1 s sample: 4 times the power). Where the allowance is under a
        # quarter of P_LOW, both fail the bounds below with room to spare; at least half the
        # points must be such. (Not 5 % of P_HIGH, as before: one CI run on a quiet machine had
        # 28 % of its points within that, against 92-95 % in runs alone and after the same
        # tests; no other thread of the test process ran, and the delay's cause was not found.)
        tight = [p for p in shown if p[2] <= P_LOW / 4]
        assert len(tight) >= 0.5 * len(shown), (name, len(tight), len(shown))
        for w, x, extra in shown:
            assert w <= P_HIGH * 1.05 + extra, (name, x - fake._t_start, w, extra)
            assert w >= P_LOW / 2 - extra, (name, x - fake._t_start, w, extra)
    # The stalls happened: gaps of at least 0.3 s between counter writes, one every 2 s.
    stalls = [b - a for a, b in zip(fake.writes, fake.writes[1:]) if b - a >= FREEZE_FOR_S]
    assert len(stalls) >= RUN_S / FREEZE_EVERY_S - 2, len(stalls)

    # Energy over any 10 s: what the emulator used, exact up to the stalled stretch at each
    # end (energy used there is counted when the counter catches up).
    starts = [x for x in t if t[0] + 1 <= x <= t[-1] - 10]
    assert len(starts) > 100
    for t0 in starts[::25]:
        t1 = t0 + 10.0
        e = d.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")
        got = e["channels"]["rapl:package-0"]["joules"]
        want = (used_uj(fake, t1) - used_uj(fake, t0)) / 1e6
        tol = sum(P_HIGH * (stale_s(fake, x) + 0.02) for x in (t0, t1))
        assert abs(got - want) <= tol, (t0, got, want, tol)
        assert abs(e["host"]["joules"] - got) < 1e-6
    fake.close()
