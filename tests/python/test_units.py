"""The magics print energy in the front end's unit (JupyterLab's user setting of the extension),
unless the magic's --unit or set_energy_unit says otherwise (jupyter_energy/settings.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import jupyter_energy.magics as magics_mod
from jupyter_energy import set_energy_unit, settings
from jupyter_energy.output import PrintHandler

REPO = Path(__file__).resolve().parents[2]

# As JupyterLab's settings editor leaves the file: comments, and a trailing comma.
SETTINGS_TEXT = """{
    // Energy
    // Jupyter Energy: live power and energy, per-cell energy, benchmarks.
    // ******************************************************************

    /* Energy unit: J (auto-prefixed: J, kJ, MJ), Wh or kWh. */
    "unit": "%s",
    "refreshIntervalMs": 1000,
}
"""


@pytest.fixture
def lab_settings(tmp_path, monkeypatch):
    """Writes the extension's user settings where JupyterLab keeps them."""
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "user-settings"))

    def write(unit: str, text: str = SETTINGS_TEXT) -> Path:
        path = tmp_path / "user-settings" / "jupyter-energy" / "plugin.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text % unit if "%s" in text else text)
        return path

    yield write
    set_energy_unit(None)


def test_plugin_id_and_setting_match_the_front_end():
    """The file read is the one the front end's plugin writes: its id and the setting's
    name and values, as labextension/ declares them."""
    index = (REPO / "labextension" / "src" / "index.ts").read_text()
    assert f"const PLUGIN_ID = '{settings.PLUGIN_ID}';" in index
    schema = json.loads((REPO / "labextension" / "schema" / "plugin.json").read_text())
    assert tuple(schema["properties"][settings.SETTING]["enum"]) == settings.UNITS
    assert schema["properties"][settings.SETTING]["default"] == settings.DEFAULT_UNIT
    package = json.loads((REPO / "labextension" / "package.json").read_text())
    assert package["name"] == settings.PLUGIN_ID.split(":")[0]
    assert package["jupyterlab"]["schemaDir"] == "schema"


def test_unit_order(lab_settings):
    assert settings.energy_unit() == "J"  # no settings file
    path = lab_settings("Wh")
    assert settings.settings_file() == path
    assert settings.energy_unit() == "Wh"
    assert settings.energy_unit("kwh") == "kWh"  # the call's own unit first
    set_energy_unit("J")
    assert settings.energy_unit() == "J"  # then the process's
    set_energy_unit(None)
    assert settings.energy_unit() == "Wh"
    lab_settings("", text='{"unit": "calories"}')
    assert settings.energy_unit() == "J"  # a value the front end does not offer: the default
    lab_settings("", text='{"unit": ')
    assert settings.energy_unit() == "J"  # a half-written file: the default
    with pytest.raises(ValueError):
        set_energy_unit("cal")


def _joules(value: str, unit: str) -> float:
    return float(value) * {"mJ": 1e-3, "J": 1, "kJ": 1e3, "Wh": 3600, "kWh": 3.6e6}[unit]


def test_cell_magic_follows_the_setting(shell, capsys, lab_settings, monkeypatch):
    traces = []
    describe = magics_mod.describe_cell
    monkeypatch.setattr(magics_mod, "describe_cell",
                        lambda t, unit: traces.append(t) or describe(t, unit))
    lab_settings("Wh")
    shell.run_cell("%%energy\nimport time\ntime.sleep(0.3)\n")
    out = capsys.readouterr().out
    m = re.search(r"host ([\d.]+) (Wh)", out)
    assert m, out
    # Four significant digits of the API's joules, in watt-hours.
    assert _joules(m.group(1), "Wh") == pytest.approx(traces[-1][0].host_joules, rel=1e-3)

    shell.run_cell("%%energy --unit kWh\ntime.sleep(0.3)\n")
    out = capsys.readouterr().out
    m = re.search(r"host ([\d.]+) (kWh)", out)
    assert m, out
    assert _joules(m.group(1), "kWh") == pytest.approx(traces[-1][0].host_joules, rel=1e-3)

    set_energy_unit("J")
    shell.run_cell("%%energy\ntime.sleep(0.3)\n")
    out = capsys.readouterr().out
    assert re.search(r"host [\d.]+ (m|k)?J ", out) and "Wh" not in out, out

    with pytest.raises(ValueError):
        shell.run_cell("%%energy -u cal\npass\n", store_history=False).raise_error()


def test_bench_and_print_handler_follow_the_setting(shell, capsys, lab_settings):
    lab_settings("Wh")
    shell.run_cell("import time")
    trace = shell.run_line_magic("energy_bench", "-n 2 -w 0 -o time.sleep(0.2)")
    out = capsys.readouterr().out
    # Mean and deviation in the one unit, Wh, for the host and every channel.
    for label in ("host", "rapl:package-0", "rapl:dram-0"):
        m = re.search(rf"{re.escape(label)}\s+[\d.]+ (\S+) ± [\d.]+ (\S+)", out)
        assert m and m.group(1) == m.group(2) == "Wh", out
    PrintHandler().process(trace)
    out = capsys.readouterr().out
    m = re.search(r"host ([\d.]+) Wh", out)
    assert m, out
    assert _joules(m.group(1), "Wh") == pytest.approx(trace[0].host_joules, rel=1e-3)
    PrintHandler(unit="J").process(trace)
    assert "Wh" not in capsys.readouterr().out


@pytest.fixture
def lab_user_settings(tmp_path, monkeypatch):
    path = tmp_path / "lab-user-settings"
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(path))
    return path


@pytest.fixture
def jp_server_config(lab_user_settings):
    """JupyterLab's own server extension, with its user settings in the test's directory and
    the installed labextension (its schema) on the extension path."""
    import sys
    return {"ServerApp": {"jpserver_extensions": {"jupyterlab": True}},
            "LabApp": {"user_settings_dir": str(lab_user_settings),
                       "extra_labextensions_path": [
                           str(Path(sys.prefix) / "share" / "jupyter" / "labextensions")]}}


async def test_unit_saved_by_jupyterlab(jp_fetch, lab_user_settings):
    """The unit as JupyterLab's settings service saves it (what the settings editor and the
    panel's switch do) is the unit the magics print in."""
    raw = '{\n    // the panel switch\n    "unit": "kWh",\n}\n'
    r = await jp_fetch("lab", "api", "settings", settings.PLUGIN_ID, method="PUT",
                       body=json.dumps({"raw": raw}))
    assert r.code == 204
    assert settings.settings_file().read_text() == raw  # the file JupyterLab wrote
    assert settings.settings_file().is_relative_to(lab_user_settings)
    assert settings.energy_unit() == "kWh"
    r = await jp_fetch("lab", "api", "settings", settings.PLUGIN_ID)
    assert json.loads(r.body)["settings"]["unit"] == "kWh"  # JupyterLab reads it back too
