"""Synthetic flow rows (as the writer hands them to `app.on_flows`) for alert tests."""

from __future__ import annotations

import ipaddress
import itertools
import time

_ids = itertools.count(1)


def flow(src: str, dst: str, dport: int, *, sport: int = 40000, proto: int = 6, t: float | None = None,
         risk: int = 0, domain: str = "", answered: bool = True, src_mac: int = 0, dst_mac: int = 0,
         nbytes: int = 1000, l7: int = 0, src_cc: str = "", dst_cc: str = "", dur: float = 1.0) -> dict:
    t = time.time() if t is None else t
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    v6 = a.version == 6
    return {
        "FLOW_ID": next(_ids), "IP_PROTOCOL_VERSION": 6 if v6 else 4, "FIRST_SEEN": t, "LAST_SEEN": t + dur,
        "PACKETS": 4, "TOTAL_BYTES": nbytes, "SRC2DST_BYTES": nbytes // 2, "DST2SRC_BYTES": nbytes - nbytes // 2,
        "SRC2DST_PACKETS": 2, "DST2SRC_PACKETS": 2 if answered else 0, "PROTOCOL": proto,
        "IPV4_SRC_ADDR": 0 if v6 else int(a), "IPV4_DST_ADDR": 0 if v6 else int(b),
        "IPV6_SRC_ADDR": src if v6 else "::", "IPV6_DST_ADDR": dst if v6 else "::",
        "IP_SRC_PORT": sport, "IP_DST_PORT": dport, "L7_PROTO": l7, "FLOW_RISK": risk, "INFO": domain,
        "DOMAIN_NAME": domain, "SRC_MAC": src_mac, "DST_MAC": dst_mac, "SRC_COUNTRY_CODE": src_cc,
        "DST_COUNTRY_CODE": dst_cc, "SOURCE_TYPE": "pcap", "CLASSIFIED_BY": "ndpi",
    }
