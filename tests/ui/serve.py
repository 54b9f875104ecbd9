"""Start JupyterLab (which also serves Notebook 7) with the extension and an embedded energyd on
an emulated powercap tree, for the Playwright tests. Runs until SIGTERM/SIGINT.

Emulated machine: package-0 at 20 W with a dram sub-zone at 5 W, constant power, so the host
total is 25 W whatever the load (the tests compare cell energy against that).

Usage: python serve.py PORT TOKEN WORKDIR
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.emulators.powercap import FakePowercap, Zone  # noqa: E402

BUSY_1S = "import time\nt0 = time.perf_counter()\nwhile time.perf_counter() - t0 < 1.0:\n    pass"
BUSY_SHORT = "import time\nt0 = time.perf_counter()\nwhile time.perf_counter() - t0 < 0.3:\n    pass"


def notebook(cells: list[str]) -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}",
                   "metadata": {}, "outputs": [], "source": src} for i, src in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def main() -> int:
    port, token, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if work.exists():
        shutil.rmtree(work)
    for sub in ("notebooks", "config/labconfig", "data", "runtime", "settings", "workspaces"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for name in ("lab.ipynb", "nb7.ipynb"):
        (work / "notebooks" / name).write_text(json.dumps(notebook([BUSY_1S, BUSY_SHORT])))
    # No news pop-up over the page under test.
    (work / "config/labconfig/page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))

    # energyd started as root drops to nobody: its record directory must be reachable by it.
    state = work / "state"
    state.mkdir()
    for d in (work.parent, work):
        d.chmod(0o755)
    state.chmod(0o777)
    # Traits for the extension: an embedded energyd (the packaged binary) on the fake tree.
    (work / "config/jupyter_server_config.json").write_text(json.dumps({"EnergyExtensionApp": {
        "socket_path": str(work / "energyd.sock"), "interval_s": 0.05, "auto_start": True,
        "state_dir": str(state), "energyd_args": ["--sysfs-root", str(work / "sys")]}}))
    fake = FakePowercap(str(work / "sys"), [Zone("intel-rapl:0", "package-0", 20.0,
                                                 children=[Zone("intel-rapl:0:0", "dram", 5.0)])],
                        period_s=0.01).start()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"),
               JUPYTER_DATA_DIR=str(work / "data"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"))
    env.pop("ENERGYD_SOCKET", None)
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
            f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work / 'notebooks'}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    proc = subprocess.Popen(args, env=env)

    def stop(*_):
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return proc.wait()
    finally:
        fake.close()


if __name__ == "__main__":
    sys.exit(main())
