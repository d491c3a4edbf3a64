"""AI policies: a plain-language requirement compiled to a guarded ClickHouse query that runs on
a schedule; every row it returns is a violation and raises a policy alert with the row as evidence.

Compilation order: 1) SQL given by the calling agent; 2) a configured OpenAI-compatible LLM
(`[llm] url, model, api_key` in flowscope.toml); 3) the built-in intents (builtin.py).
Every SQL goes through the same guard as the `query` tool, with the creator's network scope.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flowscope.services.alerts.model import severity_for_score
from flowscope.services.policies.builtin import (
    Compiled,
    NoIntent,
    compile_intent,
    intents_help,
)
from flowscope.store import local_db, schema

log = logging.getLogger(__name__)

PERIODICITIES = {"min": 60, "5min": 300, "hourly": 3600, "daily": 86400}
MAX_ROWS = 1000
MAX_ALERTS_PER_RUN = 50
MAX_SEEN_PER_POLICY = 20_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,79}$")
_IP_COLS = ("SRC_IP", "src_ip", "host", "ip", "IP", "client", "first_ip", "DST_IP", "dst_ip", "server",
            "dns_server", "peer")


class PolicyError(ValueError):
    pass


@dataclass
class CompileResult:
    sql: str            # as compiled (before the guard's network rewrite)
    source: str         # agent | llm | builtin
    intent: str
    explanation: str
    notes: list[str]


def schema_hints(max_cols: int = 80) -> str:
    t = schema.TABLES["flows"]
    cols = ", ".join(f"{c.name} {c.type}" for c in t.columns[:max_cols])
    return f"Table flows ({t.comment}) columns: {cols}"


def _llm_prompt() -> str:
    return (
        "You translate a network security policy into ONE ClickHouse SELECT over flowscope's tables. "
        "Rows returned are violations, so return nothing when the network complies. Group to one row per "
        "offending host/flow tuple and include the host addresses (SRC_IP / DST_IP) as columns. "
        "Restrict time with FIRST_SEEN >= (SELECT max(LAST_SEEN) FROM flows) - INTERVAL 1 HOUR (or the period "
        "asked). No SETTINGS, FORMAT, table functions or other databases. Answer with the SQL only.\n"
        + schema_hints())


def _extract_sql(text: str) -> str:
    m = re.search(r"```(?:sql|clickhouse)?\s*(.*?)```", text, re.S | re.I)
    if m:
        text = m.group(1)
    m = re.search(r"\b(SELECT|WITH)\b", text, re.I)
    if m:
        text = text[m.start():]
    return text.strip().rstrip(";").strip()


def _norm_sql(sql: str) -> str:
    return " ".join(sql.lower().split()).rstrip(";")


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text.lower()).strip("-")
    return (s[:60].rstrip("-") or "policy")


class PoliciesService:
    def __init__(self, app: Any):
        self.app = app
        self.store = app.store
        cfg = app.config.section("policies")
        self.periods = dict(PERIODICITIES)
        self.periods.update({k: float(v) for k, v in (cfg.get("period_seconds") or {}).items() if k in PERIODICITIES})
        self.tick_s = float(cfg.get("tick_s", 10))
        self.max_alerts = int(cfg.get("max_alerts_per_run", MAX_ALERTS_PER_RUN))
        self.path = Path(app.config.data_dir) / "policies.db"
        with self._db() as db:
            db.executescript(
                "CREATE TABLE IF NOT EXISTS policies (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
                "description TEXT NOT NULL, sql TEXT NOT NULL, source TEXT NOT NULL, intent TEXT NOT NULL, "
                "explanation TEXT NOT NULL, periodicity TEXT NOT NULL, score INTEGER NOT NULL, "
                "alert_message TEXT NOT NULL DEFAULT '', paused INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL, "
                "owner_role TEXT NOT NULL, owner_networks TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, "
                "updated_at REAL NOT NULL, last_run REAL, last_matches INTEGER, last_error TEXT);"
                "CREATE TABLE IF NOT EXISTS seen (policy_id INTEGER NOT NULL, row_hash TEXT NOT NULL, "
                "first_seen REAL NOT NULL, PRIMARY KEY (policy_id, row_hash));")
            if "paused_reason" not in {r[1] for r in db.execute("PRAGMA table_info(policies)")}:
                db.execute("ALTER TABLE policies ADD COLUMN paused_reason TEXT NOT NULL DEFAULT ''")
        self._lock = threading.RLock()
        self._next: dict[int, float] = {}
        self._task: asyncio.Task | None = None
        self.runs = 0

    def _db(self) -> sqlite3.Connection:
        return local_db.connect(self.path)

    @property
    def alerts(self) -> Any:
        return self.app.components.get("alerts")

    # --- compiling -------------------------------------------------------------------------
    def _guard(self, sql: str, principal: Any) -> str:
        from flowscope.store.guard import GuardError, guard_sql

        try:
            return guard_sql(sql, principal)
        except GuardError as exc:
            raise PolicyError(f"policy SQL refused: {exc}") from None

    def _llm(self, description: str) -> str:
        import httpx

        cfg = self.app.config.section("llm")
        url = str(cfg.get("url") or "").rstrip("/")
        if not url.endswith("/chat/completions"):
            url += "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if cfg.get("api_key"):
            headers["Authorization"] = f"Bearer {cfg['api_key']}"
        body = {"model": cfg.get("model") or "gpt-4o-mini", "temperature": 0,
                "messages": [{"role": "system", "content": _llm_prompt()},
                             {"role": "user", "content": description}]}
        with httpx.Client(timeout=float(cfg.get("timeout_s", 30)), trust_env=False) as client:
            resp = client.post(url, json=body, headers=headers)
        if resp.status_code != 200:
            raise PolicyError(f"LLM provider answered HTTP {resp.status_code}")
        try:
            text = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise PolicyError("LLM provider answer is not an OpenAI chat completion") from None
        sql = _extract_sql(str(text or ""))
        if not sql:
            raise PolicyError("LLM provider returned no SQL")
        return sql

    def compile(self, description: str, sql: str | None, principal: Any) -> CompileResult:
        notes: list[str] = []
        if sql and sql.strip():
            self._guard(sql, principal)
            return CompileResult(sql.strip().rstrip(";"), "agent", "custom_sql",
                                 "SQL given by the caller; every row it returns is a violation.", notes)
        if self.app.config.section("llm").get("url"):
            try:
                llm_sql = self._llm(description)
                self._guard(llm_sql, principal)
                return CompileResult(llm_sql, "llm", "llm",
                                     "SQL written by the configured LLM provider from the description; every row "
                                     "it returns is a violation. Check it, and pass `sql` to override.", notes)
            except Exception as exc:
                notes.append(f"LLM compilation failed ({exc}); tried the built-in intents")
        ctx = {"lookback": 3600, "local_networks": list(getattr(self.app.config, "local_networks", []) or [])}
        al = self.alerts
        if al is not None:
            ctx["expected_dns"] = al.expected_servers().get("dns", [])
        else:
            ctx["expected_dns"] = list(self.app.config.section("expected_servers").get("dns") or [])
        try:
            c: Compiled = compile_intent(description, ctx)
        except NoIntent as exc:
            extra = (" " + " ".join(notes)) if notes else ""
            raise PolicyError(
                f"could not compile the description: {exc}.{extra} Pass `sql` with one ClickHouse SELECT whose "
                f"rows are the violations (e.g. SELECT SRC_IP, count() AS flows FROM flows WHERE FIRST_SEEN >= "
                f"now() - INTERVAL 1 HOUR AND DST_PORT = 23 GROUP BY SRC_IP), or phrase it as one of the built-in "
                f"intents: {intents_help()}. {schema_hints(45)}") from None
        self._guard(c.sql, principal)
        return CompileResult(c.sql, "builtin", c.intent, c.explanation, notes)

    # --- running ---------------------------------------------------------------------------
    def _owner(self, p: dict) -> tuple[Any, str]:
        """(the owner's rights now, "") or (None, why the policy must not run): a policy runs with what
        its owner may see today, and stops when its owner is removed or is no longer an admin while
        the policy was made with admin rights."""
        principal = self.app.auth.current_principal(p["owner"])
        if principal is None:
            return None, f"its owner {p['owner']!r} no longer exists"
        if p["owner_role"] == "admin" and not principal.is_admin:
            return None, (f"its owner {p['owner']!r} is no longer an admin (role {principal.role!r}); resume it to "
                          "run it with their current rights")
        return replace(principal, read_only=True), ""

    def _pause_for(self, p: dict, reason: str) -> None:
        with self._db() as db:
            db.execute("UPDATE policies SET paused = 1, paused_reason = ?, updated_at = ? WHERE id = ?",
                       (reason, time.time(), p["id"]))
        self._next.pop(p["id"], None)
        if self.alerts is not None:
            self.alerts.raise_alert("policy", p["name"], "policy_paused", "warning",
                                    f"Policy '{p['name']}' paused: {reason}",
                                    {"policy_id": p["id"], "policy_name": p["name"], "owner": p["owner"],
                                     "reason": reason}, source="policy", dedup_s=0)

    def _execute(self, sql: str, principal: Any, max_rows: int = MAX_ROWS) -> tuple[list[str], list[list], bool]:
        from flowscope.store.guard import GuardError, run_guarded

        try:
            out = run_guarded(self.app, principal, sql, max_rows=max_rows)
        except GuardError as exc:
            raise PolicyError(f"policy query failed: {exc}") from None
        return out.columns, out.rows, out.truncated

    def dry_run(self, sql: str, principal: Any, sample: int = 20) -> dict:
        cols, rows, truncated = self._execute(sql, principal)
        return {"columns": cols, "matches": len(rows), "truncated": truncated, "sample": rows[:sample]}

    def run_policy(self, pid: int) -> dict:
        """Run a policy now: raise one alert per new violating row (bounded); returns a summary."""
        p = self.get(pid)
        start = time.time()
        owner, why = self._owner(p)
        if owner is None:
            self._pause_for(p, why)
            return {"policy_id": pid, "ok": False, "error": f"policy paused: {why}", "matches": 0, "alerts": 0}
        try:
            cols, rows, truncated = self._execute(p["sql"], owner)
        except PolicyError as exc:
            self._update_run(pid, start, None, str(exc))
            return {"policy_id": pid, "ok": False, "error": str(exc), "matches": 0, "alerts": 0}
        new_rows = self._new_rows(pid, cols, rows)
        raised = 0
        al = self.alerts
        if al is not None:
            for row in new_rows[: self.max_alerts]:
                if self._raise(p, cols, row):
                    raised += 1
            if len(new_rows) > self.max_alerts:
                al.raise_alert("policy", p["name"], "policy_violation", severity_for_score(p["score"]),
                               f"Policy '{p['name']}': {len(new_rows) - self.max_alerts} more violations not "
                               "raised one by one (limit per run)",
                               {"policy_id": pid, "policy_name": p["name"], "more_rows": len(new_rows) - self.max_alerts,
                                "sample": [dict(zip(cols, r)) for r in new_rows[self.max_alerts:self.max_alerts + 20]]},
                               score=p["score"], source="policy", dedup_s=0)
        self._update_run(pid, start, len(rows), None)
        self.runs += 1
        return {"policy_id": pid, "ok": True, "matches": len(rows), "new": len(new_rows), "alerts": raised,
                "truncated": truncated}

    @staticmethod
    def _row_key(cols: list[str], row: list) -> str:
        # identity of a violation: its non-numeric values (host, window start...), so growing counters
        # on later runs don't re-raise the same violation
        ident = [v for v in row if not isinstance(v, (int, float)) or isinstance(v, bool)]
        return hashlib.sha1(json.dumps(ident or row, default=str).encode()).hexdigest()

    def _new_rows(self, pid: int, cols: list[str], rows: list[list]) -> list[list]:
        out = []
        now = time.time()
        with self._lock, self._db() as db:
            for row in rows:
                h = self._row_key(cols, row)
                cur = db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (pid, h, now))
                if cur.rowcount:
                    out.append(row)
            n = db.execute("SELECT count(*) FROM seen WHERE policy_id = ?", (pid,)).fetchone()[0]
            if n > MAX_SEEN_PER_POLICY:
                db.execute("DELETE FROM seen WHERE policy_id = ? AND row_hash IN (SELECT row_hash FROM seen WHERE "
                           "policy_id = ? ORDER BY first_seen LIMIT ?)", (pid, pid, n - MAX_SEEN_PER_POLICY))
        return out

    def _raise(self, p: dict, cols: list[str], row: list) -> int | None:
        rec = dict(zip(cols, row))
        ips = []
        for c in _IP_COLS:
            v = rec.get(c)
            if isinstance(v, str) and v and _is_ip(v) and v not in ips:
                ips.append(v)
        summary = ", ".join(f"{k}={v}" for k, v in list(rec.items())[:6])
        desc = (p["alert_message"] or f"Policy '{p['name']}' violated: {p['description']}")[:500] + f" [{summary}]"
        return self.alerts.raise_alert(
            "policy", p["name"], "policy_violation", severity_for_score(p["score"]), desc,
            {"policy_id": p["id"], "policy_name": p["name"], "intent": p["intent"], "row": rec},
            score=p["score"], ip=ips[0] if ips else "", peer_ip=ips[1] if len(ips) > 1 else "", source="policy",
            dedup_s=0)

    def _update_run(self, pid: int, t: float, matches: int | None, error: str | None) -> None:
        with self._db() as db:
            db.execute("UPDATE policies SET last_run = ?, last_matches = ?, last_error = ? WHERE id = ?",
                       (t, matches, error, pid))

    # --- registry --------------------------------------------------------------------------
    def list(self) -> list[dict]:
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM policies ORDER BY id")]
        for r in rows:
            r["paused"] = bool(r["paused"])
        return rows

    def get(self, ref: int | str) -> dict:
        for p in self.list():
            if p["id"] == ref or p["name"] == ref or str(p["id"]) == str(ref):
                return p
        raise PolicyError(f"no policy {ref!r} (see list_ai_policies)")

    def visible(self, p: dict, principal: Any) -> bool:
        return principal is None or principal.is_admin or p["owner"] == principal.name

    def _check_fields(self, name: str, periodicity: str, score: int) -> None:
        if not _NAME_RE.match(name):
            raise PolicyError("name: 1-80 letters, digits, spaces, '_', '.', ':' or '-', starting with a letter or digit")
        if periodicity not in PERIODICITIES:
            raise PolicyError(f"periodicity must be one of {', '.join(PERIODICITIES)}")
        if not 1 <= int(score) <= 1000:
            raise PolicyError("score must be between 1 and 1000")

    def create(self, principal: Any, description: str, sql: str | None = None, name: str | None = None,
               periodicity: str = "5min", score: int = 100, alert_message: str | None = None) -> dict:
        description = (description or "").strip()
        if not description:
            raise PolicyError("description is required: say in plain language what must not happen")
        name = (name or _slug(description)).strip()
        self._check_fields(name, periodicity, score)
        comp = self.compile(description, sql, principal)
        existing = self.list()
        for p in existing:
            if p["name"] == name:
                raise PolicyError(f"a policy named {name!r} exists already (id {p['id']}); use update_ai_policy")
            if _norm_sql(p["sql"]) == _norm_sql(comp.sql):
                raise PolicyError(f"policy {p['name']!r} (id {p['id']}) already runs the same query")
        dry = self.dry_run(comp.sql, principal)
        now = time.time()
        nets = ",".join(str(n) for n in getattr(principal, "allowed_networks", ()) or ())
        with self._lock, self._db() as db:
            cur = db.execute(
                "INSERT INTO policies (name, description, sql, source, intent, explanation, periodicity, score, "
                "alert_message, paused, owner, owner_role, owner_networks, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,0,?,?,?,?,?)",
                (name, description, comp.sql, comp.source, comp.intent, comp.explanation, periodicity, int(score),
                 (alert_message or "").strip(), principal.name, principal.role, nets, now, now))
            pid = cur.lastrowid
        return {"policy": self.get(pid), "dry_run": dry, "explanation": comp.explanation, "notes": comp.notes}

    def update(self, principal: Any, ref: int | str, *, description: str | None = None, sql: str | None = None,
               name: str | None = None, periodicity: str | None = None, score: int | None = None,
               alert_message: str | None = None) -> dict:
        p = self.get_for(principal, ref)
        new = dict(p)
        for k, v in (("description", description), ("name", name), ("periodicity", periodicity), ("score", score),
                     ("alert_message", alert_message)):
            if v is not None:
                new[k] = v.strip() if isinstance(v, str) else v
        self._check_fields(new["name"], new["periodicity"], new["score"])
        dry, notes = None, []
        if sql is not None or description is not None:
            comp = self.compile(new["description"], sql, principal)
            for other in self.list():
                if other["id"] != p["id"] and _norm_sql(other["sql"]) == _norm_sql(comp.sql):
                    raise PolicyError(f"policy {other['name']!r} (id {other['id']}) already runs the same query")
            new.update(sql=comp.sql, source=comp.source, intent=comp.intent, explanation=comp.explanation)
            dry = self.dry_run(comp.sql, principal)
            notes = comp.notes
            new["owner_networks"] = ",".join(str(n) for n in getattr(principal, "allowed_networks", ()) or ())
        if new["name"] != p["name"] and any(o["name"] == new["name"] for o in self.list()):
            raise PolicyError(f"a policy named {new['name']!r} exists already")
        with self._lock, self._db() as db:
            db.execute("UPDATE policies SET name=?, description=?, sql=?, source=?, intent=?, explanation=?, "
                       "periodicity=?, score=?, alert_message=?, owner_networks=?, updated_at=? WHERE id=?",
                       (new["name"], new["description"], new["sql"], new["source"], new["intent"], new["explanation"],
                        new["periodicity"], int(new["score"]), new["alert_message"], new["owner_networks"],
                        time.time(), p["id"]))
            if new["sql"] != p["sql"]:
                db.execute("DELETE FROM seen WHERE policy_id = ?", (p["id"],))
        self._next.pop(p["id"], None)
        return {"policy": self.get(p["id"]), "dry_run": dry, "notes": notes}

    def set_paused(self, principal: Any, ref: int | str, paused: bool) -> dict:
        """Pause or resume. Resuming a policy paused because its owner lost the admin role accepts
        their current rights: its SQL must pass the guard with them."""
        p = self.get_for(principal, ref)
        role = p["owner_role"]
        if not paused:
            owner = self.app.auth.current_principal(p["owner"])
            if owner is None:
                raise PolicyError(f"policy {p['name']!r} cannot run: its owner {p['owner']!r} no longer exists; "
                                  "delete it, or recreate it under another user")
            self._guard(p["sql"], owner)
            role = owner.role
        with self._db() as db:
            db.execute("UPDATE policies SET paused = ?, paused_reason = '', owner_role = ?, updated_at = ? "
                       "WHERE id = ?", (int(paused), role, time.time(), p["id"]))
        self._next.pop(p["id"], None)
        return self.get(p["id"])

    def get_for(self, principal: Any, ref: int | str, verb: str = "change") -> dict:
        """A policy `principal` may act on: theirs, or any for admins."""
        p = self.get(ref)
        if not self.visible(p, principal):
            raise PolicyError(f"policy {p['name']!r} belongs to {p['owner']}; only they or an admin can {verb} it")
        return p

    def list_for(self, principal: Any) -> list[dict]:
        return [p for p in self.list() if self.visible(p, principal)]

    def run_for(self, principal: Any, ref: int | str) -> dict:
        return self.run_policy(self.get_for(principal, ref, "run")["id"])

    def delete(self, principal: Any, ref: int | str) -> dict:
        p = self.get_for(principal, ref, "delete")
        with self._lock, self._db() as db:
            db.execute("DELETE FROM policies WHERE id = ?", (p["id"],))
            db.execute("DELETE FROM seen WHERE policy_id = ?", (p["id"],))
        self._next.pop(p["id"], None)
        return p

    # --- scheduler -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="ai-policies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due(time.monotonic())
            except Exception:
                log.exception("policy tick failed")
            await asyncio.sleep(self.tick_s)

    async def run_due(self, now: float) -> list[dict]:
        """Run every active policy whose period has elapsed, one at a time (each bounded by the guard's
        time limit); the first run happens at the first tick after creation or start."""
        done = []
        for p in self.list():
            if p["paused"]:
                continue
            due = self._next.get(p["id"], now)
            if now >= due:
                self._next[p["id"]] = now + self.periods[p["periodicity"]]
                done.append(await asyncio.to_thread(self.run_policy, p["id"]))
        return done


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
