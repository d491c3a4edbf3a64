"""From a flow to its packets: where they are kept, extracting them, decoding them with tshark.

Packets of capture files stay in the original file (`flow_packets` remembers which); packets of
live interfaces are kept in a dumpcap ring when `serve --retain-packets` is given. What a caller
may see is decided before any packet is read: flows are found through the live table and the
`flows` history with the caller's scope (`Scope.visible_flow`, `Scope.flows_sql()`),
and only those flows' packets are extracted.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowscope.auth import Principal
from flowscope.capture.retention import Ring, dumpcap_available, ring_directory
from flowscope.services import flows as flows_svc
from flowscope.services.packets import decode, pcapfile, tshark
from flowscope.services.packets.filters import FlowKey, any_of
from flowscope.services.packets.settings import PacketSettings
from flowscope.services.packets.store import (
    Location,
    file_location,
    files_for,
    index_rows,
    recorded,
)

log = logging.getLogger(__name__)

CACHE_ENTRIES = 32
CONCURRENT_EXTRACTIONS = 2


class PacketError(Exception):
    """Packets cannot be given; the message says why and what to do."""


@dataclass
class Extraction:
    path: Path | None
    flows: list[FlowKey]
    packets: int = 0
    bytes: int = 0
    timed_out: bool = False
    files_read: int = 0
    elapsed_ms: float = 0.0
    warnings: list[str] = field(default_factory=list)
    cached: bool = False


class PacketService:
    def __init__(self, app):
        self.app = app
        self.settings = PacketSettings.of(app.config)
        self.rings: dict[str, Ring] = {}
        self.where: dict[int, Location] = {}  # this run's INTERFACE_IDs
        self.work = Path(app.config.data_dir) / "packets" / "work"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.stats = {"extractions": 0, "cache_hits": 0, "timeouts": 0, "failures": 0, "last_ms": None,
                      "total_ms": 0.0}
        self._cache: OrderedDict[tuple, Extraction] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(CONCURRENT_EXTRACTIONS)
        if self.settings.retaining and app.config.interfaces and not dumpcap_available():
            raise RuntimeError("--retain-packets needs dumpcap (Debian package wireshark-common)")
        app.on_source(self._on_source)
        # indexed before the flows are visible: no window without packets
        app.before_store(self._on_flows, self._on_flow_columns)

    # --- where packets go --------------------------------------------------------------------
    def _on_source(self, src: dict) -> None:
        if src["kind"] == "pcap":
            self.where[src["id"]] = file_location(src["name"])
        elif src["kind"] == "interface" and self.settings.retaining:
            directory = ring_directory(self.app.config.data_dir, src["name"])
            ring = Ring(src["name"], directory, self.settings.ring_plan())
            ring.start()
            self.rings[src["name"]] = ring
            self.where[src["id"]] = Location("ring", str(directory), src["name"])

    def _on_flows(self, rows: list[dict]) -> None:
        index = index_rows(rows, self.where)
        if index:
            self.app.store.insert_dicts("flow_packets", index)

    def _on_flow_columns(self, batch) -> None:
        source = batch.shared("SOURCE_TYPE")
        if source is None or source in ("pcap", "interface"):  # exporters' flows have no packets here
            self._on_flows(batch.rows())

    def stop(self) -> None:
        for ring in self.rings.values():
            ring.stop()

    # --- which flows -------------------------------------------------------------------------
    def flow(self, principal: Principal, flow_id: int) -> FlowKey:
        for f in self.app.live.flows():
            if f.FLOW_ID == flow_id and principal.scope.visible_flow(f.SRC_IP, f.DST_IP):
                return FlowKey.of(f.as_row(), live=True)
        row = flows_svc.history_flow(self.app, principal.scope, flow_id)
        if row is None:
            raise PacketError(f"no flow {flow_id} that you may see (it does not exist or is outside your allowed "
                              "networks); find flows with get_live_flows or get_historical_flow")
        return FlowKey.of(row)

    def matching(self, principal: Principal, flt: flows_svc.FlowFilter, begin: float | None, end: float | None,
                 max_flows: int) -> tuple[list[FlowKey], bool]:
        """Flows matching a filter in [begin, end] that the caller may see, oldest first."""
        keys = {f.FLOW_ID: FlowKey.of(f.as_row(), live=True)
                for f in flows_svc.visible_live(self.app, principal.scope, flt)
                if (begin is None or f.LAST_SEEN >= begin) and (end is None or f.FIRST_SEEN <= end)}
        rows, _ = flows_svc.search_history(self.app, principal.scope, flt, begin, end, "first_seen", False,
                                           max_flows + 1, 0)
        for r in rows:
            keys.setdefault(int(r["FLOW_ID"]), FlowKey.of(r))
        ordered = sorted(keys.values(), key=lambda k: (k.first, k.flow_id))
        return ordered[:max_flows], len(ordered) > max_flows

    # --- extraction --------------------------------------------------------------------------
    def extract(self, keys: list[FlowKey], begin: float | None = None, end: float | None = None) -> Extraction:
        """The packets of `keys` (in [begin, end] when given) as one pcap. An extraction is reused
        while the files it read are unchanged (a ring file dropped or grown means a new one)."""
        jobs, warnings = self._plan(keys)
        cache_key = (tuple(sorted((k.flow_id, k.last) for k in keys)), begin, end,
                     tuple((str(p), _size(p)) for p, _ in jobs))
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None and hit.path and hit.path.exists():
                self._cache.move_to_end(cache_key)
                self.stats["cache_hits"] += 1
                return hit
        with self._slots:
            ext = self._extract(keys, jobs, begin, end)
        ext.warnings = warnings + ext.warnings
        with self._lock:
            self._cache[cache_key] = ext
            while len(self._cache) > CACHE_ENTRIES:
                _, old = self._cache.popitem(last=False)
                if old.path:
                    old.path.unlink(missing_ok=True)
        return ext

    def _plan(self, keys: list[FlowKey]) -> tuple[list[tuple[Path, list[FlowKey]]], list[str]]:
        """Which files to read for which flows; PacketError when none of them is kept."""
        known = recorded(self.app.store, [k.flow_id for k in keys])
        groups: dict[Location | None, list[FlowKey]] = {}
        for k in keys:
            loc = known.get(k.flow_id) or (self.where.get(k.interface_id) if k.live else None)
            groups.setdefault(loc, []).append(k)
        jobs: list[tuple[Path, list[FlowKey]]] = []
        warnings, missing = [], []
        for loc, ks in groups.items():
            files = files_for(loc, ks, self.settings.retain_age_s if loc and loc.kind == "ring" else None)
            warnings += files.warnings
            missing += [files.missing] if files.missing else []
            jobs += [(p, ks) for p in files.paths]
        if missing and not jobs:
            raise PacketError(missing[0])
        return jobs, warnings + missing

    def _extract(self, keys: list[FlowKey], jobs: list[tuple[Path, list[FlowKey]]], begin: float | None,
                 end: float | None) -> Extraction:
        started = time.monotonic()
        ext = Extraction(path=None, flows=keys)
        tmp = self.work / uuid.uuid4().hex
        tmp.mkdir()
        deadline = tshark.Deadline(self.settings.extract_timeout_s)
        pieces = []
        try:
            for i, (path, ks) in enumerate(jobs):
                lo = max(begin if begin is not None else 0.0, min(k.first for k in ks))
                hi = min(end if end is not None else float("inf"), max(k.end for k in ks))
                piece = tmp / f"piece{i}.pcap"
                deadline.remaining()
                self._read_window(path, any_of(ks), lo, hi, tmp / f"cut{i}.pcap", piece, deadline)
                ext.files_read += 1
                if piece.exists() and pcapfile.info(piece).packets:
                    pieces.append(piece)
        except tshark.ExtractionTimeout:
            ext.timed_out = True
            self.stats["timeouts"] += 1
        except (tshark.PacketToolError, OSError, ValueError) as exc:
            self.stats["failures"] += 1
            shutil.rmtree(tmp, ignore_errors=True)
            raise PacketError(str(exc)) from None
        try:
            ext.path = self._join(pieces, tmp)
            if ext.path:
                total = pcapfile.info(ext.path)
                ext.packets, ext.bytes = total.packets, total.bytes
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        ext.elapsed_ms = (time.monotonic() - started) * 1000
        self.stats["extractions"] += 1
        self.stats["last_ms"] = round(ext.elapsed_ms, 1)
        self.stats["total_ms"] += ext.elapsed_ms
        return ext

    @staticmethod
    def _read_window(path: Path, display_filter: str, lo: float, hi: float, cut: Path, out: Path,
                     deadline: tshark.Deadline) -> None:
        """The packets of `path` in [lo, hi) that match the filter, into `out`. libpcap files (rings,
        most captures) are cut to the time window first without dissecting, which is fast."""
        try:
            written, _ = pcapfile.rewrite(path, cut, begin=lo, end=hi)
        except ValueError:  # pcapng: tshark reads it whole, the time window joins the filter
            tshark.filter_to(path, f"frame.time_epoch >= {lo!r} && frame.time_epoch < {hi!r} && ({display_filter})",
                             out, deadline)
            return
        if written.packets:
            tshark.filter_to(cut, display_filter, out, deadline)

    def _join(self, pieces: list[Path], tmp: Path) -> Path | None:
        if not pieces:
            return None
        final = self.work / f"{uuid.uuid4().hex}.pcap"
        if len(pieces) == 1:
            pieces[0].replace(final)
        else:
            tshark.concat(pieces, final, tshark.Deadline(self.settings.extract_timeout_s))
        return final

    # --- answers -----------------------------------------------------------------------------
    def may_see_payload(self, principal: Principal) -> bool:
        return principal.is_admin or self.settings.payload_for_users

    def summary(self, ext: Extraction, offset: int, limit: int, payload: bool) -> list[decode.SummaryLine]:
        if ext.path is None or offset >= ext.packets:
            return []
        with _decoding():
            rows = tshark.summary(ext.path, offset + 1, min(offset + limit, ext.packets),
                                  tshark.Deadline(self.settings.extract_timeout_s))
        return [decode.summary_line(r, payload) for r in rows]

    def details(self, ext: Extraction, numbers: list[int], payload: bool) -> list[dict[str, Any]]:
        numbers = sorted({n for n in numbers if 1 <= n <= ext.packets})
        if ext.path is None or not numbers:
            return []
        with _decoding():
            layers = tshark.layers(ext.path, numbers, tshark.Deadline(self.settings.extract_timeout_s))
        return [{"number": n, "layers": decode.layer_fields(lay, payload)} for n, lay in zip(numbers, layers)]

    def pcap(self, ext: Extraction, offset: int, max_bytes: int, payload: bool) -> tuple[bytes, int, bool]:
        """(pcap bytes, packets in it, cut short) from packet `offset` on."""
        if ext.path is None:
            raise PacketError("no packets to give")
        out = self.work / f"{uuid.uuid4().hex}.out.pcap"
        try:
            written, cut = pcapfile.rewrite(ext.path, out, skip=offset, max_bytes=max_bytes, headers_only=not payload)
            return out.read_bytes(), written.packets, cut
        finally:
            out.unlink(missing_ok=True)

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {"retention": [r.info() for r in self.rings.values()],
                "retain_bytes": s.retain_bytes, "retain_age_s": s.retain_age_s,
                "payload_for_users": s.payload_for_users,
                "limits": {"packets_per_answer": s.packets_per_answer, "packets_per_answer_max": s.packets_per_answer_max,
                           "pcap_bytes": s.pcap_bytes, "pcap_bytes_max": s.pcap_bytes_max,
                           "extract_timeout_s": s.extract_timeout_s},
                "extraction": dict(self.stats)}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


@contextlib.contextmanager
def _decoding():
    try:
        yield
    except tshark.ExtractionTimeout:
        raise PacketError("decoding took longer than the time limit: ask for fewer packets (limit)") from None
    except tshark.PacketToolError as exc:
        raise PacketError(str(exc)) from None


def attach(app) -> PacketService:
    return PacketService(app)


def service(app) -> PacketService:
    comp = app.components.get("packets")
    if comp is None:
        raise PacketError("packet extraction is not available on this server (see its log)")
    return comp


def ingest_recorder(store, paths: list[str]) -> tuple[dict[str, int], Callable[[list[dict]], None]]:
    """For `flowscope ingest`: interface ids for the files, and an `on_rows` callback that
    remembers which file each flow's packets are in."""
    ids = {p: i + 1 for i, p in enumerate(paths)}
    where = {i: file_location(p) for p, i in ids.items()}

    def on_rows(rows: list[dict]) -> None:
        index = index_rows(rows, where)
        if index:
            store.insert_dicts("flow_packets", index)

    return ids, on_rows
