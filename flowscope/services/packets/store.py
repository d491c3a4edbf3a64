"""Where a flow's packets are: the `flow_packets` index (flow → capture file or interface ring),
filled as flows are stored, and the files to read for a flow."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowscope.capture.retention import list_ring_files
from flowscope.services.flows import iso
from flowscope.services.packets.filters import FlowKey


@dataclass(frozen=True)
class Location:
    kind: str  # file | ring
    store: str  # capture file path, or ring directory
    interface: str = ""
    size: int = 0
    mtime: float = 0.0


@dataclass
class Files:
    paths: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: str | None = None  # why no packets can be read


def file_location(path: str) -> Location:
    st = os.stat(path)
    return Location("file", os.path.abspath(path), "", st.st_size, st.st_mtime)


def index_rows(rows: list[dict[str, Any]], where: dict[int, Location]) -> list[dict[str, Any]]:
    """`flow_packets` rows for the flows whose INTERFACE_ID has a known packet location."""
    out = []
    for r in rows:
        loc = where.get(r.get("INTERFACE_ID", 0))
        if loc is None or r.get("SOURCE_TYPE") not in ("pcap", "interface"):
            continue
        out.append({"FLOW_ID": r["FLOW_ID"], "FIRST_SEEN": r["FIRST_SEEN"], "LAST_SEEN": r["LAST_SEEN"],
                    "STORE_KIND": loc.kind, "STORE": loc.store, "INTERFACE": loc.interface,
                    "FILE_SIZE": loc.size, "FILE_MTIME": loc.mtime})
    return out


def recorded(store, flow_ids: list[int]) -> dict[int, Location]:
    if not flow_ids:
        return {}
    res = store.query("SELECT FLOW_ID, STORE_KIND, STORE, INTERFACE, FILE_SIZE, FILE_MTIME FROM flow_packets "
                      "WHERE FLOW_ID IN {ids:Array(UInt64)}", {"ids": flow_ids})
    return {int(r[0]): Location(r[1], r[2], r[3], int(r[4]), float(r[5])) for r in res.rows}


def files_for(loc: Location | None, keys: list[FlowKey], age_s: int | None = None) -> Files:
    """The files holding the packets of `keys` (all kept at `loc`)."""
    out = Files()
    if loc is None:
        out.missing = ("no packets are kept for this flow: packets are kept for capture files (serve --pcap, "
                       "ingest) and for live interfaces with serve --retain-packets; exporter flows have none")
        return out
    if loc.kind == "file":
        try:
            st = os.stat(loc.store)
        except OSError:
            out.missing = (f"the capture file holding these packets, {loc.store}, is gone or has moved since it "
                           "was metered: put it back there, or ingest it again from its new place")
            return out
        if (st.st_size, round(st.st_mtime, 3)) != (loc.size, round(loc.mtime, 3)):
            out.warnings.append(f"{loc.store} changed since it was metered: its packets may not match the flow")
        out.paths.append(Path(loc.store))
        return out
    begin, end = min(k.first for k in keys), max(k.end for k in keys)
    ring = [f for f in list_ring_files(Path(loc.store)) if f.first_ts is not None]
    cutoff = time.time() - age_s if age_s else 0.0
    out.paths = [f.path for f in ring if f.first_ts < end and f.end_ts >= max(begin, cutoff)]
    if not out.paths:
        out.missing = (f"the packets of this flow ({iso(begin)} to {iso(end)}) are no longer in {loc.interface}'s "
                       "retention ring: they were dropped to stay within --retain-packets/--retain-packets-for")
    elif ring[0].first_ts > begin:
        out.warnings.append("the oldest packets of this flow were already dropped from the retention ring")
    return out
