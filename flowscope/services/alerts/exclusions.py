"""Alert exclusions (hosts, domains, TLS certificates), kept in SQLite so they survive restarts."""

from __future__ import annotations

import ipaddress
import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from flowscope.addresses import AddressError, parse_network
from flowscope.services.alerts.model import CERTIFICATE_RISKS, risk_slug
from flowscope.store import local_db

KINDS = ("host", "domain", "certificate")
_DOMAIN_RE = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,62})?)(\.[a-z0-9_]([a-z0-9_-]{0,62})?)*\.?$")
CERT_ALERT_TYPES = {risk_slug(b) for b in CERTIFICATE_RISKS}


class ExclusionError(ValueError):
    pass


def normalise(kind: str, value: str) -> str:
    value = (value or "").strip()
    if kind == "host":
        try:
            net = parse_network(value)
        except AddressError as exc:
            raise ExclusionError(f"host must be an IP address or CIDR, e.g. 192.168.1.10 or 10.0.0.0/24: {exc}") from None
        return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
    if kind == "domain":
        d = value.lower().rstrip(".")
        if not d or len(d) > 253 or not _DOMAIN_RE.match(d):
            raise ExclusionError(f"domain must be a DNS name such as example.com or *.example.com (got {value!r})")
        return d[2:] if d.startswith("*.") else d
    if kind == "certificate":
        c = value.strip().lower()
        if not c or len(c) > 512 or any(ord(ch) < 32 for ch in c):
            raise ExclusionError("certificate must be the TLS server name (subject/SNI, wildcard allowed), the "
                                 "certificate SHA-1 / JA3S fingerprint, or the issuer DN text")
        return c[2:] if c.startswith("*.") else c
    raise ExclusionError(f"kind must be one of {', '.join(KINDS)}")


def _domain_match(name: str, rule: str) -> bool:
    name = (name or "").lower().rstrip(".")
    return bool(name) and (name == rule or name.endswith("." + rule))


class Exclusions:
    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS exclusions (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
                "value TEXT NOT NULL, alert_types TEXT NOT NULL DEFAULT '[]', reason TEXT NOT NULL, "
                "created_by TEXT NOT NULL, created_at REAL NOT NULL, UNIQUE(kind, value))")
        self._rules: list[dict] = []
        self._reload()

    def _db(self) -> sqlite3.Connection:
        return local_db.connect(self.path)

    def _reload(self) -> None:
        rules = self.list()
        for r in rules:
            if r["kind"] == "host":
                r["_net"] = ipaddress.ip_network(r["value"], strict=False)
        self._rules = rules

    def add(self, kind: str, value: str, reason: str, by: str, alert_types: list[str] | None = None) -> dict:
        value = normalise(kind, value)
        reason = (reason or "").strip()
        if not reason:
            raise ExclusionError("a reason is required: say why these alerts are expected")
        types = sorted({t.strip() for t in (alert_types or []) if t and t.strip()})
        with self._lock, self._db() as db:
            if db.execute("SELECT 1 FROM exclusions WHERE kind = ? AND value = ?", (kind, value)).fetchone():
                raise ExclusionError(f"a {kind} exclusion for {value!r} exists already (see list_alert_exclusions)")
            cur = db.execute(
                "INSERT INTO exclusions (kind, value, alert_types, reason, created_by, created_at) VALUES (?,?,?,?,?,?)",
                (kind, value, json.dumps(types), reason, by, time.time()))
            new_id = cur.lastrowid
        self._reload()
        return next(r for r in self.list() if r["id"] == new_id)

    def remove(self, ex_id: int) -> dict:
        with self._lock, self._db() as db:
            row = db.execute("SELECT kind, value FROM exclusions WHERE id = ?", (ex_id,)).fetchone()
            if not row:
                raise ExclusionError(f"no exclusion with id {ex_id} (see list_alert_exclusions)")
            db.execute("DELETE FROM exclusions WHERE id = ?", (ex_id,))
        self._reload()
        return {"id": ex_id, "kind": row[0], "value": row[1]}

    def list(self, kind: str | None = None) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT id, kind, value, alert_types, reason, created_by, created_at FROM exclusions "
                              "ORDER BY id").fetchall()
        out = [{"id": i, "kind": k, "value": v, "alert_types": json.loads(t), "reason": r,
                "created_by": b, "created_at": c} for i, k, v, t, r, b, c in rows]
        return [r for r in out if kind is None or r["kind"] == kind]

    # --- on behalf of a user: who sees and changes what -------------------------------------
    @staticmethod
    def visible(rule: dict, principal: Any) -> bool:
        """Admins and the rule's owner see it; a user with allowed networks also sees host rules that lie
        inside them; a user without network limits sees every rule (they see the traffic it affects)."""
        if principal is None or principal.owns(rule["created_by"]):
            return True
        if rule["kind"] == "host":
            return principal.can_see_network(ipaddress.ip_network(rule["value"], strict=False))
        return not principal.restricted

    def list_for(self, principal: Any, kind: str | None = None) -> list[dict]:
        return [r for r in self.list(kind) if self.visible(r, principal)]

    def add_for(self, principal: Any, kind: str, value: str, reason: str, alert_types: list[str] | None = None) -> dict:
        """Exclusions stop alerts from being raised for everyone, so a user with allowed networks may only
        exclude hosts inside them."""
        if principal.restricted:
            if kind != "host":
                raise ExclusionError("users limited to some networks can only add host exclusions inside them")
            if not principal.can_see_network(ipaddress.ip_network(normalise(kind, value), strict=False)):
                raise ExclusionError(f"{value} is outside your allowed networks")
        return self.add(kind, value, reason, principal.name, alert_types)

    def remove_for(self, principal: Any, ex_id: int) -> dict:
        rule = next((r for r in self.list() if r["id"] == ex_id), None)
        if rule is None or not self.visible(rule, principal):
            raise ExclusionError(f"no exclusion with id {ex_id} (see list_alert_exclusions)")
        if not principal.owns(rule["created_by"]):
            raise ExclusionError(f"exclusion #{ex_id} belongs to {rule['created_by']}; only they or an admin can "
                                 "remove it")
        return self.remove(ex_id)

    def match(self, alert: dict, evidence: dict[str, Any]) -> dict | None:
        """The first exclusion matching an alert about to be raised, or None."""
        if not self._rules:
            return None
        atype = alert.get("alert_type", "")
        ips = [x for x in (alert.get("ip"), alert.get("peer_ip")) if x]
        if alert.get("entity_type") == "host" and alert.get("entity_value"):
            ips.append(alert["entity_value"])
        names = [str(evidence.get(k) or "") for k in ("DOMAIN_NAME", "INFO", "domain", "server_name", "sni")]
        if alert.get("entity_type") == "domain":
            names.append(alert.get("entity_value", ""))
        for rule in self._rules:
            if rule["alert_types"] and atype not in rule["alert_types"]:
                continue
            if rule["kind"] == "host":
                net = rule["_net"]
                for ip in ips:
                    try:
                        addr = ipaddress.ip_address(str(ip).split("%")[0])
                    except ValueError:
                        continue
                    if addr.version == net.version and addr in net:
                        return rule
            elif rule["kind"] == "domain":
                if any(_domain_match(n, rule["value"]) for n in names):
                    return rule
            elif rule["kind"] == "certificate":
                if atype not in CERT_ALERT_TYPES:
                    continue
                prints = [str(evidence.get(k) or "").lower() for k in
                          ("SERVER_FINGERPRINT", "cert_sha1", "cert_issuer", "cert_subject")]
                if rule["value"] in prints or any(_domain_match(n, rule["value"]) for n in names):
                    return rule
        return None
