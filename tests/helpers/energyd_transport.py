"""The package's transport (python/jupyter_energy/transport.py) for the test helpers.

The integration and fleet tests run without the package installed (and without Jupyter), so
this loads the transport module from this checkout by its file path: the helpers then talk to
energyd through the very code the package uses. It imports only the standard library.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "python" / "jupyter_energy" / "transport.py"
_NAME = "jupyter_energy_transport"


def load():
    if _NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_NAME, PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]


transport = load()
Connection = transport.Connection
request = transport.request
