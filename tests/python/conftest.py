"""Fixtures for the jupyter_energy handler tests: the real energyd on an emulated powercap tree
(see energyd_testing.py for the emulated machine)."""

from __future__ import annotations

import pytest

from energyd_testing import DRAM_W, PACKAGE_W, Energyd, FakePowercap, Zone

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(autouse=True)
def _clean_energyd_env(monkeypatch, tmp_path):
    # The extension exports ENERGYD_SOCKET for its kernels; undo that after each test.
    monkeypatch.delenv("ENERGYD_SOCKET", raising=False)
    # The magics follow the front end's unit setting: never the developer's own.
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "no-lab-settings"))


@pytest.fixture
def emulated(tmp_path):
    """The emulated machine; tests compare with its log of what it wrote (energy_between)."""
    fake = FakePowercap(str(tmp_path / "sys"), [
        Zone("intel-rapl:0", "package-0", PACKAGE_W,
             children=[Zone("intel-rapl:0:0", "dram", DRAM_W)])], period_s=0.005)
    fake.start()
    yield fake
    fake.close()


@pytest.fixture
def fake_sys(emulated):
    return emulated.root


@pytest.fixture
def energyd(tmp_path, fake_sys):
    d = Energyd(str(tmp_path / "energyd.sock"), tmp_path / "energyd-state", fake_sys)
    yield d
    d.stop()


@pytest.fixture
def shell(energyd, monkeypatch):
    """IPython's own InteractiveShell with the magics loaded, on the test's energyd."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("ENERGYD_SOCKET", energyd.sock)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "jupyter_energy")
    yield sh
    InteractiveShell.clear_instance()


@pytest.fixture
def extension_config(energyd):
    """Server config pointing the extension at the test's energyd, no auto-start."""
    return {"socket_path": energyd.sock, "auto_start": False, "watch_sync_s": 0.5}


@pytest.fixture
def jp_server_config(extension_config):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_energy": True}},
            "EnergyExtensionApp": extension_config}
