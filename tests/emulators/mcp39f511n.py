"""An MCP39F511N power monitor on a pseudo-terminal, speaking the datasheet's frame format.

Commands: ``0xA5, length, instructions..., checksum`` (checksum = sum of the preceding bytes mod
256). Instructions: ``0x41 hi lo`` set the address pointer, ``0x4E n`` read n bytes (reply
``0x06, n+3, data, checksum``), ``0x4D n data...`` write (reply a bare ``0x06``). A frame with a
wrong checksum gets ``0x51`` (CSFAIL); an unknown instruction or a read outside the register
map gets ``0x15`` (NAK). Registers hold a power profile: the active power of channel 1 at 0x0016
and channel 2 at 0x001A, little-endian u32 in 10 mW counts at the factory range, whose Range
register (0x009C) says so.

Faults, set with ``fault`` (one at a time, None to behave):

* ``"garbage"``: answer noise instead of a reply (including ACK bytes with wrong lengths);
* ``"garbage_prefix"``: noise first, then the valid reply (the client must resynchronise);
* ``"checksum"``: the reply with a corrupted checksum;
* ``"nak"``: answer 0x15 to everything;
* ``"silence"``: answer nothing;
* ``"disconnect"``: close the pty (the client sees EIO/hang-up, as on unplug) and remove the
  device link; ``reconnect()`` creates a new pty behind the same link, like replugging.

The device link (e.g. ``<dir>/ttyACM0``) is a symlink to the pty's slave, made world-readable so
that energyd can reopen it after dropping root.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
import tty

ACK, NAK, CSFAIL = 0x06, 0x15, 0x51
REG_STATUS, REG_POWER_1, REG_POWER_2 = 0x0002, 0x0016, 0x001A
REG_RANGE = (0x00AE, 0x00BE)
SIGN_PA = (1 << 4, 1 << 6)  # System Status: 1 = import
FACTORY_RANGE = (18, 12, 19)  # voltage, current, power
NOISE = bytes([0x00, 0xFF, 0x06, 0x02, 0x13, 0x37, 0x06, 0xEE, 0x42, 0x99, 0x06])


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


class McpSimulator:
    def __init__(self, link: str, watts=(0.0, 0.0)):
        self.link = str(link)
        self.registers = bytearray(0x100)
        self.served: list[tuple[float, float, float]] = []
        for ch in (1, 2):
            self.set_range(ch, *FACTORY_RANGE)
        self.set_sign(1, True)
        self.set_sign(2, True)
        self.set_watts(*watts)
        self.fault: str | None = None
        self.requests = 0
        self.garbage_sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._master = -1
        self._thread: threading.Thread | None = None
        self._plug()

    # -- registers ----------------------------------------------------------------------------

    def watts_per_count(self, ch: int) -> float:
        return 0.01 * 2.0 ** (self.registers[REG_RANGE[ch - 1] + 2] - 19)

    def set_watts(self, w1: float, w2: float) -> None:
        """Active power of each channel in watts, rounded to the channel's count; negative
        means export (sign bit cleared, magnitude in the register)."""
        counts = [round(abs(w) / self.watts_per_count(ch)) for ch, w in ((1, w1), (2, w2))]
        self.set_counts(*counts)
        self.set_sign(1, w1 >= 0)
        self.set_sign(2, w2 >= 0)

    def set_counts(self, c1: int, c2: int) -> None:
        """The raw active power registers, whatever the ranges say they mean."""
        self.registers[REG_POWER_1:REG_POWER_1 + 4] = struct.pack("<I", c1)
        self.registers[REG_POWER_2:REG_POWER_2 + 4] = struct.pack("<I", c2)

    def set_sign(self, ch: int, import_: bool) -> None:
        status = struct.unpack_from("<H", self.registers, REG_STATUS)[0]
        status = status | SIGN_PA[ch - 1] if import_ else status & ~SIGN_PA[ch - 1]
        struct.pack_into("<H", self.registers, REG_STATUS, status)

    def set_range(self, ch: int, volts: int = 18, amps: int = 12, power: int = 19) -> None:
        """Channel ch's Range register (a count of right shifts per quantity)."""
        at = REG_RANGE[ch - 1]
        self.registers[at:at + 4] = bytes([volts, amps, power, 0])

    @property
    def watts(self) -> tuple[float, float]:
        """What the registers mean now, in watts (export negative)."""
        status = struct.unpack_from("<H", self.registers, REG_STATUS)[0]
        out = []
        for ch, reg in ((1, REG_POWER_1), (2, REG_POWER_2)):
            w = struct.unpack_from("<I", self.registers, reg)[0] * self.watts_per_count(ch)
            out.append(w if status & SIGN_PA[ch - 1] else -w)
        return out[0], out[1]

    # -- the pty ------------------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        name = os.ttyname(slave)
        os.close(slave)  # energyd opens it by name
        os.chmod(name, 0o666)
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(name, self.link)
        self._master = master
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(master,), daemon=True)
        self._thread.start()

    def _unplug(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        if os.path.lexists(self.link):
            os.unlink(self.link)

    def set_fault(self, fault: str | None) -> None:
        if fault == "disconnect":
            self.fault = fault
            self._unplug()
            return
        self.fault = fault

    def reconnect(self) -> None:
        """Plug the meter back in (after "disconnect") and behave."""
        self.fault = None
        if self._master < 0:
            self._plug()

    def close(self) -> None:
        self._unplug()

    # -- protocol -----------------------------------------------------------------------------

    def _serve(self, master: int) -> None:
        buf = b""
        while not self._stop.is_set():
            r, _, _ = select.select([master], [], [], 0.02)
            if not r:
                continue
            try:
                chunk = os.read(master, 256)
            except OSError:  # no client has the slave open (between energyd's reopen tries)
                chunk = b""
            if not chunk:
                self._stop.wait(0.01)
                continue
            buf += chunk
            while True:
                start = buf.find(0xA5)
                if start < 0:
                    buf = b""
                    break
                buf = buf[start:]
                if len(buf) < 2 or len(buf) < buf[1]:
                    break
                frame, buf = buf[:buf[1]], buf[buf[1]:]
                reply = self._handle(frame)
                if reply:
                    try:
                        os.write(master, reply)
                    except OSError:
                        pass

    def _handle(self, frame: bytes) -> bytes:
        self.requests += 1
        fault = self.fault
        if fault == "silence":
            return b""
        if fault == "nak":
            return bytes([NAK])
        if fault == "garbage":
            self.garbage_sent += len(NOISE)
            return NOISE
        if checksum(frame[:-1]) != frame[-1]:
            return bytes([CSFAIL])
        reply = self._execute(frame[2:-1])
        if fault == "checksum" and len(reply) > 1:
            reply = reply[:-1] + bytes([(reply[-1] + 1) & 0xFF])
        if fault == "garbage_prefix":
            self.garbage_sent += len(NOISE)
            reply = NOISE + reply
        return reply

    def _execute(self, ins: bytes) -> bytes:
        pointer, i, out = 0, 0, b""
        while i < len(ins):
            op = ins[i]
            if op == 0x41 and i + 2 < len(ins):
                pointer = ins[i + 1] << 8 | ins[i + 2]
                i += 3
            elif op == 0x4E and i + 1 < len(ins):
                n = ins[i + 1]
                if pointer + n > len(self.registers):
                    return bytes([NAK])
                data = bytes(self.registers[pointer:pointer + n])
                if pointer <= REG_POWER_1 and pointer + n >= REG_POWER_2 + 4:
                    self.served.append((time.time(), *self.watts))
                head = bytes([ACK, n + 3]) + data
                out = head + bytes([checksum(head)])
                i += 2
            elif op == 0x4D and i + 1 < len(ins):
                n = ins[i + 1]
                data = ins[i + 2:i + 2 + n]
                if len(data) != n or pointer + n > len(self.registers):
                    return bytes([NAK])
                self.registers[pointer:pointer + n] = data
                out = bytes([ACK])
                i += 2 + n
            else:
                return bytes([NAK])
        return out


def usb_sysfs(sysfs_root, name="ttyACM0", vendor="04d8", product="00dd", port="1-1") -> None:
    """The sysfs entries of a USB CDC-ACM device as the kernel lays them out:
    class/tty/ttyACM0/device -> .../usb1/1-1/1-1:1.0, with idVendor/idProduct in 1-1."""
    root = str(sysfs_root)
    usbdev = os.path.join(root, f"devices/pci0000:00/0000:00:14.0/usb1/{port}")
    iface = os.path.join(usbdev, f"{port}:1.0")
    tty_dir = os.path.join(iface, "tty", name)
    os.makedirs(tty_dir, exist_ok=True)
    for fname, value in (("idVendor", vendor), ("idProduct", product)):
        with open(os.path.join(usbdev, fname), "w") as f:
            f.write(value + "\n")
    os.symlink(os.path.relpath(iface, tty_dir), os.path.join(tty_dir, "device"))
    cls = os.path.join(root, "class/tty")
    os.makedirs(cls, exist_ok=True)
    os.symlink(os.path.relpath(tty_dir, cls), os.path.join(cls, name))
