"""`energy sources` on a machine with none of the sensor families: every family is listed with
why it is missing and what to do about it."""

import os
import subprocess

from conftest import ENERGY
from emulators.powercap import write_proc_stat


def test_sources_explains_every_missing_family(tmp_path, start_energyd):
    # An Intel machine without RAPL access, msr driver, meter, GPU, hwmon sensor or battery:
    # CPU topology and /proc only (a typical virtual machine).
    topo = tmp_path / "sys/devices/system/cpu/cpu0/topology"
    topo.mkdir(parents=True)
    (topo / "physical_package_id").write_text("0\n")
    (topo / "core_id").write_text("0\n")
    write_proc_stat(tmp_path / "proc", busy=100, idle=900, ncpu=1)
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n")
    (tmp_path / "dev").mkdir()
    d = start_energyd(tmp_path / "sys", "--dev-root", str(tmp_path / "dev"),
                      "--nvml-lib", "libnvidia-ml.so.1", proc_root=tmp_path / "proc")
    env = {**os.environ, "ENERGYD_SOCKET": f"unix:{d.socket}"}
    r = subprocess.run([str(ENERGY), "sources"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()
             if line.startswith("  ") and len(line.split()) > 2}
    # Each family: its status, and the words of the explanation and the fix.
    expect = {
        "perf": ("absent", ["no perf power PMU", "virtual machine"]),
        "powercap": ("absent", ["no intel-rapl zones", "modprobe intel_rapl_msr"]),
        "msr": ("absent", ["/cpu/0/msr", "modprobe msr", "root"]),
        "mcp": ("absent", ["no MCP39F511N", "04d8:00dd", "--mcp /dev/ttyACM0"]),
        "nvml": ("absent", ["cannot load libnvidia-ml.so.1", "no NVIDIA driver", "--nvml-lib"]),
        "hwmon": ("absent", ["no hwmon device", "energyN_input", "driver"]),
        "battery": ("absent", ["no BAT*", "not a laptop"]),
        "model": ("found", ["estimated"]),
    }
    for family, (status, words) in expect.items():
        assert family in lines, (family, r.stdout)
        assert lines[family].split()[1] == status, lines[family]
        for w in words:
            assert w in lines[family], (family, w, lines[family])
    # The API says the same.
    fam = {f["name"]: f for f in d.get("/api/v1/sources")["families"]}
    assert set(fam) == set(expect)
    assert "Host total: model:cpu" in r.stdout
