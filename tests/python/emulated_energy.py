"""What the emulated machine wrote, as the Jupyter-side tests compare with it.

On a loaded machine the emulator's driver thread runs late, so a test's expected energy is not
watts × duration but what the emulator wrote: its log of (time, counter), taken at energyd's own
sample times and interpolated between them as energyd does (FakePowercap.energy_between). What
is left is each sample's skew between reading the counters and stamping the sample: SKEW_S per
end of an interval at the zones' power, plus 1 %. A missing channel (dram is 20 % of the host
here) or a wrong unit is far outside that.
"""

from __future__ import annotations

from jupyter_energy.client import EnergydClient

SKEW_S = 0.005  # per end of an interval: counter read vs sample stamp
PKG, DRAM = "intel-rapl:0", "intel-rapl:0:0"
HOST = (PKG, DRAM)


def written(fake, zones, t0: float, t1: float, socket: str) -> float:
    """Joules the emulator wrote to the zones over [t0, t1], interpolated at the sample times
    of the energyd on socket."""
    ts = EnergydClient(socket).get("history", seconds=120)["t"]
    return sum(fake.energy_between(z, t0, t1, ts) for z in zones)


def near(joules: float, fake, zones, t0: float, t1: float, watts: float, socket: str) -> bool:
    """joules within 1 % + SKEW_S per end (at watts) of what the emulator wrote over [t0, t1]."""
    expected = written(fake, zones, t0, t1, socket)
    assert expected > 0.3 * watts * (t1 - t0), (expected, watts, t1 - t0)  # the emulator ran
    return abs(joules - expected) <= 0.01 * expected + 2 * watts * SKEW_S


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
