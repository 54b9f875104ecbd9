"""The hub service's Kubernetes path: per-user figures read through a real Prometheus.

Two emulated nodes' energyd metrics are served on 127.0.0.1 (the fleet metrics' names:
``energy_user_joules_total{uid,user}``, ``energy_host_joules_total``,
``energy_host_emissions_grams_total``), each counter growing at a known rate; Prometheus
(Debian's) scrapes them every second.  Over a period of P seconds a user's joules must be the sum
of their rates on both nodes × P, their emissions each node's grams per joule × their joules
there: within 1.2 scrape intervals' worth of the period plus 3 % (Prometheus' increase()
extrapolates to the window's ends from the samples inside it, and falls short by up to about one
scrape interval when a sample lies just outside an end: seen here as 0.7 to 0.9 s).
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, wait_until

from jupyter_energy.hub import PrometheusUsage

SCRAPE_S = 1.0

# node → (host W, grams CO2eq per joule, {user: W})
NODES = {
    "node-a": (100.0, 0.0001, {"alice": 30.0, "bob": 10.0}),
    "node-b": (50.0, 0.0003, {"bob": 20.0}),
}


def exporter(node: str, started: float):
    host_w, g_per_j, users = NODES[node]

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            dt = time.time() - started
            lines = [f'energy_host_joules_total{{measured="true"}} {host_w * dt:.6f}',
                     f'energy_host_emissions_grams_total{{provider="static",zone="x"}} '
                     f'{host_w * dt * g_per_j:.9f}']
            lines += [f'energy_user_joules_total{{uid="{1000 + i}",user="{u}"}} {w * dt:.6f}'
                      for i, (u, w) in enumerate(sorted(users.items()))]
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def prometheus():
    exe = shutil.which("prometheus")
    if not exe:
        pytest.fail("prometheus is not installed (Debian package prometheus, scripts/deps.d)")
    started = time.time()
    servers = {n: exporter(n, started) for n in NODES}
    root = Path(tempfile.mkdtemp(prefix="je-prom-"))
    port = free_port()
    targets = ", ".join(f"'127.0.0.1:{s.server_address[1]}'" for s in servers.values())
    (root / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {SCRAPE_S:.0f}s, scrape_timeout: {SCRAPE_S:.0f}s, "
        "evaluation_interval: 1s}\n"
        f"scrape_configs:\n- job_name: energyd\n  static_configs:\n  - targets: [{targets}]\n")
    log = root / "prometheus.log"
    proc = subprocess.Popen([exe, f"--config.file={root / 'prometheus.yml'}",
                             f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200
        except OSError:
            return False
    try:
        wait_until("prometheus ready", ready, 60, proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        for s in servers.values():
            s.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def test_users_energy_and_emissions_summed_over_nodes(prometheus):
    period = 15.0
    usage = PrometheusUsage(prometheus)

    def covered():  # both nodes scraped all through the period (Prometheus starts scraping late)
        counts = usage._vector(f"count_over_time(energy_host_joules_total[{period + 1:.0f}s])",
                               time.time())
        return len(counts) == 2 and all(float(c["value"][1]) >= period + 1 for c in counts)
    wait_until("Prometheus holding the whole period", covered, 60)
    t1 = time.time() - 1.5  # the newest scrapes stored
    rel = 1.2 * SCRAPE_S / period + 0.03
    head, rows = usage.rows(["alice", "bob", "carol"], t1 - period, t1)
    got = {r["user"]: r for r in rows}
    assert head["source"] == "prometheus"
    host_j = sum(w for w, _, _ in NODES.values()) * period
    assert head["machine"]["joules"] == pytest.approx(host_j, rel=rel)
    for user in ("alice", "bob"):
        joules = sum(u.get(user, 0.0) for _, _, u in NODES.values()) * period
        grams = sum(u.get(user, 0.0) * g for _, g, u in NODES.values()) * period
        assert got[user]["joules"] == pytest.approx(joules, rel=rel), got[user]
        assert got[user]["emissions_g"] == pytest.approx(grams, rel=rel), got[user]
        assert got[user]["share"] == pytest.approx(got[user]["joules"] / head["machine"]["joules"])
        assert got[user]["measured"] is False
    # bob's emissions weigh node-b's dirtier energy: not just his joules × the fleet's mean.
    assert got["bob"]["emissions_g"] > got["alice"]["emissions_g"]
    assert got["carol"]["joules"] is None  # no metrics for her: unknown, not 0
