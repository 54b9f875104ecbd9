"""Hatch build hook: compile energyd and energy with the repository's meson build and ship them
inside the wheel (``jupyter_energy/bin/``), so that a fresh virtual environment gets a working
whole from ``pip install .``.

The meson build directory is ``build-pip/`` at the repository root (ignored by git) so that a
second ``pip install .`` only relinks.  Set ``JUPYTER_ENERGY_SKIP_NATIVE=1`` to build a wheel
without the binaries (the extension then looks for energyd on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BINARIES = ("energyd", "energy")


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        bin_dir = root / "python" / "jupyter_energy" / "bin"
        if os.environ.get("JUPYTER_ENERGY_SKIP_NATIVE"):
            self.app.display_warning("JUPYTER_ENERGY_SKIP_NATIVE set: wheel without energyd")
            return
        if not (root / "meson.build").exists():
            self.app.display_warning("no meson.build in the repository: wheel without energyd")
            return
        for tool in ("meson", "ninja"):
            if shutil.which(tool) is None:
                raise RuntimeError(
                    f"{tool} not found: install the build dependencies (Debian: apt-get install "
                    "meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev) or set "
                    "JUPYTER_ENERGY_SKIP_NATIVE=1")
        build_dir = root / "build-pip"
        if not (build_dir / "build.ninja").exists():
            subprocess.run(["meson", "setup", str(build_dir), str(root), "--buildtype=release"],
                           check=True)
        jobs = os.environ.get("JUPYTER_ENERGY_BUILD_JOBS", "2")
        # Only the two programs (and what they link): the test targets are not ours to build.
        subprocess.run(["ninja", "-C", str(build_dir), "-j", jobs, *BINARIES], check=True)
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name in BINARIES:
            src = build_dir / name
            if not src.exists():
                raise RuntimeError(f"meson build did not produce {src}")
            shutil.copy2(src, bin_dir / name)
        # The CLI may link libenergy dynamically; ship it beside the binaries (the embedded
        # launcher puts jupyter_energy/bin on LD_LIBRARY_PATH).
        for lib in build_dir.glob("libenergy.so*"):
            if lib.is_file():
                shutil.copy2(lib, bin_dir / lib.name, follow_symlinks=True)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
