"""What the emulated machine wrote, as the Jupyter-side tests compare with it.

On a loaded machine the emulator's driver thread runs late, so a test's expected energy is not
watts × duration but what the emulator wrote: its log of (time, counter), taken at energyd's own
sample times and interpolated between them as energyd does.

When a write became visible is known only to lie inside the pwrite that made it, whose end the
driver may log long after (it waits for the GIL, which a busy cell in this process holds, or
for a CPU); a write after a late step carries all the energy since the one before. And energyd
reads the counters, then stamps the sample: SKEW_S at most between the two. So each sample's
counter is bounded from the log (FakePowercap.energy_bounds) rather than taken at one time, and
energyd's figure must lie within those bounds, plus 1 %. A missing channel (dram is 20 % of
the host here) or a wrong unit is far outside that.
"""

from __future__ import annotations

from jupyter_energy.client import EnergydClient

SKEW_S = 0.005  # energyd's sample: counter read to sample stamp, at most
PKG, DRAM = "intel-rapl:0", "intel-rapl:0:0"
HOST = (PKG, DRAM)


def sample_times(socket: str) -> list:
    """The sample times of the energyd on socket over the last two minutes."""
    return EnergydClient(socket).get("history", seconds=120)["t"]


def written_bounds(fake, zones, t0: float, t1: float, socket: str) -> tuple[float, float]:
    """(lo, hi): the least and the most joules the energyd on socket can have read of the
    emulator's writes to the zones over [t0, t1] at its sample times (SKEW_S from read to
    stamp)."""
    ts = sample_times(socket)
    bounds = [fake.energy_bounds(z, t0, t1, ts, SKEW_S) for z in zones]
    return sum(b[0] for b in bounds), sum(b[1] for b in bounds)


def near(joules: float, fake, zones, t0: float, t1: float, watts: float, socket: str) -> bool:
    """joules within written_bounds over [t0, t1], plus 1 %; watts: the zones' power, to check
    that the emulator ran."""
    lo, hi = written_bounds(fake, zones, t0, t1, socket)
    assert lo > 0.3 * watts * (t1 - t0), (lo, watts, t1 - t0)  # the emulator ran
    return 0.99 * lo <= joules <= 1.01 * hi


def tree_cpu_s(root: int) -> float:
    """CPU time (user + system, and that of waited-for children) of a process and all its
    descendants, from /proc: what energyd's pid scope counts for it. The test's own process
    has children of its own here (the energyd a fixture started), whose time counts too."""
    import os

    stats = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [p for p, (ppid, _) in stats.items() if ppid == pid and p not in tree]
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")
