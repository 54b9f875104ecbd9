"""Drives the stub libnvidia-ml.so.1 (nvml_stub.c, built by the test build) through the files it
reads in $NVML_STUB_DIR: GPU count, names, energy in millijoules (absent: the energy counter is
NOT_SUPPORTED, as before Volta), power in milliwatts, injected error codes, the SM utilisation
per process that nvmlDeviceGetProcessUtilization reports (absent: NOT_SUPPORTED). Values are rewritten
in place because the stub keeps the files open from nvmlInit on.

Process utilisation follows nvml.h: the driver samples each process's SM utilisation every
sample period and nvmlDeviceGetProcessUtilization returns the samples newer than the caller's
lastSeenTimeStamp, each with its CPU timestamp (microseconds), so a caller that asks once per
several periods gets several samples per process. ``set_process_util`` is the steady state (one
sample per process, stamped at the call); ``start_sampling`` runs a driver thread that takes a
sample of each process every ``period_s`` from a repeating pattern of SM values and keeps the
last ``keep`` of them, as the driver's buffer does.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from emulators.valuelog import ValueLog

WIDTH = 24
UTIL_WIDTH = 32767  # the stub reads the samples with one pread of up to 32767 bytes
NVML_ERROR_GPU_IS_LOST = 15


def stub_library(build_dir, old_driver=False) -> Path:
    """The stub; old_driver: the build without nvmlDeviceGetProcessUtilization."""
    name = "libnvidia-ml-old.so.1" if old_driver else "libnvidia-ml.so.1"
    return Path(build_dir) / "tests/emulators" / name


class FakeNvml:
    def __init__(self, directory, gpus: list[dict]):
        """gpus: [{"name":..., "energy_mj": int | None, "power_mw": int, "limit_mw": int,
        "process_util": {pid: sm_percent} | None}]; process_util None or absent: the GPU
        answers NOT_SUPPORTED to nvmlDeviceGetProcessUtilization."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "count").write_text(f"{len(gpus)}\n")
        self._fds: dict[str, int] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.log = ValueLog()  # "gpuN/key" -> values written, with their times
        self.patterns: dict[int, dict[int, list[int]]] = {}
        self.samples: dict[int, list[tuple[int, int, int]]] = {}  # gpu -> (us, pid, sm)
        for i, g in enumerate(gpus):
            d = self.dir / f"gpu{i}"
            d.mkdir()
            (d / "name").write_text(g.get("name", f"NVIDIA Stub {i}") + "\n")
            (d / "uuid").write_text(f"GPU-5eb1c0de-0000-4000-8000-00000000000{i}\n")
            for key in ("energy_mj", "power_mw", "limit_mw"):
                if g.get(key) is not None:
                    self.set(i, key, g[key])
            self.set(i, "error", 0)
            if g.get("process_util") is not None:
                self.set_process_util(i, g["process_util"])

    @property
    def env(self) -> dict:
        return {"NVML_STUB_DIR": str(self.dir)}

    def set(self, gpu: int, key: str, value: int) -> None:
        name = f"gpu{gpu}/{key}"
        if name not in self._fds:
            self._fds[name] = os.open(self.dir / name, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self._fds[name], f"{value}\n".ljust(WIDTH).encode(), 0)
        self.log.record(name, value)

    def set_process_util(self, gpu: int, sm_percent: dict[int, int]) -> None:
        """The processes busy on the GPU and their SM utilisation, one sample each stamped at
        the call; {} for none (NOT_FOUND)."""
        self._write_samples(gpu, [(0, pid, util) for pid, util in sm_percent.items()])

    def _write_samples(self, gpu: int, samples) -> None:
        name = f"gpu{gpu}/process_util"
        if name not in self._fds:
            self._fds[name] = os.open(self.dir / name, os.O_RDWR | os.O_CREAT, 0o644)
        text = "".join(f"{t} {pid} {util}\n" for t, pid, util in samples)
        assert len(text) < UTIL_WIDTH
        os.pwrite(self._fds[name], text.ljust(UTIL_WIDTH).encode(), 0)

    def start_sampling(self, gpu: int, pattern: dict[int, list[int]], period_s=0.025,
                       keep=200) -> None:
        """Every period_s, a sample of each process in pattern ({pid: SM values, cycled});
        a value of 0 is no sample (NVML reports only processes that used the GPU)."""
        self.patterns[gpu] = pattern
        self.samples[gpu] = []

        def run():
            k = 0
            while not self._stop.is_set():
                t_us = int(time.time() * 1e6)
                with self._lock:
                    ring = self.samples[gpu]
                    for pid, values in self.patterns[gpu].items():
                        sm = values[k % len(values)]
                        if sm:
                            ring.append((t_us, pid, sm))
                    del ring[:-keep]
                    self._write_samples(gpu, ring)
                k += 1
                time.sleep(period_s)
        th = threading.Thread(target=run, daemon=True)
        th.start()
        self._threads.append(th)

    def set_pattern(self, gpu: int, pattern: dict[int, list[int]]) -> float:
        """Change the sampled pattern; returns the time of the change."""
        with self._lock:
            self.patterns[gpu] = pattern
            return time.time()

    def calls(self) -> list[str]:
        path = self.dir / "calls"
        return path.read_text().split() if path.exists() else []

    def close(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join()
        self._threads.clear()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
