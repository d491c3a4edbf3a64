"""Active monitoring: a registry of probes (SQLite), a scheduler with bounded concurrency,
measurements stored in `am_measurements`, and alerts when a threshold is crossed or a target
stops answering (engaged while the condition holds, released when it clears)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowscope.services.alerts.model import fmt_ts
from flowscope.addresses import AddressError, allowed_special
from flowscope.auth import TargetRefused, check_target
from flowscope.services.monitoring.probes import MEASURE, Measurement, Refused, Unavailable
from flowscope.services.monitoring.targets import ProbeError, hosts_of, normalise_target, probe_id, target_ip, visible
from flowscope.store import local_db

log = logging.getLogger(__name__)

GRANULARITIES = {"min": 60, "5mins": 300, "hour": 3600}


@dataclass(frozen=True)
class ProbeType:
    key: str
    title: str
    unit: str
    operator: str  # "gt": alert when above threshold; "lt": alert when below
    default_threshold: float
    min_threshold: float
    max_threshold: float
    target: str
    description: str

    def crossed(self, value: float | None, threshold: float) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return value > threshold if self.operator == "gt" else value < threshold

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.key, "title": self.title, "unit": self.unit,
                "operator": ">" if self.operator == "gt" else "<",
                "alert_when": "value above threshold" if self.operator == "gt" else "value below threshold",
                "default_threshold": self.default_threshold, "min_threshold": self.min_threshold,
                "max_threshold": self.max_threshold, "granularities": list(GRANULARITIES),
                "target": self.target, "description": self.description}


TYPES: dict[str, ProbeType] = {t.key: t for t in (
    ProbeType("icmp", "ICMP round-trip time", "ms", "gt", 100, 1, 10_000, "host name or IP address",
              "One ICMP echo per run; value = RTT in ms. Alerts when the RTT is above the threshold or no reply."),
    ProbeType("cicmp", "Continuous ICMP availability", "%", "lt", 95, 1, 100, "host name or IP address",
              "A burst of ICMP echoes every run (10 by default, option packets); value = % answered, with jitter, "
              "min/avg/max RTT. Alerts when availability is below the threshold."),
    ProbeType("http", "HTTP(S) response time", "ms", "gt", 1000, 1, 60_000, "http:// or https:// URL",
              "GET the URL (redirects followed, body read up to 2 MB); value = total response time in ms. "
              "HTTP status >= 400 counts as a failure."),
    ProbeType("throughput", "HTTP download throughput", "Mbit/s", "lt", 10, 0.01, 100_000, "http:// or https:// URL",
              "Download the URL (up to 100 MB or 10 s); value = Mbit/s. Alerts when below the threshold."),
    ProbeType("tcp", "TCP connect time", "ms", "gt", 100, 1, 10_000, "HOST:PORT (IPv6 as [addr]:port)",
              "Open a TCP connection; value = connect time in ms. Alerts when above the threshold or refused."),
    ProbeType("dns", "DNS resolution time", "ms", "gt", 100, 1, 10_000, "DNS name to resolve",
              "Ask the given DNS server (option server = IP or IP:port, default the system resolver; option "
              "record_type A/AAAA/MX/TXT/NS/CNAME) over UDP; value = answer time in ms. NXDOMAIN or no answer fails."),
)}

class MonitoringService:
    def __init__(self, app: Any):
        self.app = app
        self.store = app.store
        cfg = app.config.section("monitoring")
        self.concurrency = max(1, min(int(cfg.get("concurrency", 8)), 64))
        self.tick_s = float(cfg.get("tick_s", 5))
        self.granularity_s = dict(GRANULARITIES)
        self.granularity_s.update({k: float(v) for k, v in (cfg.get("granularity_seconds") or {}).items()
                                   if k in GRANULARITIES})
        self.timeouts = {k: float(v) for k, v in (cfg.get("timeouts") or {}).items()}
        self.allow_special = allowed_special(app.config.section("targets").get("allow_special"))
        self.path = Path(app.config.data_dir) / "monitoring.db"
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS probes (id TEXT PRIMARY KEY, type TEXT NOT NULL, target TEXT NOT NULL, "
                       "threshold REAL NOT NULL, granularity TEXT NOT NULL, options TEXT NOT NULL, "
                       "created_by TEXT NOT NULL, created_at REAL NOT NULL, enabled INTEGER NOT NULL DEFAULT 1)")
        self._lock = threading.Lock()
        self._last: dict[str, dict] = {}
        self._next: dict[str, float] = {}
        self._running: set[str] = set()
        self._sem: asyncio.Semaphore | None = None
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.runs = 0

    def _db(self) -> sqlite3.Connection:
        return local_db.connect(self.path)

    @property
    def alerts(self) -> Any:
        return self.app.components.get("alerts")

    # --- registry --------------------------------------------------------------------------
    def probes(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT id, type, target, threshold, granularity, options, created_by, created_at, enabled "
                              "FROM probes ORDER BY created_at").fetchall()
        return [{"id": i, "type": t, "target": g, "threshold": th, "granularity": gr, "options": json.loads(o),
                 "created_by": b, "created_at": c, "enabled": bool(e)} for i, t, g, th, gr, o, b, c, e in rows]

    def probe(self, pid: str) -> dict | None:
        return next((p for p in self.probes() if p["id"] == pid), None)

    def validate(self, ptype: str, target: str, threshold: float | None, granularity: str,
                 options: dict[str, Any] | None) -> dict:
        if ptype not in TYPES:
            raise ProbeError(f"unknown type {ptype!r}; one of {', '.join(TYPES)} (see list_available_active_monitoring_scripts)")
        spec = TYPES[ptype]
        if granularity not in GRANULARITIES:
            raise ProbeError(f"granularity must be one of {', '.join(GRANULARITIES)}")
        th = spec.default_threshold if threshold is None else float(threshold)
        if math.isnan(th) or not spec.min_threshold <= th <= spec.max_threshold:
            raise ProbeError(f"{ptype} threshold must be between {spec.min_threshold:g} and {spec.max_threshold:g} "
                             f"{spec.unit} (got {th:g})")
        norm, opts = normalise_target(ptype, target, dict(options or {}))
        return {"id": probe_id(ptype, norm, opts), "type": ptype, "target": norm, "threshold": th,
                "granularity": granularity, "options": opts}

    def list_for(self, principal: Any, ptype: str | None = None) -> list[dict]:
        return [p for p in self.probes() if (ptype is None or p["type"] == ptype) and visible(p, principal)]

    def check_hosts(self, p: dict, principal: Any) -> dict[str, list[str]]:
        """{host: addresses} for every host the probe sends to, when `principal` may reach them all.
        Raises TargetRefused or AddressError (a host does not resolve). Blocking."""
        return {h: check_target(principal, h, self.allow_special) for h in hosts_of(p)}

    async def add(self, ptype: str, target: str, threshold: float | None = None, granularity: str = "5mins",
                  options: dict[str, Any] | None = None, by: str = "", principal: Any = None) -> tuple[dict, dict]:
        """Validate and register a probe, then run its first measurement at once. With a principal, the
        probe is theirs and its hosts must pass `check_target` (an admin's may also not resolve yet)."""
        p = self.validate(ptype, target, threshold, granularity, options)
        if principal is not None:
            by = principal.name
            try:
                await asyncio.to_thread(self.check_hosts, p, principal)
            except TargetRefused as exc:
                raise ProbeError(str(exc)) from None
            except AddressError as exc:
                if not principal.is_admin:
                    raise ProbeError(f"{exc}: a target must resolve when it is added") from None
        with self._lock, self._db() as db:
            if db.execute("SELECT 1 FROM probes WHERE id = ?", (p["id"],)).fetchone():
                raise ProbeError(f"a probe {p['id']!r} exists already; remove it first to change it")
            db.execute("INSERT INTO probes VALUES (?,?,?,?,?,?,?,?,1)",
                       (p["id"], p["type"], p["target"], p["threshold"], p["granularity"],
                        json.dumps(p["options"]), by, time.time()))
        p = self.probe(p["id"]) or p
        result = await self.run_probe(p)
        return p, result

    def remove(self, pid: str, principal: Any = None) -> dict:
        """Remove a probe: its owner or an admin (no principal: the server itself)."""
        with self._lock, self._db() as db:
            row = db.execute("SELECT type, target, options, created_by FROM probes WHERE id = ?", (pid,)).fetchone()
            probe = row and {"type": row[0], "target": row[1], "options": json.loads(row[2]), "created_by": row[3]}
            if not probe or not visible(probe, principal):
                raise ProbeError(f"no probe {pid!r} (see list_enabled_active_monitoring_scripts)")
            if principal is not None and not principal.owns(probe["created_by"]):
                raise ProbeError(f"probe {pid!r} belongs to {probe['created_by']}; only they or an admin can remove it")
            db.execute("DELETE FROM probes WHERE id = ?", (pid,))
        self._last.pop(pid, None)
        self._next.pop(pid, None)
        if self.alerts:
            for kind in ("threshold", "unreachable"):
                self.alerts.release(("am", pid, kind), "probe removed")
        return {"id": pid, "type": probe["type"], "target": probe["target"]}

    def _disable(self, p: dict, why: str) -> None:
        with self._lock, self._db() as db:
            db.execute("UPDATE probes SET enabled = 0 WHERE id = ?", (p["id"],))
        if self.alerts:
            self.alerts.raise_alert("am_host", p["target"], "am_probe_disabled", "warning",
                                    f"Probe {p['id']} disabled: {why}", {"probe_id": p["id"], "owner": p["created_by"]},
                                    ip=target_ip(p), source="probe")

    # --- measuring -------------------------------------------------------------------------
    def _owner_check(self, p: dict) -> tuple[Any, dict[str, list[str]] | None, Measurement | None]:
        """Before each run, with the owner's current rights: (owner, pinned addresses, None), or
        (owner, None, a measurement saying why it must not run). Probes without an owner belong to the
        server and are not checked."""
        owner = p.get("created_by") or ""
        auth = getattr(self.app, "auth", None)
        if not owner or auth is None:
            return None, None, None
        principal = auth.current_principal(owner)
        unit = TYPES[p["type"]].unit
        if principal is None:
            self._disable(p, f"its owner {owner!r} no longer exists")
            return None, None, Measurement(False, None, unit, f"not measured: owner {owner!r} removed",
                                           {"refused": True, "disabled": True})
        try:
            return principal, self.check_hosts(p, principal), None
        except TargetRefused as exc:
            return principal, None, Measurement(False, None, unit, f"not measured: {exc}", {"refused": True})
        except AddressError as exc:
            return principal, None, Measurement(False, None, unit, str(exc))

    async def measure(self, p: dict, owner: Any = None,
                      pinned: dict[str, list[str]] | None = None) -> tuple[Measurement, bool]:
        """(measurement, ran). ran=False when it cannot run on this machine. `pinned`: the checked
        addresses of each host, used instead of resolving again; `owner`: whose rights every HTTP
        request (redirects included) is checked with."""
        fn = MEASURE[p["type"]]
        kw = dict(p.get("options") or {})
        if p["type"] in self.timeouts:
            kw["timeout"] = self.timeouts[p["type"]]
        if pinned and p["type"] in ("icmp", "cicmp", "tcp"):
            kw["address"] = next(iter(pinned.values()))[0]
        if owner is not None and p["type"] in ("http", "throughput"):
            kw["check_host"] = lambda host: self._check_or_refuse(host, owner)
        try:
            return await fn(p["target"], **kw), True
        except Unavailable as exc:
            return Measurement(False, None, TYPES[p["type"]].unit, f"cannot run: {exc}", {"unavailable": True}), False
        except Exception as exc:  # never let one probe break the scheduler
            log.exception("probe %s failed", p["id"])
            return Measurement(False, None, TYPES[p["type"]].unit, f"measurement error: {type(exc).__name__}: {exc}"), True

    def _check_or_refuse(self, host: str, owner: Any) -> None:
        try:
            check_target(owner, host, self.allow_special)
        except (TargetRefused, AddressError) as exc:
            raise Refused(str(exc)) from None

    async def run_probe(self, p: dict) -> dict:
        owner, pinned, refused = await asyncio.to_thread(self._owner_check, p)
        if refused is not None:
            if refused.extra.get("refused") and not refused.extra.get("disabled") and self.alerts:
                await asyncio.to_thread(self.alerts.raise_alert, "am_host", p["target"], "am_target_refused",
                                        "warning", f"Probe {p['id']} not run: {refused.error}", {"probe_id": p["id"]},
                                        ip=target_ip(p), source="probe")
            return await asyncio.to_thread(self._record, p, refused, not refused.extra.get("refused"))
        m, ran = await self.measure(p, owner, pinned)
        # storing and alerting block on the database: keep them off the event loop
        return await asyncio.to_thread(self._record, p, m, ran)

    def _record(self, p: dict, m: Measurement, ran: bool) -> dict:
        spec = TYPES[p["type"]]
        now = time.time()
        crossed = bool(m.ok and spec.crossed(m.value, p["threshold"]))
        result = {"probe_id": p["id"], "type": p["type"], "target": p["target"], "time": fmt_ts(now),
                  "value": m.value, "unit": m.unit, "ok": m.ok, "ran": ran, "threshold": p["threshold"],
                  "operator": ">" if spec.operator == "gt" else "<", "crossed": crossed, "error": m.error,
                  "extra": m.extra}
        try:
            self.store.insert("am_measurements",
                              ["probe_id", "probe_type", "target", "time", "value", "unit", "ok", "threshold",
                               "crossed", "error", "extra"],
                              [[p["id"], p["type"], p["target"], fmt_ts(now),
                                float("nan") if m.value is None else float(m.value), m.unit, int(m.ok),
                                float(p["threshold"]), int(crossed), m.error, json.dumps(m.extra, default=str)]])
        except Exception:
            log.exception("could not store measurement of %s", p["id"])
        self._last[p["id"]] = result
        self.runs += 1
        if ran:
            result["alerts"] = self._alerts(p, spec, m, crossed)
        return result

    def _alerts(self, p: dict, spec: ProbeType, m: Measurement, crossed: bool) -> dict:
        al = self.alerts
        if al is None:
            return {}
        pid, target = p["id"], p["target"]
        state = {}
        ev = {"probe_id": pid, "type": p["type"], "target": target, "value": m.value, "unit": m.unit,
              "threshold": p["threshold"], "operator": ">" if spec.operator == "gt" else "<", "error": m.error,
              **{k: v for k, v in m.extra.items() if k != "answers"}}
        ip = target_ip(p)
        if not m.ok:
            al.release(("am", pid, "threshold"), "target unreachable")
            state["unreachable"] = al.engage(("am", pid, "unreachable"), "am_host", target, "am_unreachable", "error",
                                             f"{spec.title}: {target} unreachable ({m.error})", ev, score=100, ip=ip,
                                             source="probe")
            return state
        if al.release(("am", pid, "unreachable"), f"reachable again ({m.value} {m.unit})"):
            state["unreachable_released"] = True
        if crossed:
            word = "above" if spec.operator == "gt" else "below"
            state["threshold"] = al.engage(("am", pid, "threshold"), "am_host", target, "am_threshold_cross",
                                           "warning", f"{spec.title} of {target} is {m.value:g} {m.unit}, {word} the "
                                           f"threshold {p['threshold']:g} {m.unit}", ev, score=50, ip=ip,
                                           source="probe")
        elif al.release(("am", pid, "threshold"), f"back within threshold ({m.value:g} {m.unit})"):
            state["threshold_released"] = True
        return state

    # --- scheduler -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._task = asyncio.create_task(self._loop(), name="active-monitoring")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                self.run_due(time.monotonic())
            except Exception:
                log.exception("active monitoring tick failed")
            await asyncio.sleep(self.tick_s)

    def run_due(self, now: float) -> list[str]:
        """Start the probes whose period has elapsed (at most `concurrency` run at once)."""
        started = []
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        for p in self.probes():
            if not p["enabled"] or p["id"] in self._running:
                continue
            due = self._next.get(p["id"])
            period = self.granularity_s[p["granularity"]]
            if due is None:
                # first run after start (or after add, whose first run already happened): one period on
                due = now + (period if p["id"] in self._last else 0)
                self._next[p["id"]] = due
            if now >= due:
                self._next[p["id"]] = now + period
                self._running.add(p["id"])
                task = asyncio.create_task(self._guarded(p))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(p["id"])
        return started

    async def _guarded(self, p: dict) -> None:
        assert self._sem is not None
        try:  # noqa: SIM105
            async with self._sem:
                await self.run_probe(p)
        finally:
            self._running.discard(p["id"])

    # --- reading ---------------------------------------------------------------------------
    def last(self, pid: str) -> dict | None:
        if pid in self._last:
            return self._last[pid]
        res = self.store.query(
            "SELECT time, value, unit, ok, crossed, error, extra, threshold FROM am_measurements "
            "WHERE probe_id = {p:String} ORDER BY time DESC LIMIT 1", {"p": pid})
        if not res.rows:
            return None
        t, v, u, ok, cr, err, extra, th = res.rows[0]
        return {"probe_id": pid, "time": t, "value": _num(v), "unit": u, "ok": bool(ok), "crossed": bool(cr),
                "error": err, "extra": json.loads(extra or "{}"), "threshold": th}

    def availability(self, pid: str, hours: int = 24) -> list[dict]:
        res = self.store.query(
            "SELECT toStartOfHour(time) AS h, count(), round(100 * avg(ok), 2), "
            "round(avgIf(value, ok = 1 AND NOT isNaN(value)), 3), countIf(crossed = 1) FROM am_measurements "
            "WHERE probe_id = {p:String} AND time >= now64(3) - toIntervalHour({h:UInt32}) GROUP BY h ORDER BY h",
            {"p": pid, "h": int(hours)})
        return [{"hour": h, "measurements": int(n), "availability_pct": _num(a), "avg_value": _num(v),
                 "threshold_crossings": int(c)} for h, n, a, v, c in res.rows]

    def series(self, pid: str, limit: int = 100) -> list[dict]:
        res = self.store.query(
            "SELECT time, value, ok, crossed FROM am_measurements WHERE probe_id = {p:String} "
            "ORDER BY time DESC LIMIT {n:UInt32}", {"p": pid, "n": int(limit)})
        return [{"time": t, "value": _num(v), "ok": bool(ok), "crossed": bool(c)} for t, v, ok, c in res.rows][::-1]


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
