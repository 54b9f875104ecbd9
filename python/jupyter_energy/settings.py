"""The energy unit that figures are printed in: the front end's setting unless overridden.

The JupyterLab extension keeps the unit (J, Wh or kWh: Settings → Energy → "Energy unit", or the
panel's switch) in JupyterLab's user settings, as the ``unit`` property of the plugin
``jupyter-energy:plugin``, i.e. the file ``<user-settings>/jupyter-energy/plugin.jupyterlab-settings``
(``<user-settings>``: ``$JUPYTERLAB_SETTINGS_DIR``, else ``<jupyter config dir>/lab/user-settings``;
the config dir is ``$JUPYTER_CONFIG_DIR``, else ``~/.jupyter``). The file is JSON5 (JupyterLab
writes comments into it), read again each time a unit is needed, so a change in the browser
reaches the next magic.

Order, first match wins: a unit given to the call (the magics' ``--unit``, ``PrintHandler(unit=)``),
then :func:`set_energy_unit` in this process, then the front end's setting, then ``"J"``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

log = logging.getLogger("jupyter_energy")

UNITS = ("J", "Wh", "kWh")
DEFAULT_UNIT = "J"
PLUGIN_ID = "jupyter-energy:plugin"  # labextension/src/index.ts, schema/plugin.json
SETTING = "unit"

_process_unit: Optional[str] = None


def check_unit(unit: str) -> str:
    """``unit`` if it is one of UNITS (case as written there), else ValueError."""
    for u in UNITS:
        if unit.lower() == u.lower():
            return u
    raise ValueError(f"unknown energy unit {unit!r}: use one of {', '.join(UNITS)}")


def set_energy_unit(unit: Optional[str]) -> None:
    """Print energies in ``unit`` ("J", "Wh", "kWh") in this process from now on, whatever the
    front end's setting; ``None`` follows the front end's setting again."""
    global _process_unit
    _process_unit = None if unit is None else check_unit(unit)


def settings_file() -> Path:
    """Where JupyterLab keeps this extension's user settings."""
    base = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    if not base:
        try:
            from jupyter_core.paths import jupyter_config_dir
            config = jupyter_config_dir()
        except ImportError:  # plain Python without Jupyter
            config = os.environ.get("JUPYTER_CONFIG_DIR") or str(Path.home() / ".jupyter")
        base = os.path.join(config, "lab", "user-settings")
    ext, _, plugin = PLUGIN_ID.partition(":")
    return Path(base) / ext / f"{plugin}.jupyterlab-settings"


def front_end_unit() -> Optional[str]:
    """The unit chosen in the front end, or None (no such file, no such setting, or a file that
    cannot be read: then the default applies, and the reason is logged at debug level)."""
    path = settings_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import json5
        value = json5.loads(text).get(SETTING)
        return check_unit(value) if isinstance(value, str) else None
    except (ValueError, AttributeError) as exc:  # json5 raises ValueError on bad input
        log.debug("jupyter_energy: ignoring %s: %s", path, exc)
        return None


def energy_unit(explicit: Optional[str] = None) -> str:
    """The unit to print in: ``explicit``, else set_energy_unit's, else the front end's, else J."""
    if explicit:
        return check_unit(explicit)
    return _process_unit or front_end_unit() or DEFAULT_UNIT
