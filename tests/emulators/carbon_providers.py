"""Local stand-ins for the live carbon intensity providers, answering in their real formats.

One ``http.server`` on 127.0.0.1 (a free port) serves every provider under its own prefix, so
energyd's ``base_url`` can point at it:

* ``/entsoe/api`` – ENTSO-E Transparency Platform REST API: ``GL_MarketDocument`` (document type
  A75, process type A16) with one ``TimeSeries`` per production type (``inBiddingZone_Domain``
  for generation, ``outBiddingZone_Domain`` for consumption such as pumping), ``Period`` with
  ``timeInterval``, ``resolution`` (PT15M / PT60M) and ``Point`` (``position``, ``quantity`` in
  MW); or the ``Acknowledgement_MarketDocument`` it sends when nothing matches (reason 999).
* ``/uk/intensity``, ``/uk/generation`` – api.carbonintensity.org.uk.
* ``/rte`` – the ODRE explore API v2.1 records of dataset eco2mix-national-tr.
* ``/em/carbon-intensity/latest``, ``/em/power-breakdown/latest`` – Electricity Maps API v3,
  with the ``auth-token`` header checked.

``mode`` makes every provider misbehave: ``"ok"``, ``"slow"`` (answers after ``delay_s``),
``"garbage"`` (not the format at all), ``"truncated"`` (the good answer cut in half), ``"500"``.
Each request is recorded (path, query, headers) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ENTSOE_TOKEN = "0123abcd-entsoe-token"
EM_TOKEN = "em-token-42"


def _iso_minute(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def a75_document(zone: str, start: datetime, series: list[dict]) -> str:
    """A GL_MarketDocument as ENTSO-E sends it. Each series: psr, resolution ("PT15M"...),
    quantities (MW, one per position; None leaves the position out), optional curve ("A01"
    or "A03", default A01), optional out=True for a consumption series."""
    minutes = {"PT15M": 15, "PT30M": 30, "PT60M": 60}
    blocks = []
    end_all = start
    for i, s in enumerate(series, 1):
        res = timedelta(minutes=minutes[s["resolution"]])
        end = start + res * len(s["quantities"])
        end_all = max(end_all, end)
        points = "".join(
            f"\n        <Point>\n          <position>{p}</position>\n"
            f"          <quantity>{q}</quantity>\n        </Point>"
            for p, q in enumerate(s["quantities"], 1) if q is not None)
        domain = "outBiddingZone_Domain.mRID" if s.get("out") else "inBiddingZone_Domain.mRID"
        blocks.append(f"""
  <TimeSeries>
    <mRID>{i}</mRID>
    <businessType>A01</businessType>
    <objectAggregation>A08</objectAggregation>
    <{domain} codingScheme="A01">{zone}</{domain}>
    <quantity_Measure_Unit.name>MAW</quantity_Measure_Unit.name>
    <curveType>{s.get("curve", "A01")}</curveType>
    <MktPSRType>
      <psrType>{s["psr"]}</psrType>
    </MktPSRType>
    <Period>
      <timeInterval>
        <start>{_iso_minute(start)}</start>
        <end>{_iso_minute(end)}</end>
      </timeInterval>
      <resolution>{s["resolution"]}</resolution>{points}
    </Period>
  </TimeSeries>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<GL_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-6:generationloaddocument:3:0">
  <mRID>4fd0b2e0b8a24fb5b6b6a0c1d3f1a2b3</mRID>
  <revisionNumber>1</revisionNumber>
  <type>A75</type>
  <process.processType>A16</process.processType>
  <sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>
  <sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>
  <receiver_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</receiver_MarketParticipant.mRID>
  <receiver_MarketParticipant.marketRole.type>A33</receiver_MarketParticipant.marketRole.type>
  <createdDateTime>{datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}</createdDateTime>
  <time_Period.timeInterval>
    <start>{_iso_minute(start)}</start>
    <end>{_iso_minute(end_all)}</end>
  </time_Period.timeInterval>{"".join(blocks)}
</GL_MarketDocument>
"""


def acknowledgement(text: str, code: str = "999") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument
	xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
	<mRID>b6a0c1d3-0a1b-4c2d</mRID>
	<createdDateTime>{datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}</createdDateTime>
	<sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>
	<sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>
	<receiver_MarketParticipant.mRID codingScheme="A01">10X1001A1001A39I</receiver_MarketParticipant.mRID>
	<receiver_MarketParticipant.marketRole.type>A39</receiver_MarketParticipant.marketRole.type>
	<received_MarketDocument.createdDateTime>{datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}</received_MarketDocument.createdDateTime>
	<Reason>
		<code>{code}</code>
		<text>{text}</text>
	</Reason>
</Acknowledgement_MarketDocument>
"""


class Providers:
    """The fake providers; attributes are what they answer next."""

    def __init__(self):
        self.mode = "ok"
        self.delay_s = 3.0
        # ENTSO-E: the series of the document, generated from the requested periodStart.
        self.entsoe_series: list[dict] = []
        self.entsoe_ack: str | None = None
        # UK
        self.uk_intensity = {"forecast": 180, "actual": 176}
        self.uk_mix = [("biomass", 5.0), ("coal", 1.0), ("imports", 9.0), ("gas", 35.0),
                       ("nuclear", 14.0), ("other", 0.0), ("hydro", 2.0), ("solar", 4.0),
                       ("wind", 30.0)]
        # RTE: one record, newest first
        self.rte_record: dict = {}
        # Electricity Maps
        self.em_intensity = 302
        self.em_breakdown: dict = {}
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        providers = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                providers._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def count(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["path"].startswith(prefix))

    # -- answers -------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler):
        u = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        with self._lock:
            self.requests.append({"path": u.path, "query": q, "headers": dict(h.headers)})
        mode = self.mode
        if mode == "slow":
            time.sleep(self.delay_s)
        if mode == "500":
            return self._send(h, 500, "text/html", "<html><body>Internal Server Error</body></html>")
        if mode == "garbage":
            return self._send(h, 200, "text/plain", "\x00\x01garbage{<]]>")
        status, ctype, body = self._answer(u.path, q, h)
        if mode == "truncated":
            body = body[: len(body) // 2]
        self._send(h, status, ctype, body)

    @staticmethod
    def _send(h, status, ctype, body: str):
        data = body.encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): that is the point of "slow"

    def _answer(self, path: str, q: dict, h) -> tuple[int, str, str]:
        if path == "/entsoe/api":
            if q.get("securityToken") != ENTSOE_TOKEN:
                return 401, "text/xml", acknowledgement("Unauthorized", code="999")
            if self.entsoe_ack:
                return 200, "text/xml", acknowledgement(self.entsoe_ack)
            start = datetime.strptime(q["periodStart"], "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
            return 200, "text/xml", a75_document(q["in_Domain"], start, self.entsoe_series)
        if path == "/uk/intensity":
            now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
            start = now - timedelta(minutes=now.minute % 30)
            body = {"data": [{"from": _iso_minute(start),
                              "to": _iso_minute(start + timedelta(minutes=30)),
                              "intensity": dict(self.uk_intensity, index="moderate")}]}
            return 200, "application/json", json.dumps(body)
        if path == "/uk/generation":
            now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
            start = now - timedelta(minutes=now.minute % 30)
            body = {"data": {"from": _iso_minute(start),
                             "to": _iso_minute(start + timedelta(minutes=30)),
                             "generationmix": [{"fuel": f, "perc": p} for f, p in self.uk_mix]}}
            return 200, "application/json", json.dumps(body)
        if path == "/rte":
            return 200, "application/json; charset=utf-8", json.dumps(
                {"total_count": 35040, "results": [self.rte_record]})
        if path.startswith("/em/"):
            if h.headers.get("auth-token") != EM_TOKEN:
                return 401, "application/json", json.dumps(
                    {"status": "error", "message": "Invalid authentication token"})
            zone = q.get("zone", "")
            stamp = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
            dt = stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            if path == "/em/carbon-intensity/latest":
                return 200, "application/json", json.dumps({
                    "zone": zone, "carbonIntensity": self.em_intensity, "datetime": dt,
                    "updatedAt": dt, "createdAt": dt, "emissionFactorType": "lifecycle",
                    "isEstimated": False, "estimationMethod": None})
            if path == "/em/power-breakdown/latest":
                bd = self.em_breakdown
                total = sum(v for v in bd.values() if v)
                return 200, "application/json", json.dumps({
                    "zone": zone, "datetime": dt, "updatedAt": dt, "createdAt": dt,
                    "powerConsumptionBreakdown": bd,
                    "powerProductionBreakdown": {k: v for k, v in bd.items()},
                    "powerImportBreakdown": {"FR": 0}, "powerExportBreakdown": {"FR": 0},
                    "fossilFreePercentage": 50, "renewablePercentage": 40,
                    "powerConsumptionTotal": total, "powerProductionTotal": total,
                    "powerImportTotal": 0, "powerExportTotal": 0,
                    "isEstimated": False, "estimationMethod": None})
        return 404, "application/json", json.dumps({"error": "not found"})
