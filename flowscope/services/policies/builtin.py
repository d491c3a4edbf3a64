"""Built-in policy compiler: plain-language requirement -> ClickHouse SQL over `flows`.

Recognises a fixed set of intents with regular expressions. Every value that reaches the SQL
text is validated first (numbers as ints, networks normalised by `ipaddress`, country codes as
two letters, protocol and risk ids from nDPI's own tables), so no request text is pasted in.

Time windows are relative to the newest flow stored, `(SELECT max(LAST_SEEN) FROM flows)`,
so a policy behaves the same on live traffic and on an imported capture.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from flowscope.services.alerts.model import NDPI_RISKS, all_risks

REF = "(SELECT max(LAST_SEEN) FROM flows)"
NON_PUBLIC = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
              "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "fc00::/7", "fe80::/10", "::1/128", "ff00::/8", "::/128")

UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20, "gb": 10**9,
         "gib": 2**30, "tb": 10**12, "tib": 2**40}
PERIODS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600, "hr": 3600,
           "day": 86400, "d": 86400, "week": 604800}
COUNTRIES = {
    "china": "CN", "russia": "RU", "russian federation": "RU", "north korea": "KP", "iran": "IR", "united states": "US",
    "usa": "US", "germany": "DE", "france": "FR", "italy": "IT", "spain": "ES", "united kingdom": "GB", "uk": "GB",
    "netherlands": "NL", "india": "IN", "brazil": "BR", "japan": "JP", "south korea": "KR", "ukraine": "UA",
    "belarus": "BY", "syria": "SY", "cuba": "CU", "venezuela": "VE", "vietnam": "VN", "turkey": "TR",
    "canada": "CA", "australia": "AU", "switzerland": "CH", "israel": "IL", "hong kong": "HK", "taiwan": "TW",
    "singapore": "SG", "romania": "RO", "poland": "PL", "sweden": "SE", "nigeria": "NG", "pakistan": "PK",
    "indonesia": "ID", "mexico": "MX", "argentina": "AR", "egypt": "EG", "saudi arabia": "SA",
}
RISK_WORDS: dict[str, int] = {
    "xss": 1, "cross site scripting": 1, "cross-site scripting": 1, "sql injection": 2, "sqli": 2, "rce": 3,
    "remote code execution": 3, "binary application transfer": 4, "binary app transfer": 4, "exe download": 4,
    "non standard port": 5, "non-standard port": 5, "self-signed": 6, "self signed": 6, "obsolete tls": 7,
    "old tls": 7, "weak cipher": 8, "expired certificate": 9, "certificate expired": 9, "cert expired": 9,
    "certificate mismatch": 10, "cert mismatch": 10, "suspicious user-agent": 11, "suspicious user agent": 11,
    "numeric hostname": 12, "numeric ip": 12, "suspicious url": 13, "suspicious header": 14, "dga": 16,
    "malformed packet": 17, "obsolete ssh": 18, "smb v1": 20, "smbv1": 20, "insecure smb": 20,
    "unsafe protocol": 22, "suspicious dns": 23, "missing sni": 24, "no sni": 24, "risky asn": 26,
    "risky domain": 27, "malicious fingerprint": 28, "malicious ja3": 28, "malicious ja4": 28,
    "malicious certificate": 29, "desktop sharing": 30, "file sharing": 30, "remote desktop sharing": 30,
    "uncommon alpn": 31, "validity too long": 32, "suspicious extension": 33, "tls fatal alert": 34,
    "entropy": 35, "large dns": 37, "fragmented dns": 38, "invalid characters": 39, "non-printable": 39,
    "exploit": 40, "about to expire": 41, "punycode": 42, "idn": 42, "error code": 43, "crawler": 44, "bot": 44,
    "anonymous subscriber": 45, "unidirectional": 46, "obsolete server": 47, "periodic flow": 48,
    "minor issues": 49, "tcp issues": 50, "tcp connection issues": 50, "fully encrypted": 51,
    "alpn/sni mismatch": 52, "malware host": 53, "contaminated host": 53, "malware": 53,
    "binary data transfer": 54, "probing": 55, "obfuscated": 56,
}


class NoIntent(ValueError):
    pass


@dataclass
class Compiled:
    sql: str
    intent: str
    explanation: str
    params: dict[str, Any] = field(default_factory=dict)


def _q(text: str) -> str:
    """Quote a literal we validated ourselves (CIDR text, ISO code, names from nDPI's tables)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _duration(text: str, default: int) -> int:
    m = re.search(r"(?:in|within|over|during|per|every)\s+(?:the\s+last\s+|a\s+|an\s+|one\s+)?(\d+)?\s*"
                  r"(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)\b", text)
    if not m:
        return default
    n = int(m.group(1) or 1)
    unit = m.group(2).rstrip("s") if m.group(2) not in ("s",) else "s"
    unit = {"second": "second", "sec": "sec", "minute": "minute", "min": "min", "hour": "hour", "hr": "hr",
            "day": "day", "week": "week"}.get(unit, unit)
    return max(1, min(n * PERIODS.get(unit, 60), 90 * 86400))


def _lookback(text: str, default: int) -> int:
    m = re.search(r"(?:in|over|during)\s+the\s+last\s+(\d+)?\s*(minutes?|mins?|hours?|days?|weeks?)\b", text)
    if not m:
        return default
    unit = m.group(2).rstrip("s")
    return max(60, min(int(m.group(1) or 1) * PERIODS.get(unit, 3600), 36500 * 86400))


def _networks(text: str) -> list[str]:
    out = []
    for tok in re.findall(r"[0-9a-fA-F:.]+(?:/\d{1,3})?", text):
        if not any(c.isdigit() for c in tok) or ("." not in tok and ":" not in tok):
            continue
        try:
            net = ipaddress.ip_network(tok.strip(".:"), strict=False)
        except ValueError:
            continue
        out.append(str(net))
    return list(dict.fromkeys(out))


def _in_any(col: str, nets: list[str]) -> str:
    return "(" + " OR ".join(f"isIPAddressInRange({col}, {_q(n)})" for n in nets) + ")"


def _since(lookback: int) -> str:
    return f"FIRST_SEEN >= {REF} - INTERVAL {int(lookback)} SECOND"


def _catalog() -> Any:
    try:
        from flowscope.flows.ndpi_catalog import catalog

        return catalog()
    except Exception:
        return None


def _proto_ids(*names: str) -> list[int]:
    cat = _catalog()
    ids = []
    for n in names:
        p = cat.by_name(n) if cat is not None else None
        if p is not None:
            ids.append(int(p.id))
    return ids


def _l7_cond(ids: list[int]) -> str:
    if not ids:
        return "0"
    lst = ", ".join(str(int(i)) for i in ids)
    return f"(L7_PROTO IN ({lst}) OR L7_PROTO_MASTER IN ({lst}))"


# --- intents --------------------------------------------------------------------------------

def clear_text_credentials(d: str, ctx: dict) -> Compiled | None:
    if not (re.search(r"clear[- ]?text|plain[- ]?text|cleartext|unencrypted|in clear", d)
            and re.search(r"credential|password|login|auth|user ?name", d)):
        return None
    lb = _lookback(d, ctx["lookback"])
    sql = ("SELECT SRC_IP, DST_IP, IP_DST_PORT, L7_PROTO_NAME AS application, any(DOMAIN_NAME) AS server_name, "
           "count() AS flows, min(FIRST_SEEN) AS first_seen, max(LAST_SEEN) AS last_seen FROM flows "
           f"WHERE {_since(lb)} AND bitTest(FLOW_RISK, 36) "
           "GROUP BY SRC_IP, DST_IP, IP_DST_PORT, application ORDER BY flows DESC")
    return Compiled(sql, "clear_text_credentials",
                    f"Flows where nDPI saw credentials sent in clear text (flow risk 36 'Clear-Text Credentials': "
                    f"FTP/POP/IMAP/SMTP/HTTP basic auth...) in the last {lb}s of traffic; one row per client, "
                    "server and port.", {"lookback_s": lb})


def port_scan(d: str, ctx: dict) -> Compiled | None:
    if not re.search(r"port ?scan|scan\w*\s+(of\s+)?(many\s+)?ports|distinct\s+(destination\s+|dst\s+)?ports|"
                     r"many\s+(destination\s+|dst\s+)?ports", d):
        return None
    m = re.search(r"(?:more than|over|>|above|exceeding|at least)\s*(\d+)\s*(?:distinct\s+|different\s+|unique\s+)?"
                  r"(?:destination\s+|dst\s+)?ports", d)
    n = int(m.group(1)) if m else 100
    w = _duration(d, 60)
    lb = _lookback(d, max(ctx["lookback"], w))
    sql = (f"SELECT SRC_IP, toStartOfInterval(FIRST_SEEN, INTERVAL {w} SECOND) AS window_start, "
           "uniqExact(IP_DST_PORT) AS distinct_ports, uniqExact(DST_IP) AS targets, count() AS flows FROM flows "
           f"WHERE {_since(lb)} AND PROTOCOL IN (6, 17) GROUP BY SRC_IP, window_start "
           f"HAVING distinct_ports > {n} ORDER BY distinct_ports DESC")
    return Compiled(sql, "port_scan",
                    f"Hosts that contacted more than {n} distinct destination ports (TCP/UDP) within a {w}s window, "
                    f"over the last {lb}s of traffic. Say 'more than N ports in M seconds' to change the numbers.",
                    {"ports": n, "window_s": w, "lookback_s": lb})


def traffic_baseline(d: str, ctx: dict) -> Compiled | None:
    if not re.search(r"baseline|usual|normal|average|typical", d):
        return None
    m = re.search(r"(twice|double|three times|triple|(\d+(?:\.\d+)?)\s*(?:x|times))", d)
    if not m:
        return None
    factor = {"twice": 2.0, "double": 2.0, "three times": 3.0, "triple": 3.0}.get(m.group(1)) or float(m.group(2))
    factor = max(1.1, min(factor, 1000.0))
    p = _duration(d, 3600)
    k = 24 if p <= 3600 else 7
    sql = ("SELECT host, current_bytes, toUInt64(baseline_bytes) AS baseline_bytes, "
           "round(current_bytes / baseline_bytes, 2) AS ratio FROM ("
           "SELECT arrayJoin([SRC_IP, DST_IP]) AS host, "
           f"sumIf(TOTAL_BYTES, FIRST_SEEN >= {REF} - INTERVAL {p} SECOND) AS current_bytes, "
           f"sumIf(TOTAL_BYTES, FIRST_SEEN < {REF} - INTERVAL {p} SECOND) / {k} AS baseline_bytes "
           f"FROM flows WHERE FIRST_SEEN >= {REF} - INTERVAL {p * (k + 1)} SECOND GROUP BY host) "
           f"WHERE baseline_bytes > 0 AND current_bytes > {factor} * baseline_bytes AND current_bytes >= 10000 "
           "ORDER BY ratio DESC")
    return Compiled(sql, "traffic_over_baseline",
                    f"Hosts whose traffic (bytes, both directions) in the latest {p}s is more than {factor:g} times "
                    f"their own average per {p}s over the {k} periods before (hosts with no earlier traffic and "
                    "under 10 kB are ignored).", {"factor": factor, "period_s": p, "baseline_periods": k})


def flow_risk(d: str, ctx: dict) -> Compiled | None:
    bits: list[int] = []
    names = {b: n.lower() for b, n in all_risks().items()}
    for b, n in names.items():
        if len(n) > 5 and n in d:
            bits.append(b)
    for phrase, b in sorted(RISK_WORDS.items(), key=lambda kv: -len(kv[0])):
        if re.search(r"(?<![a-z])" + re.escape(phrase) + r"(?![a-z])", d) and b not in bits:
            bits.append(b)
    m = re.search(r"risk\s*(?:id\s*|bit\s*|#)?(\d{1,2})\b", d)
    if m and 0 < int(m.group(1)) < 64:
        bits.append(int(m.group(1)))
    generic = re.search(r"\b(any|every|all)\s+(flow\s+)?risks?\b|\bflow risks?\b|\brisky flows?\b", d)
    if not bits and not generic:
        return None
    if not bits and not re.search(r"\b(any|every|all)\b", d):
        return None
    lb = _lookback(d, ctx["lookback"])
    cond = "FLOW_RISK != 0" if not bits else "(" + " OR ".join(f"bitTest(FLOW_RISK, {int(b)})" for b in bits) + ")"
    sql = ("SELECT SRC_IP, DST_IP, IP_DST_PORT, L7_PROTO_NAME AS application, any(DOMAIN_NAME) AS server_name, "
           "groupBitOr(FLOW_RISK) AS risks, count() AS flows, min(FIRST_SEEN) AS first_seen FROM flows "
           f"WHERE {_since(lb)} AND {cond} GROUP BY SRC_IP, DST_IP, IP_DST_PORT, application ORDER BY flows DESC")
    which = ", ".join(f"{b} '{all_risks().get(b, NDPI_RISKS.get(b, (str(b),))[0])}'" for b in bits) or "any risk"
    return Compiled(sql, "flow_risk", f"Flows carrying nDPI flow risk {which} in the last {lb}s of traffic; "
                    "one row per client, server and port.", {"risk_bits": bits, "lookback_s": lb})


REMOTE = {"ssh": (22, "SSH"), "telnet": (23, "Telnet"), "rdp": (3389, "RDP"), "remote desktop": (3389, "RDP")}


def remote_access(d: str, ctx: dict) -> Compiled | None:
    chosen = {v for k, v in REMOTE.items() if re.search(r"\b" + k + r"\b", d)}
    if not chosen or not re.search(r"internet|external|public|outside|remote hosts?|wan\b", d):
        return None
    ports = sorted({p for p, _ in chosen})
    ids = _proto_ids(*sorted({n for _, n in chosen}))
    private = list(NON_PUBLIC) + list(ctx.get("local_networks") or [])
    s_pub, d_pub = f"NOT {_in_any('SRC_IP', private)}", f"NOT {_in_any('DST_IP', private)}"
    if re.search(r"from (the )?(internet|outside|external|public)", d) and not re.search(r"to (the )?(internet|outside|external|public)", d):
        where_dir, how = s_pub, "from a public address"
    elif re.search(r"to (the )?(internet|outside|external|public)", d) and not re.search(r"from (the )?(internet|outside|external|public)", d):
        where_dir, how = d_pub, "to a public address"
    else:
        where_dir, how = f"({s_pub} OR {d_pub})", "to or from a public address"
    lb = _lookback(d, ctx["lookback"])
    proto_cond = f"(IP_DST_PORT IN ({', '.join(map(str, ports))})" + (f" OR {_l7_cond(ids)}" if ids else "") + ")"
    sql = ("SELECT SRC_IP, DST_IP, IP_DST_PORT, L7_PROTO_NAME AS application, count() AS flows, "
           "sum(TOTAL_BYTES) AS bytes, min(FIRST_SEEN) AS first_seen FROM flows "
           f"WHERE {_since(lb)} AND PROTOCOL = 6 AND {proto_cond} AND {where_dir} "
           "GROUP BY SRC_IP, DST_IP, IP_DST_PORT, application ORDER BY flows DESC")
    names = "/".join(sorted({n for _, n in chosen}))
    return Compiled(sql, "remote_access_internet",
                    f"{names} sessions (ports {', '.join(map(str, ports))} or nDPI-detected) {how} (not private, "
                    f"loopback, link-local, multicast or a configured local network) in the last {lb}s of traffic.",
                    {"services": names, "lookback_s": lb})


def dns_non_approved(d: str, ctx: dict) -> Compiled | None:
    if not re.search(r"\bdns\b|resolver|name server|nameserver", d):
        return None
    if not re.search(r"approved|allowed|authori[sz]ed|sanctioned|official|other than|except|not in|only|"
                     r"unapproved|non-approved|unauthori[sz]ed|rogue|unexpected", d):
        return None
    nets = _networks(d) or list(ctx.get("expected_dns") or [])
    if not nets:
        raise NoIntent("this looks like a 'DNS to a non-approved server' policy but no approved DNS server is "
                       "given: list the approved servers' IP addresses in the description (e.g. 'DNS to servers "
                       "other than 192.168.1.1, 192.168.1.2') or configure [expected_servers] dns in flowscope.toml")
    lb = _lookback(d, ctx["lookback"])
    ids = _proto_ids("DNS")
    cond = "IP_DST_PORT = 53" + (f" OR {_l7_cond(ids)}" if ids else "")
    sql = ("SELECT SRC_IP, DST_IP AS dns_server, count() AS flows, min(FIRST_SEEN) AS first_seen, "
           "any(DOMAIN_NAME) AS sample_query FROM flows "
           f"WHERE {_since(lb)} AND PROTOCOL IN (6, 17) AND ({cond}) AND NOT {_in_any('DST_IP', nets)} "
           "GROUP BY SRC_IP, dns_server ORDER BY flows DESC")
    return Compiled(sql, "dns_non_approved",
                    f"DNS queries (port 53 or nDPI DNS) sent to servers other than {', '.join(nets)} in the last "
                    f"{lb}s of traffic; one row per client and server.", {"approved": nets, "lookback_s": lb})


def new_device(d: str, ctx: dict) -> Compiled | None:
    if not re.search(r"new\s+(mac|device|host|hardware)|unknown\s+(mac|device)|(mac|device)s?\s+(first\s+)?"
                     r"(appear|seen|show)|never seen", d):
        return None
    learn = 3600
    m = re.search(r"learning (?:period )?(?:of )?(\d+)\s*(minutes?|hours?|days?)", d)
    if m:
        learn = int(m.group(1)) * PERIODS.get(m.group(2).rstrip("s"), 3600)
    lb = _lookback(d, max(ctx["lookback"], 86400))
    sql = ("SELECT mac, first_seen, first_ip, flows FROM (SELECT SRC_MAC_ADDR AS mac, min(FIRST_SEEN) AS first_seen, "
           "argMin(SRC_IP, FIRST_SEEN) AS first_ip, count() AS flows FROM flows WHERE SRC_MAC != 0 GROUP BY mac) "
           f"WHERE first_seen >= (SELECT min(FIRST_SEEN) FROM flows) + INTERVAL {learn} SECOND "
           f"AND first_seen >= {REF} - INTERVAL {lb} SECOND ORDER BY first_seen")
    return Compiled(sql, "new_device",
                    f"MAC addresses (as flow source) seen for the first time in the last {lb}s of traffic, "
                    f"ignoring the first {learn}s of recorded history (learning period, say 'learning period "
                    "of N hours' to change it).", {"learning_s": learn, "lookback_s": lb})


def country(d: str, ctx: dict) -> Compiled | None:
    codes = []
    for name, code in sorted(COUNTRIES.items(), key=lambda kv: -len(kv[0])):
        if re.search(r"\b" + re.escape(name) + r"\b", d):
            codes.append(code)
    raw = ctx["raw"]
    for m in re.finditer(r"\b(?:country|countries|country code|cc)\s*[:=]?\s*((?:[A-Z]{2}\s*(?:,|and|or)?\s*)+)", raw):
        codes += re.findall(r"\b[A-Z]{2}\b", m.group(1))
    if not codes and re.search(r"countr", d):
        codes += [c for c in re.findall(r"\b([A-Z]{2})\b", raw) if c not in ("IP", "OR", "TO", "IN")]
    codes = list(dict.fromkeys(c for c in codes if re.fullmatch(r"[A-Z]{2}", c)))
    if not codes:
        return None
    lst = ", ".join(_q(c) for c in codes)
    if re.search(r"\bfrom\b", d) and not re.search(r"\bto\b", d):
        cond, how = f"SRC_COUNTRY_CODE IN ({lst})", "from"
    elif re.search(r"\bto\b", d) and not re.search(r"\bfrom\b", d):
        cond, how = f"DST_COUNTRY_CODE IN ({lst})", "to"
    else:
        cond, how = f"(SRC_COUNTRY_CODE IN ({lst}) OR DST_COUNTRY_CODE IN ({lst}))", "to or from"
    lb = _lookback(d, ctx["lookback"])
    sql = ("SELECT SRC_IP, DST_IP, SRC_COUNTRY_CODE, DST_COUNTRY_CODE, count() AS flows, sum(TOTAL_BYTES) AS bytes, "
           f"min(FIRST_SEEN) AS first_seen FROM flows WHERE {_since(lb)} AND {cond} "
           "GROUP BY SRC_IP, DST_IP, SRC_COUNTRY_CODE, DST_COUNTRY_CODE ORDER BY bytes DESC")
    return Compiled(sql, "country", f"Traffic {how} country {', '.join(codes)} (GeoIP of the flow's addresses) "
                    f"in the last {lb}s of traffic; one row per client and server.", {"countries": codes})


def bytes_exceed(d: str, ctx: dict) -> Compiled | None:
    m = re.search(r"(?:more than|over|exceed\w*|above|>|at least)\s*([\d.]+)\s*(tib|gib|mib|kib|tb|gb|mb|kb|bytes|"
                  r"byte|b)\b", d)
    if not m:
        return None
    try:
        limit = int(float(m.group(1)) * UNITS[m.group(2)])
    except ValueError:
        return None
    p = 3600
    if re.search(r"\bdaily\b|per day|a day|each day", d):
        p = 86400
    elif re.search(r"per minute|a minute|each minute", d):
        p = 60
    else:
        p = _duration(d, 3600)
    lb = _lookback(d, max(ctx["lookback"], p))
    sql = (f"SELECT arrayJoin([SRC_IP, DST_IP]) AS host, toStartOfInterval(FIRST_SEEN, INTERVAL {p} SECOND) AS "
           "period_start, sum(TOTAL_BYTES) AS bytes FROM flows "
           f"WHERE {_since(lb)} GROUP BY host, period_start HAVING bytes > {limit} ORDER BY bytes DESC")
    return Compiled(sql, "host_bytes_exceeded",
                    f"Hosts (as client or server) that exchanged more than {limit} bytes in one {p}s period "
                    f"over the last {lb}s of traffic.", {"bytes": limit, "period_s": p})


def app_used(d: str, ctx: dict) -> Compiled | None:
    cat = _catalog()
    if cat is None:
        return None
    found = []
    for p in getattr(cat, "protocols", []):
        name = str(p.name)
        if len(name) < 3 or name.lower() in ("unknown", "dns", "ssh", "telnet", "rdp", "http", "tls", "tcp", "udp",
                                             "ip", "icmp"):
            continue
        if re.search(r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])", d):
            found.append(p)
    if not found:
        for n in ("http", "tls", "dns", "ssh", "telnet", "rdp"):
            if re.search(r"\b" + n + r"\b", d) and re.search(r"application|\bapp\b|protocol|\bused\b|\buse\b", d):
                p = cat.by_name(n)
                if p is not None:
                    found.append(p)
                break
    if not found:
        return None
    found.sort(key=lambda p: -len(p.name))
    app = found[0]
    nets = _networks(d)
    cond = _l7_cond([int(app.id)])
    how = "by any host"
    if nets:
        if re.search(r"\bto\b", d) and not re.search(r"\b(by|from)\b", d):
            cond += f" AND {_in_any('DST_IP', nets)}"
            how = f"to {', '.join(nets)}"
        elif re.search(r"\b(by|from)\b", d) and not re.search(r"\bto\b", d):
            cond += f" AND {_in_any('SRC_IP', nets)}"
            how = f"by {', '.join(nets)}"
        else:
            cond += f" AND ({_in_any('SRC_IP', nets)} OR {_in_any('DST_IP', nets)})"
            how = f"by or to {', '.join(nets)}"
    lb = _lookback(d, ctx["lookback"])
    sql = ("SELECT SRC_IP, DST_IP, L7_PROTO_NAME AS application, count() AS flows, sum(TOTAL_BYTES) AS bytes, "
           f"min(FIRST_SEEN) AS first_seen, max(LAST_SEEN) AS last_seen FROM flows WHERE {_since(lb)} AND {cond} "
           "GROUP BY SRC_IP, DST_IP, application ORDER BY bytes DESC")
    return Compiled(sql, "application_used",
                    f"Flows of nDPI application {app.name} (id {app.id}, also as master protocol) {how} in the last "
                    f"{lb}s of traffic; one row per client and server.", {"application": app.name})


INTENTS: list[tuple[str, Callable[[str, dict], Compiled | None], str]] = [
    ("clear_text_credentials", clear_text_credentials, "plain-text credentials (e.g. 'alert on clear-text passwords')"),
    ("port_scan", port_scan, "port scan (e.g. 'port scan: more than 100 distinct ports in 60 seconds')"),
    ("traffic_over_baseline", traffic_baseline, "traffic over its baseline (e.g. 'host traffic over twice its own "
                                                "baseline per hour')"),
    ("dns_non_approved", dns_non_approved, "DNS to a non-approved server (e.g. 'DNS to servers other than 10.0.0.53')"),
    ("remote_access_internet", remote_access, "SSH/Telnet/RDP to or from the internet (e.g. 'no RDP from the internet')"),
    ("new_device", new_device, "a new MAC / device appearing (e.g. 'alert when a new device appears')"),
    ("flow_risk", flow_risk, "a flow risk of a given kind (e.g. 'flows with self-signed certificates', 'any flow risk')"),
    ("country", country, "traffic to/from a country (e.g. 'traffic to Russia or CN')"),
    ("host_bytes_exceeded", bytes_exceed, "host exceeding X bytes per period (e.g. 'host over 1 GB per hour')"),
    ("application_used", app_used, "application A used by/to network N (e.g. 'BitTorrent used by 192.168.1.0/24')"),
]


def compile_intent(description: str, ctx: dict | None = None) -> Compiled:
    ctx = dict(ctx or {})
    ctx.setdefault("lookback", 3600)
    ctx["raw"] = description
    d = " ".join(description.lower().split())
    for _, fn, _ in INTENTS:
        res = fn(d, ctx)
        if res is not None:
            return res
    raise NoIntent("no built-in intent matches this description")


def intents_help() -> str:
    return "; ".join(h for _, _, h in INTENTS)
