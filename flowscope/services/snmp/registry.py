"""The SNMP device registry: a small SQLite file, `<data_dir>/snmp.db`.

SQLite rather than ClickHouse, so `flowscope snmp add|list|remove` works while a server holds
the embedded chDB. Secrets (community, v3 auth and privacy passphrases) are encrypted at rest
with a key in `<data_dir>/snmp.key` (mode 0600), held in `Secret` objects whose repr/str are
masked, and leave this module only through `Secret.reveal()`, which the poller alone calls.
No tool or CLI command ever prints them: `Device.public()` shows `"****"` or `null`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from flowscope.addresses import AddressError, parse_host
from flowscope.store import local_db

VERSIONS = ("v1", "v2c", "v3")
SECURITY_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")
AUTH_PROTOCOLS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
#: AES-192/AES-256 use the key extension of Net-SNMP and most agents (draft-blumenthal);
#: AES-192C/AES-256C the one of Cisco IOS (draft-reeder)
PRIV_PROTOCOLS = ("DES", "AES", "AES-192", "AES-256", "AES-192C", "AES-256C")
MASK = "****"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


class RegistryError(ValueError):
    """A device definition was refused; the message says what to fix."""


class Secret:
    """A credential. Its repr and str are masked so it can never leak through logs or errors."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", len(self._value)))

    def __reduce__(self):  # never pickle a secret into some cache
        raise TypeError("Secret cannot be pickled")


def canonical_version(value):
    """An SNMP version as users write it (net-snmp's `2c`, `2`, `V2C`, `v1`, `3`...) as v1, v2c or v3;
    anything else unchanged, for the caller to refuse with the valid choices."""
    if not isinstance(value, str):
        return value
    key = value.strip().lower().removeprefix("v").removeprefix("snmpv")
    return {"1": "v1", "2": "v2c", "2c": "v2c", "3": "v3"}.get(key, value)


def _norm_choice(value: str | None, choices: tuple[str, ...], what: str) -> str | None:
    if value is None or value == "":
        return None
    key = value.strip().upper().replace("_", "-")
    aliases = {"SHA1": "SHA", "SHA-1": "SHA", "SHA224": "SHA-224", "SHA256": "SHA-256",
               "SHA384": "SHA-384", "SHA512": "SHA-512", "AES128": "AES", "AES-128": "AES",
               "AES192": "AES-192", "AES256": "AES-256", "V1": "V1", "V2C": "V2C", "V2": "V2C", "V3": "V3",
               "NOAUTHNOPRIV": "NOAUTHNOPRIV", "AUTHNOPRIV": "AUTHNOPRIV", "AUTHPRIV": "AUTHPRIV"}
    key = aliases.get(key, key)
    for c in choices:
        if c.upper() == key:
            return c
    raise RegistryError(f"{what} must be one of {', '.join(choices)} (got {value!r})")


@dataclass
class Device:
    name: str
    host: str
    port: int = 161
    version: str = "v2c"
    community: Optional[Secret] = None
    user: Optional[str] = None
    security_level: Optional[str] = None
    auth_protocol: Optional[str] = None
    auth_pass: Optional[Secret] = None
    priv_protocol: Optional[str] = None
    priv_pass: Optional[Secret] = None
    context: str = ""
    interval_s: int = 60
    timeout_s: float = 2.0
    retries: int = 1
    enabled: bool = True
    created_by: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def validate(self) -> "Device":
        if not _NAME_RE.match(self.name or ""):
            raise RegistryError("name: 1-128 characters, letters, digits, '.', '_', ':' or '-'")
        try:
            self.host = parse_host(self.host)
        except AddressError as exc:
            raise RegistryError(f"host must be an IP address or a DNS name: {exc}") from None
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise RegistryError("port must be 1-65535")
        self.version = _norm_choice(canonical_version(self.version), VERSIONS, "version") or "v2c"
        if not 1 <= int(self.interval_s) <= 86400:
            raise RegistryError("interval_s must be 1-86400 seconds")
        if not 0.1 <= float(self.timeout_s) <= 60:
            raise RegistryError("timeout_s must be 0.1-60 seconds")
        if not 0 <= int(self.retries) <= 10:
            raise RegistryError("retries must be 0-10")
        if self.version in ("v1", "v2c"):
            if self.community is None or not self.community.reveal():
                raise RegistryError(f"SNMP {self.version} needs a read community")
            if len(self.community.reveal()) > 255:
                raise RegistryError("community is too long (max 255)")
            self.user = self.security_level = self.auth_protocol = self.priv_protocol = None
            self.auth_pass = self.priv_pass = None
            return self
        # v3
        self.community = None
        if not self.user or len(self.user) > 32:
            raise RegistryError("SNMPv3 needs a user name (1-32 characters)")
        self.auth_protocol = _norm_choice(self.auth_protocol, AUTH_PROTOCOLS, "auth protocol")
        self.priv_protocol = _norm_choice(self.priv_protocol, PRIV_PROTOCOLS, "privacy protocol")
        level = _norm_choice(self.security_level, SECURITY_LEVELS, "security level")
        if level is None:  # infer from what was given
            level = "authPriv" if self.priv_pass else ("authNoPriv" if self.auth_pass else "noAuthNoPriv")
        self.security_level = level
        if level in ("authNoPriv", "authPriv"):
            if self.auth_pass is None or len(self.auth_pass.reveal()) < 8:
                raise RegistryError(f"security level {level} needs an auth passphrase of at least 8 characters")
            self.auth_protocol = self.auth_protocol or "SHA"
        else:
            self.auth_protocol, self.auth_pass = None, None
        if level == "authPriv":
            if self.priv_pass is None or len(self.priv_pass.reveal()) < 8:
                raise RegistryError("security level authPriv needs a privacy passphrase of at least 8 characters")
            self.priv_protocol = self.priv_protocol or "AES"
        else:
            self.priv_protocol, self.priv_pass = None, None
        return self

    def public(self) -> dict[str, Any]:
        """Everything about the device with every secret masked."""
        d: dict[str, Any] = {
            "name": self.name, "host": self.host, "port": self.port, "version": self.version,
            "interval_s": self.interval_s, "timeout_s": self.timeout_s, "retries": self.retries,
            "enabled": self.enabled, "created_by": self.created_by,
            "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at),
        }
        if self.version in ("v1", "v2c"):
            d["community"] = MASK if self.community else None
        else:
            d.update({
                "user": self.user, "security_level": self.security_level,
                "auth_protocol": self.auth_protocol, "auth_pass": MASK if self.auth_pass else None,
                "priv_protocol": self.priv_protocol, "priv_pass": MASK if self.priv_pass else None,
                "context": self.context,
            })
        return d


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


_SECRET_FIELDS = ("community", "auth_pass", "priv_pass")
_COLUMNS = ("name", "host", "port", "version", "community", "user", "security_level", "auth_protocol",
            "auth_pass", "priv_protocol", "priv_pass", "context", "interval_s", "timeout_s", "retries",
            "enabled", "created_by", "created_at", "updated_at")


class _Cipher:
    """Fernet encryption with a key file next to the database."""

    def __init__(self, key_path: Path):
        from cryptography.fernet import Fernet

        if not key_path.exists():
            key = Fernet.generate_key()
            fd = os.open(str(key_path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
            finally:
                os.close(fd)
        self._f = Fernet(key_path.read_bytes().strip())

    def seal(self, s: Optional[Secret]) -> Optional[bytes]:
        return None if s is None else self._f.encrypt(s.reveal().encode())

    def open(self, b: Optional[bytes]) -> Optional[Secret]:
        return None if b is None else Secret(self._f.decrypt(bytes(b)).decode())


class Registry:
    def __init__(self, data_dir: str):
        d = Path(data_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / "snmp.db"
        self._cipher = _Cipher(d / "snmp.key")
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS devices (name TEXT PRIMARY KEY, host TEXT NOT NULL, "
                "port INTEGER NOT NULL, version TEXT NOT NULL, community BLOB, user TEXT, "
                "security_level TEXT, auth_protocol TEXT, auth_pass BLOB, priv_protocol TEXT, "
                "priv_pass BLOB, context TEXT NOT NULL DEFAULT '', interval_s INTEGER NOT NULL, "
                "timeout_s REAL NOT NULL, retries INTEGER NOT NULL, enabled INTEGER NOT NULL, "
                "created_by TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL)")
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    def _connect(self) -> sqlite3.Connection:
        return local_db.connect(self.path)

    def _row_to_device(self, row: sqlite3.Row | tuple) -> Device:
        v = dict(zip(_COLUMNS, row))
        for f in _SECRET_FIELDS:
            v[f] = self._cipher.open(v[f])
        v["enabled"] = bool(v["enabled"])
        v["context"] = v["context"] or ""
        return Device(**v)

    def list(self) -> list[Device]:
        with self._lock, self._connect() as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM devices ORDER BY name").fetchall()
        return [self._row_to_device(r) for r in rows]

    def get(self, name: str) -> Optional[Device]:
        with self._lock, self._connect() as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM devices WHERE name = ?", (name,)).fetchone()
        return self._row_to_device(row) if row else None

    def _write(self, dev: Device, replace_existing: bool) -> None:
        values = []
        for c in _COLUMNS:
            v = getattr(dev, c)
            if c in _SECRET_FIELDS:
                v = self._cipher.seal(v)
            elif c == "enabled":
                v = int(v)
            values.append(v)
        verb = "INSERT OR REPLACE" if replace_existing else "INSERT"
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._lock, self._connect() as db:
            try:
                db.execute(f"{verb} INTO devices ({', '.join(_COLUMNS)}) VALUES ({marks})", values)
            except sqlite3.IntegrityError:
                raise RegistryError(f"a device named {dev.name!r} already exists (remove it or edit it)") from None

    def add(self, dev: Device) -> Device:
        dev.validate()
        dev.created_at = dev.updated_at = time.time()
        self._write(dev, replace_existing=False)
        return dev

    def update(self, name: str, **changes: Any) -> Device:
        """Edit a device. Secret fields take plain strings; None leaves a field unchanged."""
        dev = self.get(name)
        if dev is None:
            raise RegistryError(f"no SNMP device named {name!r}")
        clean: dict[str, Any] = {}
        for k, v in changes.items():
            if v is None:
                continue
            if k not in _COLUMNS or k in ("name", "created_at", "updated_at", "created_by"):
                raise RegistryError(f"cannot change {k!r}")
            clean[k] = Secret(v) if k in _SECRET_FIELDS and not isinstance(v, Secret) else v
        new = replace(dev, **clean)
        new.validate()
        new.updated_at = time.time()
        self._write(new, replace_existing=True)
        return new

    def remove(self, name: str) -> bool:
        with self._lock, self._connect() as db:
            cur = db.execute("DELETE FROM devices WHERE name = ?", (name,))
            return cur.rowcount > 0


def make_device(name: str | None, host: str, *, port: int = 161, version: str = "v2c",
                community: str | None = None, user: str | None = None,
                security_level: str | None = None, auth_protocol: str | None = None,
                auth_pass: str | None = None, priv_protocol: str | None = None,
                priv_pass: str | None = None, context: str = "", interval_s: int = 60,
                timeout_s: float = 2.0, retries: int = 1, enabled: bool = True,
                created_by: str = "") -> Device:
    """Build and validate a Device from plain values (secrets wrapped here)."""
    host = (host or "").strip()
    if not name:
        name = host if port == 161 else f"{host}:{port}"
    dev = Device(
        name=name, host=host, port=int(port), version=version,
        community=Secret(community) if community else None, user=user or None,
        security_level=security_level, auth_protocol=auth_protocol,
        auth_pass=Secret(auth_pass) if auth_pass else None, priv_protocol=priv_protocol,
        priv_pass=Secret(priv_pass) if priv_pass else None, context=context or "",
        interval_s=int(interval_s), timeout_s=float(timeout_s), retries=int(retries),
        enabled=bool(enabled), created_by=created_by,
    )
    return dev.validate()
