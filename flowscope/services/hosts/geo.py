"""Country and autonomous system of an IP address, offline.

Two sources, best first:
- a MaxMind-format database (``.mmdb``: GeoLite2/GeoIP2 Country or City, and ASN) when the
  user points to one (config file section ``[hosts]``: ``geoip_db = "/path/City.mmdb"`` and
  ``asn_db = "/path/ASN.mmdb"``; or ``FLOWSCOPE_GEOIP_DB`` / ``FLOWSCOPE_ASN_DB``);
- the database that ships inside the ``geoip2fast`` package (country and AS *name*; it carries
  no AS number, so ``asn`` is 0 unless a MaxMind ASN database is configured).

`enrich_flow_rows(rows)` fills the flows columns SRC_COUNTRY_CODE/DST_COUNTRY_CODE/SRC_ASN/
DST_ASN in place (only where empty); the writer calls it before inserting a batch.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeoInfo:
    country_code: str = ""
    country_name: str = ""
    city: str = ""
    asn: int = 0
    as_name: str = ""
    source: str = ""  # "maxmind", "geoip2fast" or "" (private / unknown)

    def as_dict(self) -> dict[str, Any]:
        return {"country_code": self.country_code, "country_name": self.country_name, "city": self.city,
                "asn": self.asn, "as_name": self.as_name, "source": self.source}


EMPTY = GeoInfo()


def _is_public(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_global


class Geo:
    """Thread-safe lookups with a cache. Construct once (see `geo()`)."""

    def __init__(self, geoip_db: str | None = None, asn_db: str | None = None, use_builtin: bool = True):
        self._lock = threading.Lock()
        self._mm_country = self._open_mmdb(geoip_db)
        self._mm_asn = self._open_mmdb(asn_db)
        self.geoip_db = geoip_db if self._mm_country else None
        self.asn_db = asn_db if self._mm_asn else None
        self._g2f = None
        self._use_builtin = use_builtin
        self.lookup = lru_cache(maxsize=131072)(self._lookup)

    @staticmethod
    def _open_mmdb(path: str | None):
        if not path:
            return None
        try:
            import maxminddb

            return maxminddb.open_database(path)
        except Exception as exc:
            log.warning("cannot open MaxMind database %s: %s", path, exc)
            return None

    def _builtin(self):
        if self._g2f is None and self._use_builtin:
            with self._lock:
                if self._g2f is None:
                    try:
                        import geoip2fast
                        from geoip2fast import GeoIP2Fast

                        data = os.path.join(os.path.dirname(geoip2fast.__file__), "geoip2fast-asn-ipv6.dat.gz")
                        self._g2f = GeoIP2Fast(verbose=False, geoip2fast_data_file=data)
                    except Exception as exc:  # package missing or data file damaged
                        log.warning("geoip2fast unavailable: %s", exc)
                        self._use_builtin = False
        return self._g2f

    def _lookup(self, ip: str) -> GeoInfo:
        if not _is_public(ip):
            return EMPTY
        cc = cname = city = as_name = ""
        asn = 0
        source = ""
        if self._mm_country is not None:
            try:
                rec = self._mm_country.get(ip) or {}
            except Exception:
                rec = {}
            country = rec.get("country") or rec.get("registered_country") or {}
            cc = country.get("iso_code", "") or ""
            cname = (country.get("names") or {}).get("en", "")
            city = ((rec.get("city") or {}).get("names") or {}).get("en", "")
            if cc:
                source = "maxmind"
            # a combined City+ASN database (e.g. DB-IP/IPinfo style) may carry ASN fields too
            asn = int(rec.get("autonomous_system_number") or 0)
            as_name = rec.get("autonomous_system_organization") or ""
        if self._mm_asn is not None:
            try:
                rec = self._mm_asn.get(ip) or {}
            except Exception:
                rec = {}
            asn = int(rec.get("autonomous_system_number") or asn or 0)
            as_name = rec.get("autonomous_system_organization") or as_name
            source = source or ("maxmind" if asn else "")
        if not cc or not as_name:
            g = self._builtin()
            if g is not None:
                try:
                    r = g.lookup(ip)
                    rcc = getattr(r, "country_code", "") or ""
                    if rcc and not rcc.startswith("-") and len(rcc) == 2 and not cc:
                        cc, cname = rcc, getattr(r, "country_name", "") or ""
                        source = source or "geoip2fast"
                    if not as_name:
                        as_name = getattr(r, "asn_name", "") or ""
                        source = source or ("geoip2fast" if as_name else "")
                except Exception:
                    pass
        return GeoInfo(cc, cname, city, asn, as_name, source)

    def info(self) -> dict[str, Any]:
        return {"maxmind_country_db": self.geoip_db, "maxmind_asn_db": self.asn_db,
                "builtin": "geoip2fast" if self._use_builtin else None}


_GEO: Geo | None = None
_GEO_LOCK = threading.Lock()


def configure(geoip_db: str | None = None, asn_db: str | None = None) -> Geo:
    """Set the process-wide Geo (called by the hosts component at attach)."""
    global _GEO
    with _GEO_LOCK:
        _GEO = Geo(geoip_db or os.environ.get("FLOWSCOPE_GEOIP_DB") or None,
                   asn_db or os.environ.get("FLOWSCOPE_ASN_DB") or None)
    return _GEO


def geo() -> Geo:
    global _GEO
    if _GEO is None:
        with _GEO_LOCK:
            if _GEO is None:
                _GEO = Geo(os.environ.get("FLOWSCOPE_GEOIP_DB") or None, os.environ.get("FLOWSCOPE_ASN_DB") or None)
    return _GEO


def lookup(ip: str) -> GeoInfo:
    return geo().lookup(ip)


def row_ip(row: dict[str, Any], side: str) -> str:
    ip = row.get(f"{side}_IP")
    if ip:
        return ip
    if row.get("IP_PROTOCOL_VERSION") == 6:
        return str(row.get(f"IPV6_{side}_ADDR") or "")
    n = row.get(f"IPV4_{side}_ADDR")
    return str(ipaddress.IPv4Address(n)) if n else ""


def enrich_flow_rows(rows: Iterable[dict[str, Any]]) -> None:
    """Fill SRC/DST_COUNTRY_CODE and SRC/DST_ASN of flow rows in place where they are empty/0.

    Safe to call from the writer thread; cached per IP, private addresses are skipped.
    """
    g = geo()
    for row in rows:
        for side in ("SRC", "DST"):
            cc_key, asn_key = f"{side}_COUNTRY_CODE", f"{side}_ASN"
            if row.get(cc_key) and row.get(asn_key):
                continue
            ip = row_ip(row, side)
            if not ip:
                continue
            info = g.lookup(ip)
            if not row.get(cc_key) and info.country_code:
                row[cc_key] = info.country_code
            if not row.get(asn_key) and info.asn:
                row[asn_key] = info.asn


def enrich_flow_columns(batch: Any) -> None:
    """`enrich_flow_rows` for a `FlowColumns` batch: each distinct address looked up once."""
    import numpy as np

    g = geo()
    for side in ("SRC", "DST"):
        ips = batch.ips(side)
        uniq, inv = np.unique(ips, return_inverse=True)
        infos = [g.lookup(ip) if ip else EMPTY for ip in uniq.tolist()]
        cc = np.array([i.country_code for i in infos], dtype=object)[inv]
        asn = np.array([i.asn for i in infos], dtype=np.uint64)[inv]
        given_cc = batch.cols.get(f"{side}_COUNTRY_CODE", "")
        if isinstance(given_cc, np.ndarray):
            cc = np.where(given_cc != "", given_cc, cc)
        elif given_cc:
            cc = given_cc
        batch.cols[f"{side}_COUNTRY_CODE"] = cc
        given_asn = batch.full(f"{side}_ASN")
        batch.cols[f"{side}_ASN"] = np.where(given_asn != 0, given_asn, asn)
