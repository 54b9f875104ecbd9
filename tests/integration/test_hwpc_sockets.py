"""The machine's hardware counters per socket (docs/attribution.md, "hwpc-model").

Two packages of two CPUs each (sysfs topology written by tests/emulators/hwpc.py), one task on
each package with a very different instruction mix: a vector-heavy one (IPC 3, 0.05 LLC misses
per 1000 instructions) on package 0, a memory-bound one (IPC 0.4, 20 per 1000) on package 1.
The driver moves each task's mix by factors in [0.5, 1.5] (IPC) and [0.3, 1.7] (misses) every
phase, so whatever the window, a socket's instructions per cycle and misses per 1000
instructions stay in its own task's range, and those ranges do not overlap: CPUs summed into
the wrong socket, or all sockets together, give a ratio outside one of them.

``test_hwpc_layers_per_socket``: the same machine, each package its own RAPL zone, power per
instruction (3 times as much on package 1) and static power; each socket's layer is fitted on
its own package's power against its own CPUs' rates.
"""

import time

import pytest

from conftest import BUILD, ENERGYD
from emulators import hwpc, powercap
from emulators.procfs import FakeProc


WINDOW = 20  # --hwpc-error-window


def two_sockets(tmp_path, sockets=None):
    """Four CPUs, 0 and 1 on package 0, 2 and 3 on package 1, each package a RAPL zone; the
    vector-heavy task on CPU 1, the memory-bound one on CPU 3."""
    pc = powercap.FakePowercap(tmp_path / "sys",
                               [powercap.Zone("intel-rapl:0", "package-0", 0.0),
                                powercap.Zone("intel-rapl:1", "package-1", 0.0)])
    proc = FakeProc(tmp_path / "proc", ncpu=4, busy_rate=200.0, period_s=3600)
    proc.add(1, 0, 0, 0.0, "init")
    proc.add(100, 1, 0, 100.0, "vector")
    proc.add(200, 1, 0, 100.0, "memory")
    tasks = [hwpc.Task(100, 1, ghz=2.4, ipc=3.0, llc_per_kinstr=0.05),
             hwpc.Task(200, 3, ghz=2.4, ipc=0.4, llc_per_kinstr=20.0)]
    hw = hwpc.FakeHwpc(tmp_path / "hwpc", tmp_path / "sys", pc, "package-0", proc, tasks, 4,
                       packages=[0, 0, 1, 1], sockets=sockets)
    return pc, proc, hw


def test_hwpc_counters_per_socket(tmp_path, start_energyd):
    pc, proc, hw = two_sockets(tmp_path)
    hw.start()
    try:
        d = start_energyd(tmp_path / "sys", proc_root=tmp_path / "proc",
                          env=hw.shim_env(BUILD, ENERGYD))
        deadline, m = time.time() + 30, None
        while time.time() < deadline:
            m = d.get("/api/v1/model")
            socks = m["counters"]["sockets"]
            if all(s["rates_last_window"]["cycles"] > 0 for s in socks):
                break
            time.sleep(0.25)
        c = m["counters"]
        assert c["available"] is True and c["cpus"] == 4, c
        socks = c["sockets"]
        assert [(s["package"], s["cpus"]) for s in socks] == [(0, [0, 1]), (1, [2, 3])], socks
        ranges = {0: ((1.5, 4.5), (0.05 * 0.3, 0.05 * 1.7)), 1: ((0.2, 0.6), (20 * 0.3, 20 * 1.7))}
        for s in socks:
            r = s["rates_last_window"]
            assert r["cycles"] > 0, s
            ipc = r["instructions"] / r["cycles"]
            mpki = r["cache_misses"] / r["instructions"] * 1000
            (ilo, ihi), (mlo, mhi) = ranges[s["package"]]
            # 1 % for the counts' integer truncation and the window's edges.
            assert ilo * 0.99 <= ipc <= ihi * 1.01, (s, ipc)
            assert mlo * 0.99 <= mpki <= mhi * 1.01, (s, mpki)
        assert m["measured"] is False
    finally:
        hw.close()
        proc.close()
        pc.close()


def test_hwpc_layers_per_socket(tmp_path, start_energyd):
    coef = {0: (1.5e-9, 2e-9, 1e-7), 1: (1.5e-9, 6e-9, 3e-7)}
    static = {0: 6.0, 1: 12.0}
    pc, proc, hw = two_sockets(
        tmp_path, {p: (f"package-{p}", coef[p], static[p]) for p in (0, 1)})
    hw.start()
    try:
        d = start_energyd(tmp_path / "sys", "--hwpc-error-window", str(WINDOW),
                          proc_root=tmp_path / "proc", env=hw.shim_env(BUILD, ENERGYD))
        deadline, m = time.time() + WINDOW * 3 + 30, None
        while time.time() < deadline:
            m = d.get("/api/v1/model")
            socks = m["counters"]["sockets"]
            if all(s["layers"] and s["layers"][0]["usable"] for s in socks):
                break
            time.sleep(0.5)
        socks = m["counters"]["sockets"]
        assert [s["package"] for s in socks] == [0, 1], socks
        fitted = {}
        for s in socks:
            pkg = s["package"]
            assert len(s["layers"]) == 1, s  # no msr PMU: one layer, every frequency
            layer = s["layers"][0]
            assert layer["usable"] is True and layer["socket"] == str(pkg), layer
            assert layer["splits_last_window"] is False  # the machine's layers split
            c = layer["coefficients"]
            fitted[pkg] = c["instructions"]
            # Its power per instruction, against the script's (instructions move on their
            # own factor: the fit cannot trade them for cycles).
            assert c["instructions"] == pytest.approx(coef[pkg][1], rel=0.25), (pkg, layer)
            # Its prediction over the script's last 10 s, against the package's power.
            with hw.lock:
                steps = [w for w in hw.socket_windows if w[0] > time.time() - 10]
            keys = ("cycles", "instructions", "cache_misses")
            pred = sum((layer["intercept_watts"] + sum(c[k] * r for k, r in
                                                        zip(keys, w[2][pkg][0]))) * w[1]
                       for w in steps)
            true = sum(w[2][pkg][1] * w[1] for w in steps)
            assert pred == pytest.approx(true, rel=0.05), (pkg, pred, true, layer)
        # The sockets' coefficients are their own: package 1's is about 3 times package 0's.
        assert fitted[1] / fitted[0] == pytest.approx(3.0, rel=0.3), fitted
        assert m["measured"] is False
    finally:
        hw.close()
        proc.close()
        pc.close()
