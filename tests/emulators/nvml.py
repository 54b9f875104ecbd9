"""Drives the stub libnvidia-ml.so.1 (nvml_stub.c, built by the test build) through the files it
reads in $NVML_STUB_DIR: GPU count, names, energy in millijoules (absent: the energy counter is
NOT_SUPPORTED, as before Volta), power in milliwatts, injected error codes, the SM utilisation
per process that nvmlDeviceGetProcessUtilization reports (absent: NOT_SUPPORTED). Values are rewritten
in place because the stub keeps the files open from nvmlInit on.
"""

from __future__ import annotations

import os
from pathlib import Path

WIDTH = 24
UTIL_WIDTH = 512  # the stub reads the process list with one pread of up to 1023 bytes
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

    def set_process_util(self, gpu: int, sm_percent: dict[int, int]) -> None:
        """The processes busy on the GPU and their SM utilisation; {} for none (NOT_FOUND)."""
        name = f"gpu{gpu}/process_util"
        if name not in self._fds:
            self._fds[name] = os.open(self.dir / name, os.O_RDWR | os.O_CREAT, 0o644)
        text = " ".join(f"{pid} {util}" for pid, util in sm_percent.items()) + "\n"
        assert len(text) < UTIL_WIDTH
        os.pwrite(self._fds[name], text.ljust(UTIL_WIDTH).encode(), 0)

    def calls(self) -> list[str]:
        path = self.dir / "calls"
        return path.read_text().split() if path.exists() else []

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
