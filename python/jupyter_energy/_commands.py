"""`energy` and `energyd` on PATH in a virtual environment: they run the binaries built into this
package by `pip install .` (jupyter_energy/bin/), else the ones on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BIN = Path(__file__).parent / "bin"


def _exec(name: str) -> None:
    binary = BIN / name
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        # Not built into the package: the first one on PATH that is not this wrapper.
        here = Path(sys.argv[0]).resolve()
        found = None
        for d in os.environ.get("PATH", "").split(os.pathsep):
            c = Path(d) / name
            if c.is_file() and os.access(c, os.X_OK) and c.resolve() != here:
                found = c
                break
        if found is None:
            sys.exit(f"{name}: not built into jupyter_energy and not on PATH "
                     "(reinstall with `pip install .` from the repository)")
        binary = found
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(binary.parent) + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    os.execve(str(binary), [name, *sys.argv[1:]], env)


def energy() -> None:
    _exec("energy")


def energyd() -> None:
    _exec("energyd")


