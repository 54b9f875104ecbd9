"""A fake ``class/hwmon`` tree: devices with ``name`` and energyN_input / powerN_* attributes.

Laid out as the kernel does: device directories under ``devices/`` with a symlink
``class/hwmon/hwmonK`` to each. Values are rewritten in place (``pwrite`` at offset 0, padded),
because energyd keeps the files open.
"""

from __future__ import annotations

import os

from emulators.valuelog import ValueLog

WIDTH = 24


class FakeHwmon:
    def __init__(self, sysfs_root):
        self.root = str(sysfs_root)
        self.count = 0
        self._fds: dict[str, int] = {}
        self.log = ValueLog()  # "hwmonK/file" -> values written, with their times
        os.makedirs(os.path.join(self.root, "class/hwmon"), exist_ok=True)

    def add(self, name: str, attrs: dict[str, int | str]) -> str:
        """A device named name with attributes {file: value}; returns its hwmonK id."""
        hw = f"hwmon{self.count}"
        self.count += 1
        d = os.path.join(self.root, f"devices/pci0000:00/0000:0{self.count}:00.0/hwmon/{hw}")
        os.makedirs(d)
        with open(os.path.join(d, "name"), "w") as f:
            f.write(name + "\n")
        for fname, value in attrs.items():
            path = os.path.join(d, fname)
            if isinstance(value, str):
                with open(path, "w") as f:
                    f.write(value + "\n")
                continue
            self._fds[f"{hw}/{fname}"] = os.open(path, os.O_RDWR | os.O_CREAT, 0o444)
            self.set(hw, fname, value)
        os.symlink(os.path.relpath(d, os.path.join(self.root, "class/hwmon")),
                   os.path.join(self.root, "class/hwmon", hw))
        return hw

    def set(self, hw: str, fname: str, value: int) -> None:
        os.pwrite(self._fds[f"{hw}/{fname}"], f"{value}\n".ljust(WIDTH).encode(), 0)
        self.log.record(f"{hw}/{fname}", value)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
