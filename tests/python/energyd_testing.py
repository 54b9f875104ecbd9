"""Shared pieces of the jupyter_energy handler tests: the emulated machine and a test-started
energyd. (A module of its own, not conftest, so that imports never pick another conftest.)

Emulated machine: one package at PACKAGE_W and its dram sub-zone at DRAM_W, constant power, so
the host total (packages + dram) is HOST_W and any interval's energy is HOST_W × its length.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.emulators.powercap import FakePowercap, Zone  # noqa: E402,F401

import jupyter_energy  # noqa: E402
from tests.runner.energyd_check import assert_clean  # noqa: E402
from jupyter_energy.client import EnergydClient  # noqa: E402

PACKAGE_W = 20.0
DRAM_W = 5.0
HOST_W = PACKAGE_W + DRAM_W

def energyd_binary() -> str:
    build_dir = os.environ.get("ENERGY_BUILD_DIR")  # test.sh's sanitizer build
    # test.sh's fresh sanitizer build first, then the binary installed with the package (what
    # the extension starts), then a developer's build/.
    candidates = [os.environ.get("ENERGYD"), build_dir and Path(build_dir) / "energyd",
                  Path(jupyter_energy.__file__).parent / "bin" / "energyd",
                  REPO / "build" / "energyd", shutil.which("energyd")]
    for c in candidates:
        if c and os.access(str(c), os.X_OK):
            return str(c)
    pytest.fail("no energyd binary: build it (meson setup build && ninja -C build) or set ENERGYD")


def energyd_args(fake_root: str) -> list:
    return ["--sysfs-root", fake_root]


class Energyd:
    """energyd started by a test (not by the extension), to check forwarding and failures."""

    def __init__(self, sock: str, state: Path, fake_root: str):
        state.mkdir(parents=True, exist_ok=True)
        self.sock = sock
        self.log = state / "energyd.log"
        # Its record: energyd started as root drops to nobody, which cannot enter pytest's
        # private tmp_path, so the store lives in a directory of its own under /tmp.
        self.store = tempfile.mkdtemp(prefix="je-store-", dir="/tmp")
        os.chmod(self.store, 0o777)
        self.proc = subprocess.Popen(
            [energyd_binary(), "--listen", f"unix:{sock}", "--interval", "0.05",
             "--state-dir", self.store, "--store-batch", "1", *energyd_args(fake_root)],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(sock) and EnergydClient(sock).ping():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"energyd did not start: {self.log.read_text()}")

    def kill(self) -> None:
        """Kill it with SIGKILL on purpose (a test of what clients do when energyd dies): stop()
        then accepts that end, and still fails on a sanitizer report."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """Stop it; a crash, an exit status other than 0 or a sanitizer report fails the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.store, ignore_errors=True)
        ok = (0, -signal.SIGKILL) if getattr(self, "killed", False) else (0,)
        assert_clean("energyd", self.proc.returncode, self.log, pid=self.proc.pid, ok_codes=ok)
