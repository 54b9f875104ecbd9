"""Jupyter Energy: live power and energy in JupyterLab and Notebook 7, from energyd."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "dev"

from .client import EnergydClient, EnergydError, EnergydUnavailable, ensure_energyd, find_socket


from .meter import (EnergyContext, EnergyMeter, EnergySample, EnergyTrace, IdleBaseline,
                    measure_energy, measure_idle)
from .output import CSVHandler, JSONLinesHandler, PandasHandler, PrintHandler
from .settings import energy_unit, set_energy_unit


def load_ipython_extension(ipython):
    """``%load_ext jupyter_energy``: the %%energy and %energy_bench magics."""
    from .magics import EnergyMagics

    ipython.register_magics(EnergyMagics)


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-energy"}]


def _jupyter_server_extension_points():
    from .app import EnergyExtensionApp

    return [{"module": "jupyter_energy", "app": EnergyExtensionApp}]


__all__ = ["EnergydClient", "EnergydError", "EnergydUnavailable", "ensure_energyd", "find_socket",
           "EnergyContext", "EnergyMeter", "EnergySample", "EnergyTrace", "IdleBaseline",
           "measure_energy", "measure_idle", "CSVHandler", "JSONLinesHandler", "PandasHandler",
           "PrintHandler", "energy_unit", "set_energy_unit", "__version__"]
