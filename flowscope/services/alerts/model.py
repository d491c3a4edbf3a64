"""Severities, scores and the nDPI flow-risk table used when raising alerts."""

from __future__ import annotations

import datetime as _dt
import ipaddress
from functools import lru_cache
from typing import Any

#: ntopng's alert severities (id = ntopng's alert_severities value)
SEVERITIES: dict[str, int] = {
    "info": 2, "notice": 3, "warning": 4, "error": 5, "critical": 6, "emergency": 8,
}
SEVERITY_BY_ID = {v: k for k, v in SEVERITIES.items()}
DEFAULT_SCORE = {"info": 5, "notice": 10, "warning": 50, "error": 100, "critical": 150, "emergency": 200}

#: nDPI risk severity -> (ntopng severity, score), as nDPI's ndpi_risk_info scores them
NDPI_SEVERITY = {
    "low": ("notice", 10), "medium": ("warning", 50), "high": ("error", 100),
    "severe": ("critical", 150), "critical": ("emergency", 200), "emergency": ("emergency", 200),
}

#: nDPI flow risks (ndpi_typedefs.h ndpi_risk_enum): bit -> (name, nDPI severity)
NDPI_RISKS: dict[int, tuple[str, str]] = {
    1: ("XSS Attack", "severe"), 2: ("SQL Injection", "severe"), 3: ("RCE Injection", "severe"),
    4: ("Binary App Transfer", "severe"), 5: ("Known Proto on Non Std Port", "medium"),
    6: ("Self-signed Cert", "high"), 7: ("Obsolete TLS (v1.1 or older)", "high"),
    8: ("Weak TLS Cipher", "high"), 9: ("TLS Cert Expired", "high"), 10: ("TLS Cert Mismatch", "high"),
    11: ("HTTP Suspicious User-Agent", "high"), 12: ("HTTP/TLS/QUIC Numeric Hostname/SNI", "low"),
    13: ("HTTP Suspicious URL", "high"), 14: ("HTTP Suspicious Header", "high"),
    15: ("TLS (probably) Not Carrying HTTPS", "medium"), 16: ("Suspicious DGA Domain name", "high"),
    17: ("Malformed Packet", "low"), 18: ("SSH Obsolete Cli Vers/Cipher", "medium"),
    19: ("SSH Obsolete Ser Vers/Cipher", "medium"), 20: ("SMB Insecure Vers", "medium"),
    21: ("TLS Suspicious ESNI Usage", "medium"), 22: ("Unsafe Protocol", "low"),
    23: ("Suspicious DNS traffic", "medium"), 24: ("Missing SNI TLS Extn", "medium"),
    25: ("HTTP Suspicious Content", "medium"), 26: ("Risky ASN", "medium"), 27: ("Risky Domain Name", "medium"),
    28: ("Malicious Fingerprint", "medium"), 29: ("Malicious SSL Cert/SHA1 Fingerp.", "medium"),
    30: ("Desktop/File Sharing", "low"), 31: ("Uncommon TLS ALPN", "medium"),
    32: ("TLS Cert Validity Too Long", "medium"), 33: ("TLS Suspicious Extension", "high"),
    34: ("TLS Fatal Alert", "low"), 35: ("Suspicious Entropy", "medium"),
    36: ("Clear-Text Credentials", "high"), 37: ("Large DNS Packet (512+ bytes)", "medium"),
    38: ("Fragmented DNS Message", "medium"), 39: ("Non-Printable/Invalid Chars Detected", "high"),
    40: ("Possible Exploit Attempt", "severe"), 41: ("TLS Cert About To Expire", "medium"),
    42: ("IDN Domain Name", "low"), 43: ("Error Code", "low"), 44: ("Crawler/Bot", "low"),
    45: ("Anonymous Subscriber", "low"), 46: ("Unidirectional Traffic", "low"),
    47: ("HTTP Obsolete Server", "medium"), 48: ("Periodic Flow", "low"), 49: ("Minor Issues", "low"),
    50: ("TCP Connection Issues", "medium"), 51: ("Fully encrypted flow", "medium"),
    52: ("ALPN/SNI Mismatch", "medium"), 53: ("Contaminated host contacted", "critical"),
    54: ("Binary file/data transfer (attempt)", "medium"), 55: ("Probing attempt", "medium"),
    56: ("Obfuscated Traffic", "high"),
}
#: risks about TLS certificates: certificate exclusions apply to these
CERTIFICATE_RISKS = {6, 9, 10, 29, 32, 41}
CLEAR_TEXT_CREDENTIALS = 36


@lru_cache(maxsize=1)
def _catalog() -> Any:
    try:
        from flowscope.flows.ndpi_catalog import catalog

        return catalog()
    except Exception:
        return None


@lru_cache(maxsize=128)
def risk_name(bit: int) -> str:
    cat = _catalog()
    if cat is not None:
        try:
            name = cat.risk_name(bit)
            if name and not str(name).isdigit():
                return str(name)
        except Exception:
            pass
    return NDPI_RISKS[bit][0] if bit in NDPI_RISKS else f"risk_{bit}"


@lru_cache(maxsize=128)
def risk_severity(bit: int) -> tuple[str, int]:
    """(ntopng severity, score) of one nDPI risk."""
    cat = _catalog()
    for attr in ("risk_severity",):
        fn = getattr(cat, attr, None) if cat is not None else None
        if fn:
            try:
                sev = str(fn(bit)).lower()
                if sev in NDPI_SEVERITY:
                    return NDPI_SEVERITY[sev]
            except Exception:
                pass
    return NDPI_SEVERITY[NDPI_RISKS.get(bit, ("", "low"))[1]]


def risk_slug(bit: int) -> str:
    """A stable alert_type for a risk: lower-case name with underscores."""
    name = risk_name(bit)
    out = "".join(ch.lower() if ch.isalnum() else "_" for ch in name)
    while "__" in out:
        out = out.replace("__", "_")
    return "flow_risk_" + out.strip("_")


def all_risks() -> dict[int, str]:
    out = {}
    for bit in range(1, 64):
        name = risk_name(bit)
        if not name.startswith("risk_"):
            out[bit] = name
    return out


def severity_for_score(score: int) -> str:
    if score >= 200:
        return "emergency"
    if score >= 150:
        return "critical"
    if score >= 100:
        return "error"
    if score >= 50:
        return "warning"
    if score >= 10:
        return "notice"
    return "info"


def check_severity(name: str) -> str:
    name = (name or "").lower().strip()
    if name == "alert":
        name = "critical"
    if name == "debug":
        name = "info"
    if name not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)} (got {name!r})")
    return name


# --- time and address helpers ---------------------------------------------------------------

def to_epoch(value: Any) -> float:
    """Epoch seconds from a flow row value: float seconds, epoch ms, datetime or ClickHouse text."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    text = str(value).strip().replace("T", " ").rstrip("Z")
    try:
        d = _dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return 0.0
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def fmt_ts(epoch: float) -> str:
    """ClickHouse DateTime64(3) text in UTC."""
    d = _dt.datetime.fromtimestamp(max(0.0, epoch), tz=_dt.timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S.") + f"{d.microsecond // 1000:03d}"


def row_ip(row: dict, side: str) -> str:
    """SRC or DST address of a flow row as text (uses SRC_IP/DST_IP when present)."""
    text = row.get(f"{side}_IP")
    if text:
        return str(text)
    if int(row.get("IP_PROTOCOL_VERSION") or 4) == 6:
        return str(row.get(f"IPV6_{side}_ADDR") or "")
    num = row.get(f"IPV4_{side}_ADDR")
    if num in (None, ""):
        return ""
    try:
        return str(ipaddress.IPv4Address(int(num)))
    except (ValueError, TypeError):
        return str(num)


def mac_text(num: Any) -> str:
    try:
        n = int(num or 0)
    except (TypeError, ValueError):
        return str(num)
    if not n:
        return ""
    h = f"{n:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def normalise_mac(text: str) -> str | None:
    t = text.strip().lower().replace("-", ":").replace(".", "")
    if ":" not in t and len(t) == 12:
        t = ":".join(t[i:i + 2] for i in range(0, 12, 2))
    parts = t.split(":")
    if len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        return t
    return None
