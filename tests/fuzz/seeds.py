#!/usr/bin/env python3
"""Write the seed corpus of each fuzz target (tests/fuzz/corpus/<target>/seed-*).

The seeds are real inputs: the carbon providers' answers as tests/emulators/carbon_providers.py
serves them, MCP39F511N replies as tests/emulators/mcp39f511n.py sends them (noise included),
config files as the docs and the integration tests write them, and HTTP requests to every
route. Regenerate after changing an emulator: python3 tests/fuzz/seeds.py. Inputs found by
fuzzing (reproducers of fixed bugs) live next to them as crash-*; this script leaves them alone.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.emulators import carbon_providers as cp  # noqa: E402
from tests.emulators import mcp39f511n as mcp  # noqa: E402

START = datetime(2026, 11, 21, 22, 0, tzinfo=timezone.utc)


class _FixedNow(datetime):
    """The emulators stamp answers with the time: fixed here, so that seeds do not change."""

    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 11, 22, 0, 5, tzinfo=timezone.utc)


cp.datetime = _FixedNow
# The series of tests/integration/test_carbon.py: PT15M and PT60M, an A03 curve with left-out
# positions, a consumption series.
ENTSOE_SERIES = [
    {"psr": "B19", "resolution": "PT15M", "quantities": [100, 200, 300, 400, 500, 600, 800, 900]},
    {"psr": "B04", "resolution": "PT15M", "curve": "A03",
     "quantities": [450, 450, 420, None, None, None, 400, None]},
    {"psr": "B14", "resolution": "PT60M", "quantities": [650, 700]},
    {"psr": "B10", "resolution": "PT15M", "out": True, "quantities": [2000] * 8},
    {"psr": "B99", "resolution": "PT30M", "quantities": [50] * 4},
]
RTE_RECORD = {
    "perimetre": "France", "date": "2026-11-22", "heure": "01:30",
    "date_heure": "2026-11-22T00:30:00+00:00", "consommation": 55012, "fioul": 120,
    "charbon": 3, "gaz": 3100, "nucleaire": 41000, "eolien": 5200, "solaire": 0,
    "hydraulique": 6400, "pompage": -900, "bioenergies": 1100, "ech_physiques": -2900,
    "taux_co2": 23, "hydraulique_step_turbinage": 800, "stockage_batterie": -12,
    "destockage_batterie": 30}
EM_BREAKDOWN = {"nuclear": 0, "geothermal": None, "biomass": 3000, "coal": 9000, "wind": 21000,
                "solar": 4000, "hydro": 1500, "gas": 6000, "oil": 500, "unknown": 400,
                "hydro discharge": 600, "battery discharge": 0}


class _Headers:
    def __init__(self, headers: dict):
        self.headers = headers


def carbon_answers() -> tuple[dict, dict]:
    """What the emulated providers answer, through their own code (no socket)."""
    p = cp.Providers.__new__(cp.Providers)  # the answers only: no server thread
    p.entsoe_series = ENTSOE_SERIES
    p.entsoe_ack = None
    p.uk_intensity = {"forecast": 180, "actual": 176}
    p.uk_mix = [("biomass", 5.0), ("coal", 1.0), ("imports", 9.0), ("gas", 35.0),
                ("nuclear", 14.0), ("other", 0.0), ("hydro", 2.0), ("solar", 4.0),
                ("wind", 30.0)]
    p.rte_record = RTE_RECORD
    p.em_intensity = 302
    p.em_breakdown = EM_BREAKDOWN
    em = _Headers({"auth-token": cp.EM_TOKEN})
    q = {"securityToken": cp.ENTSOE_TOKEN, "periodStart": START.strftime("%Y%m%d%H%M"),
         "in_Domain": "10Y1001A1001A82H"}
    xml = {
        "a75": p._answer("/entsoe/api", q, None)[2],
        "a75-one-series": cp.a75_document("10YFR-RTE------C", START, ENTSOE_SERIES[:1]),
        "ack-no-data": cp.acknowledgement("No matching data found for Data item "
                                          "ACTUAL_GENERATION_PER_PRODUCTION_TYPE"),
        "ack-unauthorized": p._answer("/entsoe/api", {}, None)[2],
    }
    js = {
        "uk-intensity": p._answer("/uk/intensity", {}, None)[2],
        "uk-generation": p._answer("/uk/generation", {}, None)[2],
        "rte": p._answer("/rte", {}, None)[2],
        "em-intensity": p._answer("/em/carbon-intensity/latest", {"zone": "DE"}, em)[2],
        "em-breakdown": p._answer("/em/power-breakdown/latest", {"zone": "DE"}, em)[2],
        "em-unauthorized": p._answer("/em/carbon-intensity/latest", {}, _Headers({}))[2],
    }
    return xml, js


def mcp_replies() -> dict:
    """First byte: the length of the read the reply answers (fuzz_mcp.c); then the bytes."""
    regs = bytearray(0x100)
    regs[mcp.REG_POWER_1:mcp.REG_POWER_1 + 4] = (12345).to_bytes(4, "little")
    regs[mcp.REG_POWER_2:mcp.REG_POWER_2 + 4] = (678).to_bytes(4, "little")
    # Each channel's Range register: voltage, current and power range bytes, then a reserved one;
    # channel 2 at 2.5 mW per count (power range 17) so that the two scalings differ.
    for reg, rng in zip(mcp.REG_RANGE, (mcp.FACTORY_RANGE, (18, 12, 17))):
        regs[reg:reg + 4] = bytes([*rng, 0])

    def reply(addr: int, n: int) -> bytes:
        body = bytes([mcp.ACK, n + 3]) + bytes(regs[addr:addr + n])
        return body + bytes([mcp.checksum(body)])

    power = reply(mcp.REG_POWER_1, 8)
    regs[mcp.REG_RANGE[0] + 2] = 40  # beyond the plausible power ranges: factory scaling
    implausible = reply(mcp.REG_RANGE[0], 4)
    regs[mcp.REG_RANGE[0] + 2] = mcp.FACTORY_RANGE[2]
    bad = bytearray(power)
    bad[-1] ^= 0xFF
    return {
        "power": bytes([8]) + power,
        "range": bytes([4]) + reply(mcp.REG_RANGE[0], 4),
        "range-2": bytes([4]) + reply(mcp.REG_RANGE[1], 4),
        "range-implausible": bytes([4]) + implausible,
        "write-ack": bytes([0, mcp.ACK]),
        "noise-then-power": bytes([8]) + mcp.NOISE + power,
        "bad-checksum": bytes([8]) + bytes(bad),
        "nak": bytes([8, mcp.NAK]),
        "csfail-then-power": bytes([8, mcp.CSFAIL]) + power,
        "truncated": bytes([8]) + power[:5],
    }


CONFIGS = {
    "energyd-doc": "[energyd]\ninterval = 0.1\nuser = energyd\n"
                   "listen = unix:/run/energyd/energyd.sock\n",
    "carbon-entsoe": "[carbon]\nprovider = entsoe\nzone = 10Y1001A1001A82H\n"
                     "token_file = /etc/energyd/entsoe.token\n"
                     "price_schedule = 06:00=0.34, 22:00=0.27\ncurrency = EUR\n",
    "carbon-constant": "[carbon]\nprovider = constant\nintensity_g_per_kwh = 250\n"
                       "price_per_kwh = 0.2\ncurrency = CHF\n",
    "carbon-static": "[carbon]\nprovider = static\ncountry = FR\n"
                     "price_schedule = 00:00=0.15, 07:00=0.30, 23:00=0.15\ncurrency = EUR\n",
    "test-api": "# test\n[energyd]\ninterval = 0.25\nmodel_idle_watts = 9\n",
    "everything": "[energyd]\ninterval = 0.5\nmin-interval = 0.05\nhistory = 3600\n"
                  "state-dir = /tmp/x\nstore = off\nstore-batch = 5\nstore-keep-1s = 2h\n"
                  "store-keep-1m = 30d\nstore-keep-1h = forever\nstore-memory = 600\n"
                  "mcp = /dev/ttyACM0\nmcp = /dev/ttyACM1\nmsr-vendor = amd\n"
                  "host-meter = mcp:ttyACM0:1\nscan-interval = 2\nattribute-dram = none\n"
                  "listen = 127.0.0.1:8123\nlisten = unix:/tmp/e.sock\n"
                  "model-idle-watts = 10\nmodel-max-watts = 65\n[carbon]\nprovider = uk\n"
                  "refresh_s = 600\ntimeout_s = 5\nbase_url = http://127.0.0.1:1/uk\n",
    "bad-section": "[carbon]\nprovider = coal\n",
}

QUERIES = {
    "unix": "1700000000\n1700003600\n100\n",
    "iso": "2026-11-21T22:00Z\n2026-11-21T23:00:30.250+01:00\n1e3\n",
    "iso-date": "2026-02-28\n2026-03-01 00:00\n0.5\n",
    "from-only": "0\n",
}


def http(method: str, target: str, body: str = "", headers: str = "") -> str:
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n{headers}"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
    return head + "\r\n" + body


REQUESTS = {
    "info": http("GET", "/api/v1/info"),
    "sources": http("GET", "/api/v1/sources"),
    "now": http("GET", "/api/v1/now"),
    "history": http("GET", "/api/v1/history?seconds=60&max_points=100"),
    "energy": http("GET", "/api/v1/energy?from=0"),
    "energy-iso": http("GET", "/api/v1/energy?from=2026-11-21T22:00Z&to=2026-11-21T23:00:00Z"),
    "energy-scope-pid": http("GET", "/api/v1/energy?from=1700000000&scope=pid:1"),
    "energy-scope-kernel": http("GET", "/api/v1/energy?from=0&scope=kernel:kernel-1"),
    "energy-scope-cgroup": http("GET", "/api/v1/energy?from=0&scope=cgroup:/user.slice"),
    "energy-scope-user": http("GET", "/api/v1/energy?from=0&to=1790000000&scope=user:0"),
    "longterm": http("GET", "/api/v1/longterm?from=0&step=60&tier=1m"),
    "carbon": http("GET", "/api/v1/carbon?from=0&series=1"),
    "stream": http("GET", "/api/v1/stream"),
    "metrics": http("GET", "/metrics"),
    "processes": http("GET", "/api/v1/processes?top=10&user=0"),
    "watch-list": http("GET", "/api/v1/watch"),
    "model": http("GET", "/api/v1/model"),
    "watch-post": http("POST", "/api/v1/watch", json.dumps({"pid": 1, "label": "kernel-1"})),
    "watch-cgroup": http("POST", "/api/v1/watch",
                         json.dumps({"cgroup": "/user.slice", "label": "u"})),
    "watch-delete": http("DELETE", "/api/v1/watch/1"),
    "two-requests": http("GET", "/api/v1/now", headers="Connection: keep-alive\r\n")
    + http("HEAD", "/api/v1/info", headers="Connection: close\r\n"),
    "unknown": http("PUT", "/nowhere?x=%ff%fe"),
}


def _stat(pid: int, comm: str, utime: int = 250, starttime: int = 98765) -> str:
    """A PID/stat line as tests/emulators/procfs.py (and fs/proc/array.c) writes it."""
    return (f"{pid} ({comm}) R 1 {pid} {pid} 0 -1 4194304 0 0 0 0 {utime} 30 12 8 20 0 1 0 "
            f"{starttime} 1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")


# PID/stat lines (command names a process may choose) and cgroup cpu.stat files.
PROCFS = {
    "stat": _stat(4242, "python3"),
    "stat-spaces-parens": _stat(7, "my (odd) cmd"),
    "stat-forged-fields": _stat(8, "x) S 1 1 1 0 -1 0 0 0 0 0 999999 999999 9 9 20 0 1 0 1"),
    "stat-negative-nice": "9 (rt) S 1 9 9 -5 -1 0 0 0 0 0 5 6 7 8 -51 -20 1 0 321\n",
    "stat-truncated": _stat(10, "cut")[:60],
    "cpu-stat": "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n",
}


def write(target: str, name: str, data: str | bytes) -> None:
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data.encode() if isinstance(data, str) else data)


def main() -> None:
    xml, js = carbon_answers()
    for name, text in xml.items():
        write("carbon_entsoe", name, text)
    for name, text in js.items():
        write("carbon_json", name, text)
    for name, data in mcp_replies().items():
        write("mcp", name, data)
    for name, text in CONFIGS.items():
        write("config", name, text)
    for name, text in QUERIES.items():
        write("query", name, text)
    for name, text in REQUESTS.items():
        write("http", name, text)
    for name, text in PROCFS.items():
        write("procfs", name, text)


if __name__ == "__main__":
    main()
