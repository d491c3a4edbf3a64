"""Authorization, in one module: users, API tokens, roles and allowed networks.

Users and tokens live in SQLite (`<data_dir>/auth.db`) rather than ClickHouse, so the CLI can
manage them while a server holds the embedded database. Only a SHA-256 hash of each token is
stored; the token itself is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from flowscope import addresses
from flowscope.config import parse_networks
from flowscope.store import local_db
from flowscope.store.schema import FLOWS

ROLES = ("admin", "user")
TOKEN_PREFIX = "fs_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthError(Exception):
    pass


class TargetRefused(AuthError):
    """A probe or poll target the principal may not send packets to."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    read_only: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default=())
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def restricted(self) -> bool:
        return bool(self.allowed_networks)

    @property
    def scope(self) -> "Scope":
        """What this principal may see of traffic: the object tools and services filter with."""
        return Scope(self)

    # The helpers below are kept for callers written before `Scope`; they delegate to it.
    def can_see(self, ip: str | None) -> bool:
        return self.scope.visible(ip)

    def can_see_flow(self, src: str | None, dst: str | None) -> bool:
        return self.scope.visible_flow(src, dst)

    def can_see_network(self, net: IPNetwork) -> bool:
        """The whole network lies inside the allowed networks."""
        if not self.allowed_networks:
            return True
        return any(net.version == a.version and net.subnet_of(a) for a in self.allowed_networks)

    def owns(self, owner: str | None) -> bool:
        """May change a thing created by `owner` (exclusion, probe, SNMP device, policy): its owner
        or an admin."""
        return self.is_admin or (bool(owner) and owner == self.name)

    def sql_filter(self, columns: Sequence[str],
                   address_columns: Mapping[str, tuple[str, str, str]] | None = None) -> str:
        return self.scope.sql(columns, address_columns)

    def flows_filter(self) -> str:
        return self.scope.flows_sql()


class OutOfScope(Exception):
    """A request named something outside the caller's allowed networks (message safe to show)."""


@dataclass(frozen=True)
class Scope:
    """A principal's view of the network: the one place that decides which addresses, flows and
    rows a caller may see. Tools get it as `call.scope` and hand it to services, which filter
    with it: `sql()` / `flows_sql()` in SQL, `visible()` / `visible_flow()` in Python."""

    principal: Principal

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        return self.principal.allowed_networks

    @property
    def restricted(self) -> bool:
        return bool(self.networks)

    def visible(self, ip: str | None) -> bool:
        """True when `ip` is inside the allowed networks (always, for an unrestricted caller)."""
        if not self.networks:
            return True
        addr = parse_ip(ip)
        return addr is not None and any(addr in net for net in self.networks if net.version == addr.version)

    def visible_flow(self, src: str | None, dst: str | None) -> bool:
        """A flow is visible when either end is: its peer outside comes with it."""
        return self.visible(src) or self.visible(dst)

    def overlaps(self, network: IPNetwork) -> bool:
        """Some of `network` is inside the allowed networks."""
        return not self.networks or any(n.version == network.version and n.overlaps(network) for n in self.networks)

    def require(self, ip: str) -> None:
        if not self.visible(ip):
            raise OutOfScope(f"{ip} is outside your allowed networks")

    def sql(self, columns: Sequence[str],
            address_columns: Mapping[str, tuple[str, str, str]] | None = None) -> str:
        """A SQL boolean true when any of `columns` (IP strings) is inside the allowed networks.

        A column listed in `address_columns` (see `Table.address_columns`) is compared through its
        numeric columns. Built only from column names given by our own code and CIDRs normalised
        by ipaddress, never from request text; "1" when unrestricted.
        """
        if not self.networks:
            return "1"
        terms = []
        for col in columns:
            forms = (address_columns or {}).get(col)
            for net in self.networks:
                terms.append(_numeric_term(forms, net) if forms else _text_term(col, net))
        return "(" + " OR ".join(terms) + ")"

    def flows_sql(self) -> str:
        """`sql` for the `flows` table: either end inside the allowed networks."""
        return self.sql(FLOWS.network_columns, FLOWS.address_columns)


def parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address read from data (flows, answers), or None: `addresses.parse_ip` without the zone id."""
    if not text or not isinstance(text, str):
        return None
    try:
        return addresses.parse_ip(text.strip().split("%")[0])
    except addresses.AddressError:
        return None


def _text_term(col: str, net: IPNetwork) -> str:
    # Columns may hold '' or a name (alerts about no host): such rows match no network.
    return f"isIPAddressInRange(if(isIPv4String({col}) OR isIPv6String({col}), {col}, '::'), '{net}')"


def _numeric_term(forms: tuple[str, str, str], net: IPNetwork) -> str:
    version, v4, v6 = forms
    lo, hi = net.network_address, net.broadcast_address
    if net.version == 4:
        return f"({version} = 4 AND {v4} BETWEEN {int(lo)} AND {int(hi)})"
    return f"({version} = 6 AND {v6} BETWEEN toIPv6('{lo}') AND toIPv6('{hi}'))"


def check_target(principal: Principal, host: str,
                 allow_special: frozenset[str] = frozenset()) -> list[str]:
    """Resolve `host` (IP or DNS name) and return its addresses when `principal` may send probes or
    polls to every one of them: inside the allowed networks and, for non-admins, not a metadata,
    unspecified, loopback, link-local, multicast or reserved address unless the admin setting
    `[targets] allow_special` lists that kind. Blocking (resolves names). Raises TargetRefused
    (its message never names an address the principal may not see), or `addresses.AddressError`
    when `host` is malformed or does not resolve."""
    addrs = addresses.resolve(host)
    for addr in addrs:
        kind = addresses.special_kind(addr)
        if kind and not principal.is_admin and kind not in allow_special:
            raise TargetRefused(f"{host} is or resolves to a {kind} address: only admins may probe those "
                                "(an admin can allow it with [targets] allow_special in flowscope.toml)")
        if not principal.can_see(str(addr)):
            raise TargetRefused(f"{host} is or resolves to an address outside your allowed networks")
    return [str(a) for a in addrs]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    def __init__(self, data_dir: str):
        self.path = Path(data_dir) / "auth.db"
        self.wal = self.path.with_name(self.path.name + "-wal")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS users (
                    name TEXT PRIMARY KEY, role TEXT NOT NULL, allowed_networks TEXT NOT NULL DEFAULT '',
                    created REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS tokens (
                    id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), hash TEXT NOT NULL,
                    read_only INTEGER NOT NULL, created REAL NOT NULL, revoked REAL);
                """
            )
        self._cache: tuple[float, list[tuple[str, Principal]]] | None = None  # (file time, (hash, principal))
        self._local_hash: str | None = None

    def _db(self) -> sqlite3.Connection:
        return local_db.connect(self.path)

    # --- users -------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, allowed_networks: str | Iterable[str] = "") -> dict:
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise AuthError("user names use letters, digits, '-', '_' and '.'")
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        nets = parse_networks(allowed_networks if isinstance(allowed_networks, str) else list(allowed_networks))
        with self._db() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AuthError(f"user {name!r} exists already")
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (name, role, ",".join(nets), time.time()))
        return {"name": name, "role": role, "allowed_networks": nets}

    def list_users(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT name, role, allowed_networks, created FROM users ORDER BY name").fetchall()
        return [{"name": n, "role": r, "allowed_networks": [x for x in a.split(",") if x], "created": c}
                for n, r, a, c in rows]

    def user(self, name: str) -> dict | None:
        return next((u for u in self.list_users() if u["name"] == name), None)

    def edit_user(self, name: str, role: str | None = None,
                  allowed_networks: str | Iterable[str] | None = None) -> dict:
        """Change a user's role and/or allowed networks; their tokens carry the new rights at once."""
        user = self.user(name)
        if user is None:
            raise AuthError(f"no user {name!r} (see: flowscope user list)")
        if role is not None and role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        nets = user["allowed_networks"] if allowed_networks is None else parse_networks(
            allowed_networks if isinstance(allowed_networks, str) else list(allowed_networks))
        role = role or user["role"]
        with self._db() as db:
            db.execute("UPDATE users SET role = ?, allowed_networks = ? WHERE name = ?", (role, ",".join(nets), name))
        self._cache = None
        return {"name": name, "role": role, "allowed_networks": nets}

    def remove_user(self, name: str) -> dict:
        """Delete a user and revoke their tokens. What they own (probes, policies...) stops running
        with their rights: policies are paused, probes and SNMP polls are disabled."""
        user = self.user(name)
        if user is None:
            raise AuthError(f"no user {name!r} (see: flowscope user list)")
        with self._db() as db:
            revoked = db.execute("UPDATE tokens SET revoked = ? WHERE user = ? AND revoked IS NULL",
                                 (time.time(), name)).rowcount
            db.execute("DELETE FROM users WHERE name = ?", (name,))
        self._cache = None
        return {**user, "tokens_revoked": revoked}

    def current_principal(self, name: str) -> Principal | None:
        """The user's rights now (for work done on their behalf later: policies, probes), None when
        the user no longer exists. Never read-only: that is a property of tokens, not users."""
        user = self.user(name)
        if user is None:
            return None
        return _principal(user["name"], user["role"], ",".join(user["allowed_networks"]), False, None)

    def principal_for_user(self, name: str, read_only: bool = False) -> Principal:
        user = self.user(name)
        if user is None:
            raise AuthError(f"no user {name!r}; create one with: flowscope user add {name} --role admin")
        return _principal(user["name"], user["role"], ",".join(user["allowed_networks"]), read_only, None)

    # --- tokens ------------------------------------------------------------------------------
    def create_token(self, user: str, read_only: bool = False) -> tuple[str, str]:
        """Returns (token id, token). The token is not stored, only its hash."""
        if self.user(user) is None:
            raise AuthError(f"no user {user!r}; create it first with: flowscope user add {user} --role user")
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self._db() as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                       (token_id, user, hash_token(token), int(read_only), time.time()))
        self._cache = None
        return token_id, token

    def list_tokens(self) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT id, user, read_only, created, revoked FROM tokens ORDER BY created").fetchall()
        return [{"id": i, "user": u, "read_only": bool(r), "created": c, "revoked": v is not None}
                for i, u, r, c, v in rows]

    def revoke_token(self, token_id: str) -> None:
        with self._db() as db:
            cur = db.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                             (time.time(), token_id))
            if cur.rowcount == 0:
                raise AuthError(f"no active token with id {token_id!r} (see: flowscope token list)")
        self._cache = None

    def _active_tokens(self) -> list[tuple[str, Principal]]:
        """(hash, principal) of every active token, read again whenever the database changed (a
        token revoked or a user changed by another process counts from the next request)."""
        mtime = max(_mtime(self.path), _mtime(self.wal))
        if self._cache is None or self._cache[0] != mtime:
            with self._db() as db:
                rows = db.execute(
                    "SELECT t.id, t.hash, t.user, t.read_only, u.role, u.allowed_networks "
                    "FROM tokens t JOIN users u ON u.name = t.user WHERE t.revoked IS NULL").fetchall()
            self._cache = (mtime, [(stored, _principal(user, role, nets, bool(read_only), token_id))
                                   for token_id, stored, user, read_only, role, nets in rows])
        return self._cache[1]

    def authenticate(self, token: str) -> Principal | None:
        """Constant-time comparison of the token's hash against every active token."""
        digest = hash_token(token)
        found = None
        for stored, principal in self._active_tokens():
            if hmac.compare_digest(digest, stored):
                found = principal
        return found

    # --- the data directory's owner, on this machine (flowscope.runtime) ---------------------
    def enable_local(self, secret: str | None) -> None:
        """Accept `secret` (the runtime file's) from local connections; None: accept none."""
        self._local_hash = hash_token(secret) if secret else None

    def is_local_owner(self, secret: str | None, client_host: str | None, server_host: str | None) -> bool:
        """The caller showed the runtime file's secret over a connection from this machine."""
        if not self._local_hash or not secret or not _same_machine(client_host, server_host):
            return False
        return hmac.compare_digest(hash_token(secret), self._local_hash)

    def authenticate_local(self, secret: str | None, user: str | None, client_host: str | None,
                           server_host: str | None) -> Principal | None:
        """The local owner acting as `user`, with that user's rights now (never more)."""
        if not user or not self.is_local_owner(secret, client_host, server_host):
            return None
        found = self.user(user)
        if found is None:
            return None
        return _principal(found["name"], found["role"], ",".join(found["allowed_networks"]), False,
                          f"local:{found['name']}")


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _same_machine(client_host: str | None, server_host: str | None) -> bool:
    """A loopback connection, or one from this machine's own address to itself."""
    client = parse_ip(client_host)
    return client is not None and (client.is_loopback or client == parse_ip(server_host))


def local_from_header(value: str | None) -> str | None:
    """The secret of `Local S` (see flowscope.runtime)."""
    scheme, _, secret = (value or "").strip().partition(" ")
    if scheme.lower() != "local":
        return None
    return secret.strip() or None


def _principal(name: str, role: str, nets: str, read_only: bool, token_id: str | None) -> Principal:
    networks = tuple(ipaddress.ip_network(n) for n in nets.split(",") if n)
    return Principal(name=name, role=role, read_only=read_only, allowed_networks=networks, token_id=token_id)


def token_from_header(value: str | None) -> str | None:
    """`Token T` or `Bearer T` (scheme case-insensitive)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        return None
    return token.strip()
