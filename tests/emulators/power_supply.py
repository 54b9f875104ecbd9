"""A fake ``class/power_supply`` tree with batteries (BAT0, ...) and an AC adapter.

Each battery has ``type`` (Battery), ``status`` and either ``power_now`` (uW) or
``current_now`` (uA) and ``voltage_now`` (uV). Values are rewritten in place, padded, because
energyd keeps the files open.
"""

from __future__ import annotations

import os

from emulators.valuelog import ValueLog

WIDTH = 24


class FakeBattery:
    def __init__(self, sysfs_root, name="BAT0", status="Discharging", power_uw=None,
                 current_ua=None, voltage_uv=None):
        self.dir = os.path.join(str(sysfs_root), f"devices/LNXSYSTM:00/PNP0C0A:00/power_supply/{name}")
        os.makedirs(self.dir)
        cls = os.path.join(str(sysfs_root), "class/power_supply")
        os.makedirs(cls, exist_ok=True)
        os.symlink(os.path.relpath(self.dir, cls), os.path.join(cls, name))
        ac = os.path.join(cls, "AC")
        if not os.path.exists(ac):
            os.makedirs(ac)
            for fname, value in (("type", "Mains"), ("online", "0")):
                with open(os.path.join(ac, fname), "w") as f:
                    f.write(value + "\n")
        with open(os.path.join(self.dir, "type"), "w") as f:
            f.write("Battery\n")
        self._fds: dict[str, int] = {}
        self.log = ValueLog()  # file -> values written, with their times
        self.set("status", status)
        for fname, value in (("power_now", power_uw), ("current_now", current_ua),
                             ("voltage_now", voltage_uv)):
            if value is not None:
                self.set(fname, value)

    def set(self, fname: str, value) -> None:
        if fname not in self._fds:
            self._fds[fname] = os.open(os.path.join(self.dir, fname),
                                       os.O_RDWR | os.O_CREAT, 0o444)
        os.pwrite(self._fds[fname], f"{value}\n".ljust(WIDTH).encode(), 0)
        self.log.record(fname, value)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
