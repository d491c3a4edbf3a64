"""The live flow table: current flows with their counters, in memory.

Live interfaces are metered with a short nfstream active timeout, so a flow's counters reach
this table within seconds; the segments of one flow are merged here into a single live flow.
Flows read from capture files arrive finished and stay visible (newest kept) until evicted.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Iterable

from flowscope.flows.orientation import swap
from flowscope.flows.record import community_id, ipv4_number

# Counters added up when segments of one flow are merged
_SUMMED = ("PACKETS", "TOTAL_BYTES", "SRC2DST_BYTES", "DST2SRC_BYTES", "SRC2DST_PACKETS", "DST2SRC_PACKETS")
_ORED = ("FLOW_RISK", "SRC2DST_TCP_FLAGS", "DST2SRC_TCP_FLAGS")
# Kept from the first segment that knows them (nDPI classifies early packets only)
_STICKY = ("L7_PROTO", "L7_PROTO_MASTER", "L7_CATEGORY", "L7_PROTO_NAME", "L7_CATEGORY_NAME", "INFO",
           "CLIENT_FINGERPRINT", "SERVER_FINGERPRINT", "USER_AGENT")
# Few distinct values, shared across flows
_INTERNED = ("SRC_IP", "DST_IP", "L7_PROTO_NAME", "L7_CATEGORY_NAME", "SOURCE_TYPE", "CLASSIFIED_BY",
             "SRC_COUNTRY_CODE", "DST_COUNTRY_CODE")

FIELDS = (
    "FLOW_ID", "IP_PROTOCOL_VERSION", "FIRST_SEEN", "LAST_SEEN", "VLAN_ID", "PROTOCOL", "SRC_IP", "DST_IP",
    "IP_SRC_PORT", "IP_DST_PORT", "SRC_MAC", "DST_MAC", "INTERFACE_ID", "SCORE",
    "SOURCE_TYPE", "CLASSIFIED_BY", "SRC_ASN", "DST_ASN", "SRC_COUNTRY_CODE", "DST_COUNTRY_CODE",
) + _SUMMED + _ORED + _STICKY


class LiveFlow:
    """One flow; __slots__ keep it small (the memory benchmark counts bytes per flow).

    Columns that follow from others (the numeric address columns, DOMAIN_NAME = INFO,
    COMMUNITY_ID) are not kept: `as_row()` derives them."""

    __slots__ = FIELDS + ("active", "minutes")

    def __init__(self, row: dict[str, Any]):
        for name in FIELDS:
            setattr(self, name, row.get(name, 0))
        for name in _INTERNED:
            value = row.get(name)
            setattr(self, name, sys.intern(value) if isinstance(value, str) else "")
        self.active = True
        self.minutes = None  # {minute: [s2d packets, s2d bytes, d2s packets, d2s bytes]} (PER_MINUTE)
        self._add_minutes(row.get("PER_MINUTE"))

    def _add_minutes(self, cells) -> None:
        if not cells:
            return
        if self.minutes is None:
            self.minutes = {}
        for minute, *counters in cells:
            cell = self.minutes.setdefault(minute, [0, 0, 0, 0])
            for i, c in enumerate(counters):
                cell[i] += c

    def merge(self, row: dict[str, Any]) -> None:
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + row.get(name, 0))
        for name in _ORED:
            setattr(self, name, getattr(self, name) | row.get(name, 0))
        for name in _STICKY:
            if not getattr(self, name) or getattr(self, name) == "Unknown":
                value = row.get(name)
                if value:
                    setattr(self, name, sys.intern(value) if name in _INTERNED else value)
        self.LAST_SEEN = max(self.LAST_SEEN, row.get("LAST_SEEN", 0))
        self._add_minutes(row.get("PER_MINUTE"))

    def as_row(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in FIELDS}
        if self.minutes:
            out["PER_MINUTE"] = [(m, *c) for m, c in sorted(self.minutes.items())]
        v4 = self.IP_PROTOCOL_VERSION == 4
        out["IPV4_SRC_ADDR"] = ipv4_number(self.SRC_IP) if v4 else 0
        out["IPV4_DST_ADDR"] = ipv4_number(self.DST_IP) if v4 else 0
        out["IPV6_SRC_ADDR"] = "::" if v4 else self.SRC_IP
        out["IPV6_DST_ADDR"] = "::" if v4 else self.DST_IP
        out["DOMAIN_NAME"] = self.INFO
        out["COMMUNITY_ID"] = community_id(self.SRC_IP, self.DST_IP, self.PROTOCOL, self.IP_SRC_PORT,
                                           self.IP_DST_PORT)
        out["active"] = self.active
        return out


def flow_key(row: dict[str, Any]) -> tuple:
    return (row.get("INTERFACE_ID", 0), row.get("VLAN_ID", 0), row.get("PROTOCOL", 0), row.get("SRC_IP"),
            row.get("IP_SRC_PORT", 0), row.get("DST_IP"), row.get("IP_DST_PORT", 0))


class LiveTable:
    def __init__(self, max_flows: int = 1_000_000):
        self.max_flows = max_flows
        self._flows: dict[tuple, LiveFlow] = {}
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._flows)

    def add_finished(self, rows: Iterable[dict[str, Any]]) -> None:
        """Flows that ended (e.g. from a capture file): shown, not active."""
        with self._lock:
            for row in rows:
                f = LiveFlow(row)
                f.active = False
                self._flows[(row["FLOW_ID"],)] = f
            self._evict()

    def merge_segment(self, row: dict[str, Any]) -> None:
        """Merge one nfstream segment of a live flow into its entry (a segment seen the other way
        round, e.g. one that began with the server's packet, is turned to match)."""
        key = flow_key(row)
        with self._lock:
            flow = self._flows.get(key)
            if flow is None:
                k = key
                reverse = (k[0], k[1], k[2], k[5], k[6], k[3], k[4])
                flow = self._flows.get(reverse)
                if flow is not None:
                    row = dict(row)
                    swap(row)
            if flow is None:
                self._flows[key] = LiveFlow(row)
                self._evict()
            else:
                flow.merge(row)

    def sweep(self, older_than: float = float("inf"), max_duration: float = float("inf")) -> list[LiveFlow]:
        """Remove, in one pass, active flows last seen before `older_than` or lasting `max_duration`
        or more (default: all active flows); returns them, ended. A flow that goes on after it was
        taken for its duration starts a new entry, so no packet is counted twice."""
        with self._lock:
            done = [k for k, f in self._flows.items()
                    if f.active and (f.LAST_SEEN < older_than or f.LAST_SEEN - f.FIRST_SEEN >= max_duration)]
            flows = [self._flows.pop(k) for k in done]
        for f in flows:
            f.active = False
        return flows

    def _evict(self) -> None:
        excess = len(self._flows) - self.max_flows
        if excess <= 0:
            return
        for key in [k for k, f in self._flows.items() if not f.active][:excess]:
            del self._flows[key]
            self.evicted += 1

    def snapshot(self, predicate: Callable[[LiveFlow], bool] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            flows = list(self._flows.values())
        return [f.as_row() for f in flows if predicate is None or predicate(f)]

    def flows(self) -> list[LiveFlow]:
        with self._lock:
            return list(self._flows.values())

