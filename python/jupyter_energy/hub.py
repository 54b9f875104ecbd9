"""A JupyterHub service: every hub user's energy, share, emissions and cost over a period.

Run by the hub as a managed service (``jupyterhub_config.py``)::

    c.JupyterHub.services = [{
        "name": "energy",
        "command": [sys.executable, "-m", "jupyter_energy.hub"],
        "url": "http://127.0.0.1:10101",
        "oauth_no_confirm": True,
        "environment": {"ENERGYD_SOCKET": "/run/energyd/energyd.sock"},
    }]
    c.JupyterHub.load_roles = [
        {"name": "energy-service", "services": ["energy"], "scopes": ["list:users", "read:users"]},
        {"name": "user", "scopes": ["self", "access:services!service=energy"]},
    ]

Its page is ``/services/energy/`` (the hub's OAuth logs the visitor in); its data
``/services/energy/api/usage?from=T0&to=T1`` (JSON) and ``.../api/usage.csv`` (CSV).  A hub admin
sees one row per hub user; any other user sees only their own row.  Figures come from energyd
(each user's local uid: the CPU-time share of the machine's total, an estimate): for a period
energyd still holds in memory, ``GET /api/v1/energy?scope=user:UID`` per user (to the scan);
for an older one, ``GET /api/v1/users`` once (the long-term record's per-user rows, in whole
minutes, or hours past the minute rows' retention).  On Kubernetes they come from Prometheus
(``--prometheus-url``: the nodes' ``energy_user_joules_total{user}`` counters).  See
docs/jupyterhub.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import pwd
import secrets
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join

from .client import EnergydClient, EnergydError
from .users import user_share

# At most this many users per answer: the answer is one energyd request per user.
MAX_USERS = 2000
DEFAULT_PERIOD_S = 900.0  # energyd keeps 15 min of full-rate history by default
# A period that starts this long after what energyd holds in memory begins (its start, or
# now - history_s) is answered from memory: attribution's series are pruned at each scan.
MEMORY_MARGIN_S = 5.0
CSV_FIELDS = ("user", "uid", "joules", "share", "emissions_g", "cost", "currency", "from", "to",
              "measured", "method")


class HubUsers:
    """The hub's users and whether each is an admin, through the hub's REST API with the
    service's own token (the service's role needs ``list:users`` and ``read:users``)."""

    def __init__(self, api_url: str, token: str, timeout_s: float = 10.0):
        self.api_url = api_url
        self.token = token
        self.timeout_s = timeout_s

    def _get(self, path: str) -> Any:
        req = urllib.request.Request(url_path_join(self.api_url, path),
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return json.loads(resp.read(4 << 20))

    def all(self) -> List[Dict[str, Any]]:
        users = self._get(f"users?limit={MAX_USERS}")
        if isinstance(users, dict):  # paginated answer (JupyterHub >= 2 with the Accept header)
            users = users.get("items", [])
        return [{"name": u["name"], "admin": bool(u.get("admin"))} for u in users][:MAX_USERS]

    def get(self, name: str) -> Dict[str, Any]:
        u = self._get("users/" + urllib.parse.quote(name, safe=""))
        return {"name": u["name"], "admin": bool(u.get("admin"))}


def local_uid(name: str) -> Optional[int]:
    """The local account of a hub user (what LocalProcessSpawner runs the server as)."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


class EnergydUsage:
    """Per-user figures from the machine's energyd (a hub on one machine): from its memory when
    the period lies within what it holds there (second resolution), else from its long-term
    record (``/api/v1/users``: whole minutes)."""

    def __init__(self, socket_path: Optional[str]):
        self.client = EnergydClient(socket_path)

    def held_in_memory(self, t0: float) -> bool:
        info = self.client.get("info")
        held_from = max(float(info.get("started_at") or 0.0),
                        time.time() - float(info.get("history_s") or 0.0))
        return t0 >= held_from + MEMORY_MARGIN_S

    def rows(self, names: List[str], t0: float, t1: float) -> Tuple[Dict[str, Any], List[dict]]:
        if self.held_in_memory(t0):
            return self.rows_in_memory(names, t0, t1)
        return self.rows_from_record(names, t0, t1)

    def rows_from_record(self, names: List[str], t0: float,
                         t1: float) -> Tuple[Dict[str, Any], List[dict]]:
        """One ``/api/v1/users`` answer: energyd sums the record's rows and apportions emissions
        and cost by bucket; this only matches hub users to uids."""
        answer = self.client.get("users", **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
        host = answer.get("host") or {}
        by_uid = {u["uid"]: u for u in answer.get("users") or []}
        span = {"from": answer.get("from"), "to": answer.get("to")}
        recorded = answer.get("recorded_to") is not None
        rows = []
        for name in names:
            uid = local_uid(name)
            row: Dict[str, Any] = {"user": name, "uid": uid, "measured": False, **span,
                                   "method": answer.get("method"), "currency": host.get("currency")}
            if uid is None:
                row["error"] = "no local account of this name on the hub's machine"
            elif not recorded:
                row["error"] = ("energyd's record has no per-user energy yet (attribution off, "
                                "or just started)")
            elif uid in by_uid:
                for k in ("joules", "share", "emissions_g", "cost"):
                    row[k] = by_uid[uid][k]
            elif answer.get("truncated"):
                row["error"] = "not among the users with the most energy that energyd lists"
            else:  # no row in the record: no energy attributed in the period
                row.update({"joules": 0.0, "share": 0.0 if host.get("joules") else None,
                            "emissions_g": 0.0 if host.get("emissions_g") is not None else None,
                            "cost": 0.0 if host.get("cost") is not None else None})
            rows.append(row)
        machine = {"joules": host.get("joules"), "measured": bool(host.get("measured")),
                   "coverage": None, "emissions_g": host.get("emissions_g"),
                   "cost": host.get("cost"), "currency": host.get("currency")}
        return {"source": "energyd", "figures": "record", "resolution_s": answer.get("step_s"),
                "recorded_to": answer.get("recorded_to"), **span, "machine": machine}, rows

    def rows_in_memory(self, names: List[str], t0: float,
                       t1: float) -> Tuple[Dict[str, Any], List[dict]]:
        machine: Dict[str, Any] = {}
        span = {"from": t0, "to": t1}
        resolution = None
        rows = []
        for name in names:
            uid = local_uid(name)
            row: Dict[str, Any] = {"user": name, "uid": uid, "measured": False}
            if uid is None:
                row["error"] = "no local account of this name on the hub's machine"
            else:
                try:
                    answer = self.client.get("energy", scope=f"user:{uid}",
                                             **{"from": f"{t0:.6f}", "to": f"{t1:.6f}"})
                except EnergydError as exc:
                    row["error"] = exc.error
                else:
                    fig = user_share(answer, uid)
                    machine = fig["machine"]
                    span = {"from": fig["from"], "to": fig["to"]}
                    resolution = fig["resolution_s"]
                    for k in ("joules", "share", "emissions_g", "cost", "currency", "method"):
                        row[k] = fig["user"][k]
                    row.update(span)
            rows.append(row)
        return {"source": "energyd", "figures": "memory", "resolution_s": resolution, **span,
                "machine": machine}, rows


class PrometheusUsage:
    """Per-user figures from Prometheus scraping every node's energyd (Kubernetes).

    A user's joules are the sum over nodes of ``increase(energy_user_joules_total[period])``;
    emissions and cost are each node's, in proportion to the user's joules on that node."""

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url
        self.timeout_s = timeout_s

    def _vector(self, query: str, at: float) -> List[dict]:
        qs = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
        with urllib.request.urlopen(f"{self.url.rstrip('/')}/api/v1/query?{qs}",
                                    timeout=self.timeout_s) as resp:
            body = json.loads(resp.read(16 << 20))
        if body.get("status") != "success":
            raise EnergydError(502, "Prometheus: " + str(body.get("error", "query failed")))
        return body["data"]["result"]

    def rows(self, names: List[str], t0: float, t1: float) -> Tuple[Dict[str, Any], List[dict]]:
        rng = f"{max(1, int(round(t1 - t0)))}s"
        per_joule = ("(increase(energy_host_{m}[{r}]) / on(instance) "
                     "increase(energy_host_joules_total[{r}]))")
        user_j = f"increase(energy_user_joules_total[{rng}])"
        queries = {
            "joules": f"sum by (user) ({user_j})",
            "emissions_g": f"sum by (user) ({user_j} * on(instance) group_left() "
                           + per_joule.format(m="emissions_grams_total", r=rng) + ")",
        }
        got: Dict[str, Dict[str, float]] = {}
        for key, q in queries.items():
            for s in self._vector(q, t1):
                got.setdefault(s["metric"].get("user", ""), {})[key] = float(s["value"][1])
        host = self._vector(f"sum(increase(energy_host_joules_total[{rng}]))", t1)
        host_j = float(host[0]["value"][1]) if host else None
        rows = []
        for name in names:
            fig = got.get(name, {})
            j = fig.get("joules")
            rows.append({"user": name, "uid": None, "joules": j,
                         "share": (j / host_j) if j is not None and host_j else None,
                         "emissions_g": fig.get("emissions_g"), "cost": None, "currency": None,
                         "from": t0, "to": t1, "measured": False,
                         "method": "cpu-time-share (per node, summed)"})
        return {"source": "prometheus", "from": t0, "to": t1,
                "machine": {"joules": host_j, "measured": None}}, rows


class UsageHandler(HubOAuthenticated, web.RequestHandler):
    """JSON (or CSV) rows: every user's for a hub admin, the caller's own otherwise."""

    def initialize(self, fmt: str = "json") -> None:
        self.fmt = fmt

    @property
    def svc(self) -> "EnergyService":
        return self.settings["energy_service"]

    def interval(self) -> Optional[Tuple[float, float]]:
        try:
            t1 = float(self.get_argument("to", str(time.time())))
            t0 = float(self.get_argument("from", str(t1 - DEFAULT_PERIOD_S)))
        except ValueError:
            self.fail(400, "from and to must be Unix seconds", "e.g. ?from=1700000000&to=1700003600")
            return None
        if not t0 < t1:
            self.fail(400, "from must be before to", "e.g. ?from=1700000000&to=1700003600")
            return None
        return t0, t1

    def fail(self, status: int, error: str, hint: str = "") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": error, "hint": hint}))

    @web.authenticated
    async def get(self) -> None:
        span = self.interval()
        if span is None:
            return
        name = self.get_current_user()["name"]
        try:
            data = await IOLoop.current().run_in_executor(None, self.svc.usage, name, *span)
        except EnergydError as exc:
            self.fail(exc.status if 400 <= exc.status < 600 else 502, exc.error, exc.hint)
            return
        except OSError as exc:  # the hub's API or Prometheus unreachable
            self.fail(502, f"cannot reach the hub or Prometheus: {exc}")
            return
        self.set_header("Cache-Control", "no-store")
        if self.fmt == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="energy-by-user.csv"')
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
            w.writeheader()
            for row in data["rows"]:
                w.writerow(row)
            self.finish(buf.getvalue())
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(data))


class PageHandler(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        # The page's own requests are cookie-authenticated: the hub wants its xsrf token on them.
        xsrf = self.xsrf_token
        xsrf = xsrf.decode() if isinstance(xsrf, bytes) else xsrf
        self.finish(PAGE.replace("{{user}}", web.escape.xhtml_escape(
            self.get_current_user()["name"])).replace("{{xsrf}}", json.dumps(xsrf)))


class EnergyService:
    def __init__(self, users: HubUsers, source: Any):
        self.users = users
        self.source = source

    def usage(self, name: str, t0: float, t1: float) -> Dict[str, Any]:
        me = self.users.get(name)
        names = [u["name"] for u in self.users.all()] if me["admin"] else [name]
        head, rows = self.source.rows(sorted(names), t0, t1)
        return {**head, "viewer": name, "admin": me["admin"], "rows": rows,
                "note": "per-user figures are estimates: each user's CPU-time share of the "
                        "machine's total; the machine's total is measured when 'measured' is "
                        "true"}


def make_app(prefix: str, service: EnergyService) -> web.Application:
    return web.Application([
        (prefix, PageHandler),
        (url_path_join(prefix, "api/usage"), UsageHandler, {"fmt": "json"}),
        (url_path_join(prefix, "api/usage.csv"), UsageHandler, {"fmt": "csv"}),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=secrets.token_bytes(32), energy_service=service)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m jupyter_energy.hub", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", default=os.environ.get("ENERGYD_SOCKET"),
                    help="energyd's socket (default: $ENERGYD_SOCKET, then discovery)")
    ap.add_argument("--prometheus-url", default=os.environ.get("JUPYTER_ENERGY_PROMETHEUS_URL"),
                    help="read the nodes' energyd through this Prometheus instead (Kubernetes)")
    args = ap.parse_args(argv)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/energy/")
    source = PrometheusUsage(args.prometheus_url) if args.prometheus_url else EnergydUsage(
        args.socket)
    service = EnergyService(HubUsers(os.environ["JUPYTERHUB_API_URL"],
                                     os.environ["JUPYTERHUB_API_TOKEN"]), source)
    url = urllib.parse.urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    HTTPServer(make_app(prefix, service), xheaders=True).listen(url.port or 80, url.hostname)
    IOLoop.current().start()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Energy by user</title>
<style>
body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}
th,td{padding:.3em .8em;border-bottom:1px solid #ccc;text-align:right}
th{cursor:pointer;background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#555;max-width:60em}.err{color:#a00}
</style></head><body>
<h1>Energy by user</h1>
<p>Signed in as <b>{{user}}</b>.
<label>Period <select id="period">
<option value="300">last 5 min</option><option value="900" selected>last 15 min</option>
<option value="3600">last hour</option><option value="86400">last day</option>
<option value="604800">last week</option><option value="2678400">last 31 days</option></select></label>
<button id="reload">Reload</button> <a id="csv" href="api/usage.csv">Export CSV</a></p>
<p id="machine"></p>
<table id="rows"><thead><tr>
<th data-k="user">User</th><th data-k="joules">Energy (J, est.)</th>
<th data-k="share">Share (est.)</th><th data-k="emissions_g">Emissions (g CO2eq, est.)</th>
<th data-k="cost">Cost (est.)</th></tr></thead><tbody></tbody></table>
<p class="note" id="note"></p>
<script>
const XSRF = {{xsrf}};
let rows = [], key = "joules", desc = true;
const fmt = (v, d) => v === null || v === undefined ? "n/a" : Number(v).toFixed(d);
function draw() {
  const s = [...rows].sort((a, b) => {
    const x = a[key] ?? -Infinity, y = b[key] ?? -Infinity;
    return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
  });
  const tb = document.querySelector("#rows tbody");
  tb.innerHTML = "";
  for (const r of s) {
    const tr = document.createElement("tr");
    tr.dataset.user = r.user;
    const cells = [r.user, fmt(r.joules, 1), r.share == null ? "n/a" : (100 * r.share).toFixed(1) + " %",
      fmt(r.emissions_g, 3), r.cost == null ? "n/a" : fmt(r.cost, 4) + " " + (r.currency || "")];
    cells.forEach((c, i) => { const td = document.createElement("td"); td.textContent = c;
      if (i == 0 && r.error) { td.title = r.error; td.className = "err"; } tr.appendChild(td); });
    tb.appendChild(tr);
  }
}
async function load() {
  // A period in the page's address (?from=T0&to=T1, Unix seconds) wins over the menu.
  const given = new URLSearchParams(location.search);
  const to = Number(given.get("to")) || Date.now() / 1000;
  const from = Number(given.get("from")) || to - Number(document.getElementById("period").value);
  const q = `from=${from.toFixed(3)}&to=${to.toFixed(3)}`;
  document.getElementById("csv").href = `api/usage.csv?${q}&_xsrf=${encodeURIComponent(XSRF)}`;
  const resp = await fetch("api/usage?" + q, {headers: {"X-XSRFToken": XSRF}});
  const d = await resp.json();
  if (!resp.ok) { document.getElementById("note").textContent = d.error; return; }
  rows = d.rows;
  const m = d.machine || {};
  document.getElementById("machine").textContent = `Machine total: ${fmt(m.joules, 1)} J ` +
    `(${m.measured ? "measured" : "estimated"}) from ${new Date(d.from * 1000).toLocaleString()} ` +
    `to ${new Date(d.to * 1000).toLocaleString()}` + (d.admin ? "; all users" : "; your row only") +
    (d.figures === "record" ? `; from energyd's long-term record, in steps of ${d.resolution_s} s` : "");
  document.getElementById("note").textContent = d.note;
  draw();
}
document.querySelectorAll("th").forEach(th => th.onclick = () => {
  desc = key === th.dataset.k ? !desc : true; key = th.dataset.k; draw(); });
document.getElementById("reload").onclick = load;
document.getElementById("period").onchange = () => {
  history.replaceState(null, "", location.pathname); load(); };
load();
</script></body></html>
"""

if __name__ == "__main__":
    main()
