#!/usr/bin/env python3
"""The man pages, the example configuration and docs/energyd.md list the same options as the
binaries' --help. Usage: check_sync.py ENERGYD ENERGY (run by `meson test` as docs_sync).

Each check prints what is missing on which side and the script exits 1 if any differs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def help_text(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def man_flags(page):
    """Options a page documents: `Fl Fl name` (long) anywhere in its macros."""
    text = (ROOT / "man" / page).read_text()
    return set(re.findall(r"\bFl Fl ([a-z][a-z0-9-]*)", text))


def conf_keys(path):
    keys = {}
    section = None
    for line in path.read_text().splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#?([a-z][a-z0-9_]*) = ", line)
        if m:
            keys.setdefault(section, set()).add(m.group(1))
    return keys


def doc_table_keys(path, pattern):
    return {m.group(1) for line in path.read_text().splitlines()
            if (m := re.match(pattern, line))}


failures = []


def same(what, a_name, a, b_name, b):
    if a != b:
        failures.append(f"{what}: only in {a_name}: {sorted(a - b)}; only in {b_name}: "
                        f"{sorted(b - a)}")
    else:
        print(f"ok {what}: {len(a)} entries")


def main():
    energyd, energy = sys.argv[1], sys.argv[2]
    d_help = set(FLAG.findall(help_text(energyd, "--help")))
    same("energyd(8) options", "energyd --help", d_help, "man/energyd.8", man_flags("energyd.8"))

    # energy: the main usage, and the usages run and export print when called without a command.
    c_help = set()
    for args in (["--help"], ["run"], ["export"]):
        c_help |= set(FLAG.findall(help_text(energy, *args)))
    same("energy(1) options", "energy --help/run/export usage", c_help, "man/energy.1",
         man_flags("energy.1"))

    conf = conf_keys(ROOT / "deploy" / "energyd.conf")
    not_keys = {"config", "help", "version"}
    # [influxdb] KEY in the file is the flag --influxdb-KEY (docs/energyd.md#influxdb).
    influx = {k for k in d_help if k.startswith("influxdb-")}
    d_keys = {k.replace("-", "_") for k in d_help - not_keys - influx}
    same("[influxdb] keys", "energyd --help", {k[len("influxdb-"):].replace("-", "_") for k in influx},
         "deploy/energyd.conf", conf.get("influxdb", set()))
    same("[energyd] keys", "energyd --help", d_keys, "deploy/energyd.conf",
         conf.get("energyd", set()))
    docs = doc_table_keys(ROOT / "docs" / "energyd.md", r"^\| `--([a-z0-9-]+)")
    same("[energyd] keys", "docs/energyd.md",
         {k.replace("-", "_") for k in docs - not_keys if not k.startswith("influxdb-")},
         "deploy/energyd.conf", conf.get("energyd", set()))
    # The key table has three columns (key, default, meaning); the provider table has four.
    carbon = doc_table_keys(ROOT / "docs" / "carbon.md", r"^\| `([a-z_]+)` \|[^|]+\|[^|]+\|$")
    same("[carbon] keys", "docs/carbon.md", carbon, "deploy/energyd.conf",
         conf.get("carbon", set()))
    page = (ROOT / "man" / "energyd.conf.5").read_text()
    same("energyd.conf(5) keys", "deploy/energyd.conf",
         conf.get("energyd", set()) | conf.get("carbon", set()) | conf.get("influxdb", set()),
         "man/energyd.conf.5",
         set(re.findall(r"^\.It Ic ([a-z0-9_]+) No =", page, re.M)))

    # The example parses: energyd reads --config before it looks at --help.
    r = subprocess.run([energyd, "--config", str(ROOT / "deploy" / "energyd.conf"), "--help"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        failures.append(f"deploy/energyd.conf does not parse: {r.stderr.strip()}")
    else:
        print("ok deploy/energyd.conf parses")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
