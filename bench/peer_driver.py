#!/usr/bin/env python3
"""Runs one of energyd's peers the way a user of it would, for bench/floor_ratio.py: started by
that script with the peer's own venv's python, inside a private mount namespace where the fake
powercap tree is /sys/class/powercap. Only the standard library and the peer.

- codecarbon: an OfflineEmissionsTracker (no network: a country's static carbon intensity),
  measuring power every second (measure_power_secs=1), whole machine, no file written.
- pyjoules: an EnergyMeter on the four RAPL domains (package, core, uncore, dram of socket 0),
  recording a sample every 0.1 s on absolute deadlines of the monotonic clock, and every 100
  samples stopping to build the trace (EnergyMeter.get_trace: the per-interval energies) and
  starting again, so that its memory stays bounded as a monitor's would.

Prints "ready" once measuring, runs until SIGTERM, then prints one JSON line: the package power
it measured (watts, from the peer's own figures, so that the caller can check it read the fake
counters) and the samples it took.

usage: peer_driver.py codecarbon|pyjoules
"""
import json
import signal
import sys
import threading
import time

stop = threading.Event()


def codecarbon():
    import logging

    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(country_iso_code="FRA", measure_power_secs=1,
                                      save_to_file=False, log_level="error",
                                      tracking_mode="machine")
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker.start()
    t0 = time.monotonic()
    print("ready", flush=True)
    stop.wait()
    tracker.stop()
    data = tracker.final_emissions_data
    # cpu_power: the CPU power of its last measurement, from RAPL's package counter (its
    # total energy leaves out its first intervals, while it checks for duplicate counters).
    return {"seconds": data.duration, "watts": data.cpu_power, "measured_s":
            time.monotonic() - t0, "cpu_joules": data.cpu_energy * 3.6e6, "samples": None}


def pyjoules():
    from pyJoules.device import DeviceFactory
    from pyJoules.device.rapl_device import (RaplCoreDomain, RaplDramDomain,
                                             RaplPackageDomain, RaplUncoreDomain)
    from pyJoules.energy_meter import EnergyMeter

    domains = [RaplPackageDomain(0), RaplCoreDomain(0), RaplUncoreDomain(0), RaplDramDomain(0)]
    meter = EnergyMeter(DeviceFactory.create_devices(domains))
    interval = 0.1
    samples, package_uj = 0, 0.0
    meter.start(tag="s")
    print("ready", flush=True)
    t0 = next_t = time.monotonic()
    while not stop.is_set():
        next_t += interval
        delay = next_t - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        meter.record(tag="s")
        samples += 1
        if samples % 100 == 0:
            meter.stop()
            package_uj += sum(s.energy["package_0"] for s in meter.get_trace())
            meter.start(tag="s")
    meter.stop()
    package_uj += sum(s.energy["package_0"] for s in meter.get_trace())
    seconds = time.monotonic() - t0
    return {"seconds": seconds, "watts": package_uj / 1e6 / seconds, "samples": samples}


def main():
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    result = {"codecarbon": codecarbon, "pyjoules": pyjoules}[sys.argv[1]]()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
