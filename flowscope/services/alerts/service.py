"""The alerts component: one alert model in ClickHouse, fed by flows, probes, SNMP and policies.

Other components find it with `app.components.get("alerts")` and call:
- `raise_alert(entity_type, entity_value, alert_type, severity, description, evidence)` for a
  one-shot alert (SNMP, policies), de-duplicated within a window;
- `engage(key, ...)` / `release(key)` for conditions that start and end (probe thresholds);
- `host_alert_summary(ips)` for host scores and alert counts.
Flow-risk and host alerts (scans, floods, score, unexpected servers) are computed from every
batch of finished flows (`app.on_flows`) or from stored flows with `analyze_stored()`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from flowscope.services.alerts.exclusions import Exclusions
from flowscope.services.alerts.model import (
    DEFAULT_SCORE,
    SEVERITIES,
    SEVERITY_BY_ID,
    check_severity,
    fmt_ts,
    mac_text,
    normalise_mac,
    risk_name,
    risk_severity,
    risk_slug,
    row_ip,
    to_epoch,
)
from flowscope.services.hosts.addresses import (
    GROUP_ADDRESS,
    UNICAST_MAC,
    is_group_ip,
    is_group_mac,
)
from flowscope.store.columns import FlowColumns

log = logging.getLogger(__name__)

ALERT_COLUMNS = (
    "alert_id", "tstamp", "tstamp_end", "entity_type", "entity_value", "alert_type", "severity",
    "severity_id", "score", "status", "source", "ip", "peer_ip", "description", "json", "occurrences",
    "acknowledged", "ack_by", "ack_time", "ack_comment",
)
#: the caller's own acknowledgements (non-admins), joined onto `alerts` by `AlertsService.view`
OWN_ACKS = ("SELECT alert_id AS mid, ack_time AS mtime, ack_comment AS mcomment FROM alert_acks FINAL "
            "WHERE user = {ack_user:String} AND acknowledged = 1")
SERVER_KINDS = ("dns", "dhcp", "ntp", "smtp", "gateway")
SMTP_PORTS = (25, 465, 587)
FLOW_COLUMNS = (
    "FLOW_ID", "IP_PROTOCOL_VERSION", "FIRST_SEEN", "LAST_SEEN", "SRC_IP", "DST_IP", "IP_SRC_PORT",
    "IP_DST_PORT", "PROTOCOL", "L7_PROTO", "L7_PROTO_MASTER", "FLOW_RISK", "SCORE", "INFO", "DOMAIN_NAME",
    "TOTAL_BYTES", "PACKETS", "SRC2DST_BYTES", "DST2SRC_BYTES", "SRC2DST_PACKETS", "DST2SRC_PACKETS",
    "SRC_MAC", "DST_MAC", "COMMUNITY_ID", "CLIENT_FINGERPRINT", "SERVER_FINGERPRINT", "USER_AGENT", "VLAN_ID",
)
_EVIDENCE_KEYS = (
    "FLOW_ID", "COMMUNITY_ID", "PROTOCOL", "IP_SRC_PORT", "IP_DST_PORT", "L7_PROTO", "L7_PROTO_MASTER",
    "DOMAIN_NAME", "INFO", "TOTAL_BYTES", "PACKETS", "SRC2DST_BYTES", "DST2SRC_BYTES", "USER_AGENT",
    "CLIENT_FINGERPRINT", "SERVER_FINGERPRINT", "VLAN_ID",
)
MAX_RECENT = 50_000
MAX_TRACKED = 200_000


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(str(text).split("%")[0])
        return True
    except ValueError:
        return False


def _app_name(l7: int, master: int) -> str:
    try:
        from flowscope.flows.ndpi_catalog import catalog

        return catalog().app_name(l7, master)
    except Exception:
        return str(l7) if l7 else ""


def _endpoint(ip: str, port: Any) -> str:
    ip = ip or "?"
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class _Bucket:
    """Per-window counters for host alerts (bounded)."""

    __slots__ = ("alerted", "dsts", "flows_from", "flows_to", "ports", "score", "start")

    def __init__(self, start: float):
        self.start = start
        self.ports: dict[tuple[str, str], set[int]] = {}
        self.dsts: dict[str, set[str]] = {}
        self.flows_from: Counter = Counter()
        self.flows_to: Counter = Counter()
        self.score: Counter = Counter()
        self.alerted: set[tuple[str, str]] = set()


class AlertsService:
    def __init__(self, app: Any):
        self.app = app
        self.store = app.store
        cfg = app.config.section("alerts")
        self.flow_dedup_s = float(cfg.get("flow_dedup_s", 300))
        self.dedup_s = float(cfg.get("dedup_s", 300))
        self.window_s = max(1, int(cfg.get("host_window_s", 60)))
        self.scan_ports = int(cfg.get("scan_ports", 100))
        self.scan_hosts = int(cfg.get("scan_hosts", 100))
        self.flood_flows = int(cfg.get("flood_flows", 2000))
        self.host_score_threshold = int(cfg.get("host_score_threshold", 1000))
        self.flow_alerts = bool(cfg.get("flow_alerts", True))
        self.exclusions = Exclusions(Path(app.config.data_dir) / "alerts.db")
        self.local_networks = [ipaddress.ip_network(n, strict=False)
                               for n in getattr(app.config, "local_networks", []) or []]
        self.expected = self._parse_expected(app.config.section("expected_servers"))
        self._lock = threading.RLock()
        self._recent: OrderedDict[tuple, tuple[dict, float]] = OrderedDict()
        self._engaged: dict[tuple, dict] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._seen_servers: set[tuple[str, str]] = set()
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.counters: Counter = Counter()
        self._load_state()
        on_flows = getattr(app, "on_flows", None)
        if callable(on_flows):
            on_flows(self.on_flows, self.on_flows)  # column batches queued as they are

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._ensure_thread()

    async def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _load_state(self) -> None:
        """Engaged alerts and already-reported unexpected servers survive restarts."""
        try:
            res = self.store.query(
                "SELECT " + ", ".join(ALERT_COLUMNS) + ", version FROM alerts FINAL "
                "WHERE status = 'engaged' LIMIT 10000")
            for row in res.dicts():
                ev = json.loads(row.get("json") or "{}")
                key = tuple(ev.get("_key") or ())
                if key:
                    self._engaged[key] = row
            res = self.store.query(
                "SELECT DISTINCT alert_type, entity_value FROM alerts "
                "WHERE source = 'host' AND startsWith(alert_type, 'unexpected_') LIMIT 100000")
            for atype, value in res.rows:
                self._seen_servers.add((atype, value))
        except Exception as exc:  # table missing before migrate: start empty
            log.debug("alerts state not loaded: %s", exc)

    # --- writing ---------------------------------------------------------------------------
    def _new_row(self, entity_type: str, entity_value: str, alert_type: str, severity: str, description: str,
                 evidence: dict, *, score: int | None, ip: str | None, peer_ip: str | None, source: str,
                 tstamp: float | None, status: str = "stored") -> dict:
        sev = check_severity(severity)
        now = time.time() if tstamp is None else float(tstamp)
        if ip is None and entity_type in ("host", "snmp_device", "am_host") and _is_ip(entity_value):
            ip = entity_value
        return {
            "alert_id": random.getrandbits(63),
            "tstamp": fmt_ts(now), "tstamp_end": fmt_ts(now),
            "entity_type": entity_type, "entity_value": str(entity_value)[:1000],
            "alert_type": alert_type, "severity": sev, "severity_id": SEVERITIES[sev],
            "score": max(0, min(65535, int(DEFAULT_SCORE[sev] if score is None else score))),
            "status": status, "source": source, "ip": ip or "", "peer_ip": peer_ip or "",
            "description": description[:4000], "json": json.dumps(evidence, default=str, ensure_ascii=False)[:200_000],
            "occurrences": 1, "acknowledged": 0, "ack_by": "", "ack_time": fmt_ts(0), "ack_comment": "",
            "version": time.time_ns(),
        }

    def _write(self, rows: list[dict]) -> None:
        if rows:
            self.store.insert("alerts", list(ALERT_COLUMNS) + ["version"],
                              ([r[c] for c in ALERT_COLUMNS] + [r["version"]] for r in rows))
            self.counters["written"] += len(rows)

    def _dedup(self, key: tuple, t: float, window: float) -> dict | None:
        """The alert raised for `key` within `window` seconds of t, bumped; None when new."""
        hit = self._recent.get(key)
        if hit is None:
            return None
        row, last = hit
        if abs(t - last) > window:
            return None
        row["occurrences"] += 1
        row["tstamp_end"] = max(row["tstamp_end"], fmt_ts(t))
        row["version"] = time.time_ns()
        self._recent[key] = (row, max(last, t))
        self._recent.move_to_end(key)
        return row

    def _remember(self, key: tuple, row: dict, t: float) -> None:
        self._recent[key] = (row, t)
        while len(self._recent) > MAX_RECENT:
            self._recent.popitem(last=False)

    def raise_alert(self, entity_type: str, entity_value: str, alert_type: str, severity: str,
                    description: str, evidence: dict | None = None, *, score: int | None = None,
                    ip: str | None = None, peer_ip: str | None = None, source: str | None = None,
                    tstamp: float | None = None, dedup_s: float | None = None) -> int | None:
        """Raise a one-shot alert. Returns its id (the existing alert's id when the same alert was
        raised within `dedup_s` seconds, whose occurrence count is bumped), None when excluded."""
        evidence = dict(evidence or {})
        source = source or {"snmp_device": "snmp", "snmp_interface": "snmp", "policy": "policy",
                            "am_host": "probe"}.get(entity_type, "system")
        row = self._new_row(entity_type, entity_value, alert_type, severity, description, evidence,
                            score=score, ip=ip, peer_ip=peer_ip, source=source, tstamp=tstamp)
        rule = self.exclusions.match(row, evidence)
        if rule:
            self.counters["excluded"] += 1
            return None
        t = to_epoch(row["tstamp"]) if tstamp is not None else time.time()
        key = ("oneshot", entity_type, str(entity_value), alert_type)
        with self._lock:
            old = self._dedup(key, t, self.dedup_s if dedup_s is None else dedup_s)
            if old is not None:
                self._write([old])
                return old["alert_id"]
            self._remember(key, row, t)
            self._write([row])
        return row["alert_id"]

    def engage(self, key: tuple | str, entity_type: str, entity_value: str, alert_type: str, severity: str,
               description: str, evidence: dict | None = None, *, score: int | None = None,
               ip: str | None = None, source: str = "system") -> int | None:
        """Start (or keep) an alert for a condition that lasts; `release(key)` ends it."""
        key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        evidence = dict(evidence or {})
        evidence["_key"] = list(key)
        with self._lock:
            row = self._engaged.get(key)
            if row is not None:
                row["tstamp_end"] = fmt_ts(time.time())
                row["occurrences"] = int(row["occurrences"]) + 1
                row["description"] = description[:4000]
                row["json"] = json.dumps(evidence, default=str)[:200_000]
                row["version"] = time.time_ns()
                self._write([row])
                return row["alert_id"]
            row = self._new_row(entity_type, entity_value, alert_type, severity, description, evidence,
                                score=score, ip=ip, peer_ip=None, source=source, tstamp=None, status="engaged")
            if self.exclusions.match(row, evidence):
                self.counters["excluded"] += 1
                return None
            self._engaged[key] = row
            self._write([row])
            return row["alert_id"]

    def release(self, key: tuple | str, description: str | None = None) -> int | None:
        key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        with self._lock:
            row = self._engaged.pop(key, None)
            if row is None:
                return None
            row["status"] = "released"
            row["tstamp_end"] = fmt_ts(time.time())
            if description:
                row["description"] = (row["description"] + " | " + description)[:4000]
            row["version"] = time.time_ns()
            self._write([row])
            return row["alert_id"]

    def is_engaged(self, key: tuple | str) -> bool:
        key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        return key in self._engaged

    # --- flows -----------------------------------------------------------------------------
    def on_flows(self, rows: list[dict]) -> None:
        """`app.on_flows` callback: hand the batch to our own thread."""
        if self._stopping:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            self.counters["dropped_batches"] += 1

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="alerts-flows", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            rows = self._queue.get()
            try:
                if rows is None:
                    return
                if isinstance(rows, FlowColumns):
                    self.process_flow_columns(rows)
                else:
                    self.process_flows(rows)
            except Exception:
                log.exception("alerts: flow batch failed")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until queued flow batches are processed (bounded)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def process_flows(self, rows: Iterable[dict]) -> int:
        """Compute flow and host alerts for a batch of flow rows; returns alerts written."""
        out: dict[int, dict] = {}
        with self._lock:
            for r in rows:
                try:
                    self._one_flow(r, out)
                except Exception:
                    self.counters["bad_rows"] += 1
            self._gc_buckets()
            batch = list(out.values())
            self._write(batch)
        return len(batch)

    def process_flow_columns(self, batch: FlowColumns) -> int:
        """`process_flows` for a column batch of collected flows (exporters send no nDPI risk or
        score): the host detectors and the unexpected-server check run once per distinct
        (window, client, server, port, protocol, answered, MACs) with its number of flows."""
        t = batch.full("FIRST_SEEN") / 1000
        sport = batch.full("IP_SRC_PORT")
        cols = {"PROTOCOL": batch.full("PROTOCOL"), "DST2SRC_PACKETS": batch.full("DST2SRC_PACKETS") > 0,
                "SRC_MAC": batch.full("SRC_MAC"), "DST_MAC": batch.full("DST_MAC"),
                "IP_SRC_PORT": np.where(sport == 67, 67, 0)}  # the checks only ask whether it is 67
        groups: dict[tuple, list] = {}
        for key, ts in zip(zip((t // self.window_s).tolist(), batch.ips("SRC").tolist(), batch.ips("DST").tolist(),
                               batch.full("IP_DST_PORT").tolist(), *(c.tolist() for c in cols.values())),
                           t.tolist()):
            g = groups.get(key)
            if g is None:
                groups[key] = [ts, 1]
            else:
                g[0], g[1] = min(g[0], ts), g[1] + 1
        out: dict[int, dict] = {}
        with self._lock:
            for (_, src, dst, dport, *rest), (ts, flows) in groups.items():
                r = dict(zip(cols, rest))
                try:
                    self._host_stats(r, ts, src, dst, dport, 0, out, flows)
                    if self.expected:
                        self._check_servers(r, ts, src, dst, r["IP_SRC_PORT"], dport, out)
                except Exception:
                    self.counters["bad_rows"] += flows
            self._gc_buckets()
            batch_out = list(out.values())
            self._write(batch_out)
        return len(batch_out)

    def _one_flow(self, r: dict, out: dict[int, dict]) -> None:
        t = to_epoch(r.get("FIRST_SEEN"))
        src, dst = row_ip(r, "SRC"), row_ip(r, "DST")
        sport, dport = int(r.get("IP_SRC_PORT") or 0), int(r.get("IP_DST_PORT") or 0)
        risk = int(r.get("FLOW_RISK") or 0)
        flow_score = int(r.get("SCORE") or 0)
        if risk:
            risk_score = self._flow_risk_alert(r, t, src, dst, sport, dport, risk, out)
            flow_score = max(flow_score, risk_score)
        self._host_stats(r, t, src, dst, dport, flow_score, out)
        if self.expected:
            self._check_servers(r, t, src, dst, sport, dport, out)

    def _flow_risk_alert(self, r: dict, t: float, src: str, dst: str, sport: int, dport: int,
                         risk: int, out: dict[int, dict]) -> int:
        kept = []
        total = 0
        for bit in range(1, 64):
            if not (risk >> bit) & 1:
                continue
            sev, score = risk_severity(bit)
            total += score
            atype = risk_slug(bit)
            probe = {"entity_type": "flow", "alert_type": atype, "ip": src, "peer_ip": dst}
            if self.exclusions.match(probe, r):
                self.counters["excluded"] += 1
                continue
            kept.append((score, bit, atype, sev))
        if not kept or not self.flow_alerts:
            return total
        kept.sort(reverse=True)
        score, bit, atype, sev = kept[0]
        domain = str(r.get("DOMAIN_NAME") or r.get("INFO") or "")
        key = ("flow", atype, src, dst, dport, domain, tuple(b for _, b, _, _ in kept))
        old = self._dedup(key, t, self.flow_dedup_s)
        if old is not None:
            out[old["alert_id"]] = old
            return total
        app = _app_name(int(r.get("L7_PROTO") or 0), int(r.get("L7_PROTO_MASTER") or 0))
        names = [risk_name(b) for _, b, _, _ in kept]
        entity = f"{_endpoint(src, sport)} -> {_endpoint(dst, dport)}"
        desc = f"{', '.join(names)} on {app or 'flow'} {entity}" + (f" ({domain})" if domain else "")
        evidence = {k: r.get(k) for k in _EVIDENCE_KEYS if r.get(k) not in (None, "")}
        evidence.update({
            "SRC_IP": src, "DST_IP": dst, "FIRST_SEEN": fmt_ts(t), "LAST_SEEN": fmt_ts(to_epoch(r.get("LAST_SEEN")) or t),
            "L7_PROTO_NAME": app, "FLOW_RISK": str(risk),
            "risks": [{"bit": b, "name": risk_name(b), "severity": s, "score": sc} for sc, b, _, s in kept],
        })
        row = self._new_row("flow", entity, atype, sev, desc, evidence,
                            score=sum(k[0] for k in kept), ip=src, peer_ip=dst, source="flow", tstamp=t)
        row["tstamp_end"] = evidence["LAST_SEEN"]
        self._remember(key, row, t)
        out[row["alert_id"]] = row
        return total

    # host alerts: scans, floods, score
    def _bucket(self, t: float) -> _Bucket:
        b = int(t // self.window_s)
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = _Bucket(b * self.window_s)
        return bucket

    def _gc_buckets(self) -> None:
        if len(self._buckets) > 4:
            for b in sorted(self._buckets)[:-4]:
                del self._buckets[b]

    def _host_stats(self, r: dict, t: float, src: str, dst: str, dport: int, flow_score: int,
                    out: dict[int, dict], flows: int = 1) -> None:
        if not src or not dst:
            return
        bk = self._bucket(t)
        room = len(bk.ports) < MAX_TRACKED
        if dport and (room or (src, dst) in bk.ports):
            ports = bk.ports.setdefault((src, dst), set())
            if len(ports) <= self.scan_ports:
                ports.add(dport)
                if len(ports) > self.scan_ports:
                    self._host_alert(bk, t, "port_scan", src, "error", 100, dst,
                                     f"Port scan: {src} contacted more than {self.scan_ports} distinct ports on "
                                     f"{dst} within {self.window_s}s",
                                     {"target": dst, "distinct_ports": len(ports), "threshold": self.scan_ports,
                                      "sample_ports": sorted(ports)[:30]}, out)
        if room or src in bk.dsts:
            dsts = bk.dsts.setdefault(src, set())
            if len(dsts) <= self.scan_hosts:
                dsts.add(dst)
                if len(dsts) > self.scan_hosts:
                    self._host_alert(bk, t, "host_scan", src, "error", 100, None,
                                     f"Host scan: {src} contacted more than {self.scan_hosts} distinct hosts "
                                     f"within {self.window_s}s",
                                     {"distinct_hosts": len(dsts), "threshold": self.scan_hosts,
                                      "sample_hosts": sorted(dsts)[:30]}, out)
        bk.flows_from[src] += flows
        if bk.flows_from[src] - flows <= self.flood_flows < bk.flows_from[src]:
            self._host_alert(bk, t, "flow_flood_attacker", src, "error", 100, None,
                             f"Flow flood: {src} started more than {self.flood_flows} flows within {self.window_s}s",
                             {"flows": bk.flows_from[src], "threshold": self.flood_flows}, out)
        bk.flows_to[dst] += flows
        if bk.flows_to[dst] - flows <= self.flood_flows < bk.flows_to[dst]:
            self._host_alert(bk, t, "flow_flood_victim", dst, "error", 100, None,
                             f"Flow flood: {dst} received more than {self.flood_flows} flows within {self.window_s}s",
                             {"flows": bk.flows_to[dst], "threshold": self.flood_flows}, out)
        if flow_score:
            for host in (src, dst):
                before = bk.score[host]
                bk.score[host] += flow_score
                if before <= self.host_score_threshold < bk.score[host]:
                    self._host_alert(bk, t, "score_threshold_exceeded", host, "warning", 50, None,
                                     f"Host score of {host} reached {bk.score[host]} (threshold "
                                     f"{self.host_score_threshold}) within {self.window_s}s",
                                     {"score": bk.score[host], "threshold": self.host_score_threshold}, out)

    def _host_alert(self, bk: _Bucket, t: float, atype: str, host: str, severity: str, score: int,
                    peer: str | None, desc: str, evidence: dict, out: dict[int, dict]) -> None:
        if (atype, host) in bk.alerted:
            return
        bk.alerted.add((atype, host))
        evidence = dict(evidence, window_start=fmt_ts(bk.start), window_s=self.window_s)
        row = self._new_row("host", host, atype, severity, desc, evidence, score=score, ip=host,
                            peer_ip=peer, source="host", tstamp=t)
        if self.exclusions.match(row, evidence):
            self.counters["excluded"] += 1
            return
        key = ("host", atype, host, peer or "")
        old = self._dedup(key, t, max(self.dedup_s, 2 * self.window_s))
        if old is not None:
            out[old["alert_id"]] = old
            return
        self._remember(key, row, t)
        out[row["alert_id"]] = row

    # unexpected servers
    @staticmethod
    def _parse_expected(section: dict) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for kind in SERVER_KINDS:
            items = section.get(kind) or []
            if isinstance(items, str):
                items = [x for x in items.split(",")]
            nets, macs, raw = [], set(), []
            for item in items:
                item = str(item).strip()
                if not item:
                    continue
                mac = normalise_mac(item) if kind == "gateway" else None
                if mac:
                    macs.add(mac)
                    raw.append(mac)
                    continue
                try:
                    nets.append(ipaddress.ip_network(item, strict=False))
                    raw.append(item)
                except ValueError:
                    log.warning("expected_servers.%s: ignoring %r (not an IP, CIDR or MAC)", kind, item)
            if raw:
                out[kind] = {"nets": nets, "macs": macs, "raw": raw}
        return out

    def _is_local(self, ip: str) -> bool:
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(a.version == n.version and a in n for n in self.local_networks)

    def _expected_ip(self, kind: str, ip: str) -> bool:
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return True
        return any(a.version == n.version and a in n for n in self.expected[kind]["nets"])

    def _check_servers(self, r: dict, t: float, src: str, dst: str, sport: int, dport: int,
                       out: dict[int, dict]) -> None:
        proto = int(r.get("PROTOCOL") or 0)
        answered = int(r.get("DST2SRC_PACKETS") or 0) > 0
        found: list[tuple[str, str, str]] = []  # (kind, server, client)
        if dport == 53 and proto in (6, 17):
            found.append(("dns", dst, src))
        if proto == 17 and sport == 67:
            found.append(("dhcp", src, dst))
        elif proto == 17 and dport == 67 and answered and not dst.endswith(".255"):
            found.append(("dhcp", dst, src))
        if proto == 17 and dport == 123 and answered:
            found.append(("ntp", dst, src))
        if proto == 6 and dport in SMTP_PORTS and answered:
            found.append(("smtp", dst, src))
        for kind, server, client in found:
            if kind in self.expected and not self._expected_ip(kind, server):
                self._unexpected(kind, server, client, t, r, out)
        if "gateway" in self.expected and self.local_networks:
            exp = self.expected["gateway"]
            gw = None
            if self._is_local(src) and not self._is_local(dst):
                gw = mac_text(r.get("DST_MAC"))
            elif self._is_local(dst) and not self._is_local(src):
                gw = mac_text(r.get("SRC_MAC"))
            if gw and gw not in exp["macs"] and not is_group_mac(gw) and not is_group_ip(dst):
                self._unexpected("gateway", gw, src, t, r, out)

    def _unexpected(self, kind: str, server: str, client: str, t: float, r: dict, out: dict[int, dict]) -> None:
        atype = f"unexpected_{kind}_server"
        if (atype, server) in self._seen_servers:
            return
        self._seen_servers.add((atype, server))
        label = {"dns": "DNS", "dhcp": "DHCP", "ntp": "NTP", "smtp": "SMTP", "gateway": "gateway"}[kind]
        evidence = {"kind": kind, "server": server, "first_client": client,
                    "expected": self.expected[kind]["raw"], "FLOW_ID": r.get("FLOW_ID"),
                    "IP_DST_PORT": r.get("IP_DST_PORT"), "SRC_IP": row_ip(r, "SRC"), "DST_IP": row_ip(r, "DST")}
        ip = server if kind != "gateway" else client
        row = self._new_row("host", server, atype, "warning", f"Unexpected {label} server {server} "
                            f"(used by {client}); expected: {', '.join(self.expected[kind]['raw'])}",
                            evidence, score=50, ip=ip, peer_ip=client, source="host", tstamp=t)
        if self.exclusions.match(row, evidence):
            self.counters["excluded"] += 1
            return
        out[row["alert_id"]] = row

    def analyze_stored(self, start: float | None = None, end: float | None = None,
                       max_rows: int = 2_000_000, page: int = 20_000) -> dict:
        """Compute flow and host alerts from flows already stored (e.g. after an import)."""
        where, params = ["1"], {}
        if start is not None:
            where.append("FIRST_SEEN >= {start:DateTime64(3)}")
            params["start"] = fmt_ts(start)
        if end is not None:
            where.append("FIRST_SEEN < {end:DateTime64(3)}")
            params["end"] = fmt_ts(end)
        sql = (f"SELECT {', '.join(FLOW_COLUMNS)} FROM flows WHERE {' AND '.join(where)} "
               "ORDER BY FIRST_SEEN, FLOW_ID LIMIT {lim:UInt32} OFFSET {off:UInt64}")
        seen = alerts = 0
        offset = 0
        while offset < max_rows:
            res = self.store.query(sql, dict(params, lim=min(page, max_rows - offset), off=offset))
            rows = res.dicts()
            if not rows:
                break
            alerts += self.process_flows(rows)
            seen += len(rows)
            offset += len(rows)
            if len(rows) < page:
                break
        return {"flows": seen, "alerts_written": alerts}

    # --- reading ---------------------------------------------------------------------------
    @staticmethod
    def where(principal: Any = None, *, alert_ids: list[int] | None = None, entity_type: str | None = None,
              entity_value: str | None = None, alert_type: str | None = None, min_severity: str | None = None,
              severity: str | None = None, source: str | None = None, status: str | None = None,
              acknowledged: bool | None = None, ip: str | None = None, start: float | None = None,
              end: float | None = None, text: str | None = None) -> tuple[str, dict]:
        """WHERE clause over `alerts` (values as parameters) plus the caller's network scope."""
        parts, p = ["1"], {}
        if alert_ids:
            # lists travel as one comma-separated parameter (portable across chDB and servers)
            parts.append("has(arrayMap(x -> toUInt64OrZero(x), splitByChar(',', {ids:String})), alert_id)")
            p["ids"] = ",".join(str(int(i)) for i in alert_ids)
        for col, val in (("entity_type", entity_type), ("entity_value", entity_value),
                         ("alert_type", alert_type), ("source", source), ("status", status)):
            if val:
                parts.append(f"{col} = {{{col}:String}}")
                p[col] = val
        if severity:
            parts.append("severity = {sev:String}")
            p["sev"] = check_severity(severity)
        if min_severity:
            parts.append("severity_id >= {minsev:UInt8}")
            p["minsev"] = SEVERITIES[check_severity(min_severity)]
        if acknowledged is not None:
            parts.append("acknowledged = {ack:UInt8}")
            p["ack"] = int(bool(acknowledged))
        if ip:
            parts.append("(ip = {ip:String} OR peer_ip = {ip:String} OR entity_value = {ip:String})")
            p["ip"] = ip
        if start is not None:
            parts.append("tstamp >= {start:DateTime64(3)}")
            p["start"] = fmt_ts(start)
        if end is not None:
            parts.append("tstamp < {end:DateTime64(3)}")
            p["end"] = fmt_ts(end)
        if text:
            parts.append("positionCaseInsensitiveUTF8(description, {text:String}) > 0")
            p["text"] = text
        if principal is not None and getattr(principal, "allowed_networks", None):
            # empty addresses (alerts about no host) become '::', which no IPv4 network contains
            parts.append(principal.sql_filter(["if(ip = '', '::', ip)", "if(peer_ip = '', '::', peer_ip)"]))
        return " AND ".join(parts), p

    def get_alerts(self, principal: Any = None, *, limit: int = 50, offset: int = 0,
                   order: str = "newest", **filters: Any) -> tuple[list[dict], bool]:
        where, p = self.where(principal, **filters)
        source, sp = self.view(principal)
        order_sql = {"newest": "tstamp DESC, alert_id DESC", "oldest": "tstamp ASC, alert_id ASC",
                     "score": "score DESC, tstamp DESC", "severity": "severity_id DESC, tstamp DESC"}[order]
        p.update(sp, lim=int(limit) + 1, off=int(offset))
        res = self.store.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {source} WHERE {where} ORDER BY {order_sql} "
            "LIMIT {lim:UInt32} OFFSET {off:UInt64}", p)
        rows = res.dicts()
        truncated = len(rows) > limit
        rows = rows[:limit]
        for r in rows:
            r["alert_id"] = int(r["alert_id"])
            try:
                ev = json.loads(r.pop("json") or "{}")
            except ValueError:
                ev = {}
            ev.pop("_key", None)
            r["evidence"] = ev
            if not int(r.get("acknowledged") or 0):
                r["ack_time"] = None
        return rows, truncated

    def get_stats(self, principal: Any = None, top: int = 20, **filters: Any) -> dict:
        where, p = self.where(principal, **filters)
        source, sp = self.view(principal)
        p.update(sp, top=int(top))
        base = f"FROM {source} WHERE {where}"
        # count: distinct alerts; occurrences: times their conditions were seen (e.g. risky flows)
        tot = self.store.query(
            "SELECT count(), countIf(acknowledged = 0), countIf(status = 'engaged'), sum(score), "
            f"min(tstamp), max(tstamp), sum(occurrences) {base}", p).rows[0]
        by = {}
        for name, col in (("by_type", "alert_type"), ("by_severity", "severity"), ("by_entity_type", "entity_type"),
                          ("by_source", "source")):
            res = self.store.query(f"SELECT {col}, count() AS n, countIf(acknowledged = 0), sum(occurrences) {base} "
                                   f"GROUP BY {col} ORDER BY n DESC LIMIT {{top:UInt32}}", p)
            by[name] = [{"value": v, "count": int(n), "unacknowledged": int(u), "occurrences": int(o)}
                        for v, n, u, o in res.rows]
        res = self.store.query(
            f"SELECT entity_type, entity_value, count() AS n, sum(score) AS s, max(severity_id), sum(occurrences) "
            f"{base} GROUP BY entity_type, entity_value ORDER BY s DESC, n DESC LIMIT {{top:UInt32}}", p)
        by["top_entities"] = [{"entity_type": a, "entity_value": b, "count": int(n), "score": int(s),
                               "max_severity": SEVERITY_BY_ID.get(int(m), str(m)), "occurrences": int(o)}
                              for a, b, n, s, m, o in res.rows]
        return {"total": int(tot[0]), "unacknowledged": int(tot[1]), "engaged": int(tot[2]),
                "score": int(tot[3] or 0), "first": tot[4] if int(tot[0]) else None,
                "last": tot[5] if int(tot[0]) else None, "occurrences": int(tot[6] or 0), **by}

    def view(self, principal: Any = None) -> tuple[str, dict]:
        """FROM-clause for `alerts` as `principal` sees them, with its parameters. Admins see the shared
        acknowledgement; another user sees an alert acknowledged when they acknowledged it themselves
        (`alert_acks`, their view only) or an admin did (for everyone)."""
        if principal is None or principal.is_admin:
            return "alerts FINAL", {}
        own = "m.mid != 0"
        ack = {"acknowledged": f"if({own}, 1, a.acknowledged)", "ack_by": f"if({own}, {{ack_user:String}}, a.ack_by)",
               "ack_time": f"if({own}, m.mtime, a.ack_time)", "ack_comment": f"if({own}, m.mcomment, a.ack_comment)"}
        cols = ", ".join(f"{ack.get(c, 'a.' + c)} AS {c}" for c in ALERT_COLUMNS)
        return (f"(SELECT {cols} FROM alerts AS a FINAL LEFT JOIN ({OWN_ACKS}) AS m ON a.alert_id = m.mid) AS v",
                {"ack_user": principal.name})

    def acknowledge(self, principal: Any, by: str, comment: str = "", max_rows: int = 10_000,
                    acknowledged: bool = True, **filters: Any) -> int:
        """Acknowledge (or un-acknowledge) the matching alerts the principal sees; returns how many
        changed. An admin's acknowledgement is shared; another user's changes only their own view, and
        they can withdraw only their own acknowledgements."""
        filters["acknowledged"] = not acknowledged
        where, p = self.where(principal, **filters)
        source, sp = self.view(principal)
        p.update(sp, lim=int(max_rows))
        if source != "alerts FINAL" and not acknowledged:
            where += f" AND alert_id IN (SELECT mid FROM ({OWN_ACKS}))"
        res = self.store.query(f"SELECT {', '.join(ALERT_COLUMNS)} FROM {source} WHERE {where} "
                               "ORDER BY tstamp DESC LIMIT {lim:UInt32}", p)
        rows = res.dicts()
        if not rows:
            return 0
        now = fmt_ts(time.time())
        version = time.time_ns()
        comment = (comment or "")[:1000] if acknowledged else ""
        if source != "alerts FINAL":
            self.store.insert("alert_acks", ["user", "alert_id", "acknowledged", "ack_time", "ack_comment", "version"],
                              [[principal.name, int(r["alert_id"]), int(acknowledged), now, comment, version]
                               for r in rows])
            return len(rows)
        ids = {}
        for r in rows:
            r["alert_id"] = int(r["alert_id"])
            r["acknowledged"] = int(acknowledged)
            r["ack_by"] = by if acknowledged else ""
            r["ack_time"] = now if acknowledged else fmt_ts(0)
            r["ack_comment"] = comment
            r["version"] = version
            ids[r["alert_id"]] = r
        with self._lock:
            # keep cached rows (dedup / engaged) in step, so later updates don't undo the ack
            for cached in list(self._engaged.values()) + [v[0] for v in self._recent.values()]:
                if cached["alert_id"] in ids:
                    for k in ("acknowledged", "ack_by", "ack_time", "ack_comment"):
                        cached[k] = ids[cached["alert_id"]][k]
            self._write(list(ids.values()))
        return len(ids)

    def host_alert_summary(self, ips: list[str], since: float | None = None) -> dict[str, dict]:
        """{ip: {"score": sum of scores of its unacknowledged alerts, "alerts": alerts involving it,
        "unacknowledged": .., "engaged": ..}} for every requested ip (zeros when none)."""
        ips = [str(i) for i in ips if i][:10_000]
        out = {ip: {"score": 0, "alerts": 0, "unacknowledged": 0, "engaged": 0} for ip in ips}
        if not ips:
            return out
        ips = [i for i in ips if "," not in i]
        p: dict[str, Any] = {"ips": ",".join(ips)}
        cond = ""
        if since is not None:
            cond = " AND tstamp >= {since:DateTime64(3)}"
            p["since"] = fmt_ts(since)
        res = self.store.query(
            "SELECT h, count(), sumIf(score, acknowledged = 0), countIf(acknowledged = 0), countIf(status = 'engaged') "
            "FROM (SELECT arrayJoin(arrayDistinct(arrayFilter(x -> x != '', [ip, peer_ip]))) AS h, score, "
            "acknowledged, status FROM alerts FINAL WHERE (has(splitByChar(',', {ips:String}), ip) "
            "OR has(splitByChar(',', {ips:String}), peer_ip))" + cond + ") "
            "WHERE has(splitByChar(',', {ips:String}), h) GROUP BY h", p)
        for h, n, s, u, e in res.rows:
            out[h] = {"score": int(s or 0), "alerts": int(n), "unacknowledged": int(u), "engaged": int(e)}
        return out

    # --- expected servers ------------------------------------------------------------------
    def expected_servers(self) -> dict[str, list[str]]:
        return {k: list(self.expected[k]["raw"]) if k in self.expected else [] for k in SERVER_KINDS}

    def observed_servers(self, principal: Any = None, limit: int = 20) -> dict[str, list[dict]]:
        """Servers seen in stored flows for each kind, busiest first."""
        scope = principal.flows_filter() if principal is not None else "1"
        queries = {
            "dns": "IP_DST_PORT = 53 AND PROTOCOL IN (6, 17)",
            "dhcp": "PROTOCOL = 17 AND IP_DST_PORT = 67 AND DST2SRC_PACKETS > 0 AND NOT "
                    + GROUP_ADDRESS.format(c="DST_IP"),
            "ntp": "PROTOCOL = 17 AND IP_DST_PORT = 123 AND DST2SRC_PACKETS > 0",
            "smtp": "PROTOCOL = 6 AND IP_DST_PORT IN (25, 465, 587) AND DST2SRC_PACKETS > 0",
        }
        out: dict[str, list[dict]] = {}
        for kind, cond in queries.items():
            res = self.store.query(
                f"SELECT DST_IP, count() AS flows, uniqExact(SRC_IP) AS clients, max(LAST_SEEN) FROM flows "
                f"WHERE {cond} AND {scope} GROUP BY DST_IP ORDER BY flows DESC LIMIT {{lim:UInt32}}", {"lim": limit})
            out[kind] = [{"server": s, "flows": int(f), "clients": int(c), "last_seen": ls,
                          "expected": (self._expected_ip(kind, s) if kind in self.expected else None)}
                         for s, f, c, ls in res.rows]
        if self.local_networks:
            local = " OR ".join(f"isIPAddressInRange(DST_IP, '{n}')" for n in self.local_networks)
            res = self.store.query(
                "SELECT MACNumToString(DST_MAC) AS mac, count() AS flows, uniqExact(SRC_IP), max(LAST_SEEN) FROM flows "
                f"WHERE DST_MAC != 0 AND {UNICAST_MAC.format(c='DST_MAC')} AND NOT ({local}) "
                f"AND NOT {GROUP_ADDRESS.format(c='DST_IP')} AND {scope} GROUP BY mac ORDER BY flows DESC "
                "LIMIT {lim:UInt32}", {"lim": limit})
            exp = self.expected.get("gateway")
            out["gateway"] = [{"server": m.lower(), "flows": int(f), "clients": int(c), "last_seen": ls,
                               "expected": (m.lower() in exp["macs"]) if exp else None} for m, f, c, ls in res.rows]
        return out

