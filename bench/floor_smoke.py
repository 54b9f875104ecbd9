#!/usr/bin/env python3
"""Smoke test of bench/floor (meson suite `bench`): it reads the counters it is given, adds
their differences as energyd does (a wrap undone with max_energy_range_uj), answers SIGUSR1
with its count and goes on, and stops on SIGTERM with a final report.

Four counters in powercap's layout (energy_uj and max_energy_range_uj per zone) are written,
the floor starts at 0.01 s, and once it has taken samples of the first values the counters move:
three forward by known amounts and one across its wrap. The energy it reports must be exactly
the sum of those moves, and its sample count must grow between two reports.

usage: floor_smoke.py FLOOR_BINARY
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

MAX_UJ = 262143328850  # max_energy_range_uj of a 2^-14 J RAPL unit
WIDTH = 24


def write(path, value):
    """In place, fixed width, as the kernel's file shows a fresh value at offset 0."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, f"{value}\n".ljust(WIDTH).encode(), 0)
    os.close(fd)


def report(proc):
    """Ask for a report and parse it."""
    proc.send_signal(signal.SIGUSR1)
    return parse(proc.stdout.readline())


def parse(line):
    fields = dict(kv.split("=") for kv in line.split())
    return {k: int(v) for k, v in fields.items()}


def main():
    floor = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        start = [1000, 5_000_000, 42, MAX_UJ - 100]
        moves = [250, 1_000_000, 7, 350]  # the last crosses the wrap: 100 to the top, 1, 249
        files = []
        for i, v in enumerate(start):
            zone = os.path.join(tmp, f"intel-rapl:0:{i}")
            os.makedirs(zone)
            write(os.path.join(zone, "max_energy_range_uj"), MAX_UJ)
            files.append(os.path.join(zone, "energy_uj"))
            write(files[-1], v)
        proc = subprocess.Popen([floor, "-i", "0.01", *files], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == f"ready {len(files)}"
            deadline = time.time() + 20
            first = report(proc)
            while first["samples"] < 2 and time.time() < deadline:
                time.sleep(0.05)
                first = report(proc)
            assert first["samples"] >= 2 and first["energy_uj"] == 0, first
            for f, v, d in zip(files, start, moves):
                write(f, (v + d) % (MAX_UJ + 1) if v + d > MAX_UJ else v + d)
            later = report(proc)
            while later["samples"] < first["samples"] + 3 and time.time() < deadline:
                time.sleep(0.05)
                later = report(proc)
            assert later["samples"] >= first["samples"] + 3, (first, later)
            assert later["t_ns"] - first["t_ns"] >= 0.02e9, (first, later)  # 0.01 s apart
            proc.send_signal(signal.SIGTERM)
            last = parse(proc.stdout.readline())
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # The wrapped counter: MAX_UJ - 100 + 350 shows 249 after the wrap (0 counts as a step).
    expected = sum(moves)
    assert last["failed"] == 0, last
    assert last["energy_uj"] == expected, (last, expected)
    assert last["samples"] >= later["samples"] and last["cpu_ns"] > 0, (later, last)
    print(f"floor: {last['samples']} samples, {last['energy_uj']} uJ as written, "
          f"{last['cpu_ns'] / 1e6:.2f} ms of CPU")


if __name__ == "__main__":
    main()
