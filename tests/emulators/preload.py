"""LD_PRELOAD environment for energyd under one of the test shims (msr_shim.c, perf_shim.c)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def preload_env(build_dir, energyd, library: str) -> dict:
    """{"LD_PRELOAD": ...} that loads build_dir/tests/emulators/<library> into energyd."""
    shim = str(Path(build_dir) / "tests/emulators" / library)
    # A sanitizer runtime must come first in the preload list when energyd uses one.
    ldd = subprocess.run(["ldd", str(energyd)], capture_output=True, text=True).stdout
    first = [line.split("=>")[1].split()[0] for line in ldd.splitlines()
             if "libasan" in line and "=>" in line]
    return {"LD_PRELOAD": " ".join(first + [shim])}
