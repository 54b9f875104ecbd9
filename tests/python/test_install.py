"""The installed package, as `pip install .` (run.sh) leaves it in this environment: both halves
of the extension enabled, energyd and energy shipped inside it and on PATH."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jupyter_energy

BIN = Path(sys.executable).parent


def run(*args):
    r = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_server_extension_is_enabled():
    code, out = run("jupyter", "server", "extension", "list")
    assert code == 0, out
    lines = [l for l in out.splitlines() if "jupyter_energy" in l]
    assert any("enabled" in l for l in lines), out
    assert any("OK" in l for l in lines), out


def test_labextension_is_enabled():
    code, out = run("jupyter", "labextension", "list")
    assert code == 0, out
    line = next(l for l in out.splitlines() if "jupyter-energy" in l)
    assert "enabled" in line and "OK" in line and "jupyter_energy" in line, line


def test_binaries_are_shipped_and_on_path():
    pkg_bin = Path(jupyter_energy.__file__).parent / "bin"
    for name in ("energyd", "energy"):
        assert os.access(pkg_bin / name, os.X_OK), f"{pkg_bin / name} missing: build hook did not run"
    code, out = run("energyd", "--version")
    assert code == 0 and out.strip(), out
    code, out = run("energy", "--help")
    assert code == 0 and "energy" in out, out


def test_front_end_is_built_with_its_schema():
    share = Path(sys.prefix) / "share/jupyter/labextensions/jupyter-energy"
    meta = json.loads((share / "package.json").read_text())
    assert meta["name"] == "jupyter-energy"
    schema = json.loads((share / "schemas/jupyter-energy/plugin.json").read_text())
    assert {"refreshIntervalMs", "unit", "channels", "cellEnergy", "cellMetadata",
            "benchmarkRuns"} <= set(schema["properties"])
