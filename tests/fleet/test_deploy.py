"""The deployment files, checked offline: the Prometheus rules (promtool check and unit tests),
the Grafana dashboard's structure, and the Kubernetes manifests (kubernetes-validate's bundled
schemas, plus the properties docs/fleet.md promises). The queries of the dashboard and the rules
themselves run against a real Prometheus in test_fleet.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet import DEPLOY

PROM = DEPLOY / "prometheus"
K8S = DEPLOY / "kubernetes/energyd.yaml"
DASHBOARD = DEPLOY / "grafana/energy-fleet.json"


def promtool(*args):
    exe = shutil.which("promtool")
    assert exe, "promtool (Debian package prometheus) is needed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, cwd=PROM)


def test_promtool_check_rules():
    r = promtool("check", "rules", "energy-rules.yml", "energy-alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 9 rules found" in r.stdout and "SUCCESS: 5 rules found" in r.stdout


def test_promtool_test_rules():
    r = promtool("test", "rules", "energy-rules.test.yml")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_rule_has_a_unit_test():
    tests = (PROM / "energy-rules.test.yml").read_text()
    for f in ("energy-rules.yml", "energy-alerts.yml"):
        for g in yaml.safe_load((PROM / f).read_text())["groups"]:
            for r in g["rules"]:
                name = r.get("record") or r.get("alert")
                assert (f"expr: {name}\n" in tests or f"alertname: {name}\n" in tests), name


def dashboard_targets(dash: dict):
    for p in dash["panels"]:
        for t in p["targets"]:
            yield p, t


def test_dashboard_is_datasource_templated():
    dash = json.loads(DASHBOARD.read_text())
    ds_vars = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert [v["query"] for v in ds_vars] == ["prometheus"]
    name = ds_vars[0]["name"]
    n = 0
    for p, t in dashboard_targets(dash):
        for obj in (p, t):
            assert obj["datasource"] == {"type": "prometheus", "uid": f"${{{name}}}"}, p["title"]
        n += 1
    assert n >= 15
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def kubernetes_validate() -> str:
    """The kubernetes-validate of this Python environment (requirements-test.txt)."""
    exe = Path(sys.executable).parent / "kubernetes-validate"
    exe = str(exe) if exe.exists() else shutil.which("kubernetes-validate")
    assert exe, "kubernetes-validate (requirements-test.txt) is needed"
    return exe


def test_kubernetes_validate():
    exe = kubernetes_validate()
    r = subprocess.run([exe, "--strict", str(K8S)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("passed") == 5, r.stdout


def test_kubernetes_validate_catches_a_bad_manifest(tmp_path):
    """The validator is not a formality: an unknown field and a wrong type fail."""
    docs = list(yaml.safe_load_all(K8S.read_text()))
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnly"] = True
    ds["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = []
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(ds))
    r = subprocess.run([kubernetes_validate(), "--strict", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stdout


def test_daemonset_least_privilege_and_paths():
    docs = {d["kind"]: d for d in yaml.safe_load_all(K8S.read_text())}
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    assert not pod.get("hostPID") and not pod.get("hostNetwork") and not pod.get("hostIPC")
    assert pod["automountServiceAccountToken"] is False
    vols = {v["name"]: v for v in pod["volumes"]}
    energyd = next(c for c in pod["containers"] if c["name"] == "energyd")
    mounts = {m["name"]: m for m in energyd["volumeMounts"]}
    # host /sys and /proc read-only, where the config points energyd
    for name, host in (("host-sys", "/sys"), ("host-proc", "/proc")):
        assert vols[name]["hostPath"]["path"] == host and mounts[name]["readOnly"] is True
    conf = docs["ConfigMap"]["data"]["energyd.conf"]
    assert "sysfs_root = /host/sys" in conf and "proc_root = /host/proc" in conf
    # the socket on the host, where the Debian package puts it; the package's account
    assert vols["socket-dir"]["hostPath"]["path"] == "/run/energyd"
    assert mounts["socket-dir"]["mountPath"] == "/run/energyd"
    assert "listen = unix:/run/energyd/energyd.sock" in conf and "user = energyd" in conf
    # loopback only for energyd's TCP listener; the sidecar passes /metrics only
    assert "listen = 127.0.0.1:9469" in conf
    assert "location = /metrics" in docs["ConfigMap"]["data"]["metrics-proxy.conf"]
    # capabilities: everything dropped but what the privilege drop needs
    sc = energyd["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) <= {"SETUID", "SETGID", "CHOWN"}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert not sc.get("privileged")
    for c in pod["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert "memory" in c["resources"]["limits"]
    # scrape annotations on the pods and the Service, on the sidecar's port
    for meta in (docs["DaemonSet"]["spec"]["template"]["metadata"], docs["Service"]["metadata"]):
        ann = meta["annotations"]
        assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9470"
        assert ann["prometheus.io/path"] == "/metrics"
