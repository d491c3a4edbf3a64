"""Hosts, MACs and the asset inventory (component ``hosts``).

- Identity (names with their source, MAC + manufacturer, OS guess with evidence, device type,
  listening services) lives in a `HostModel`, fed by the passive identity sniffer on every
  source (`app.on_source`) and by finished flows (`app.on_flows`), and persisted to the
  `assets` / `asset_history` tables every few seconds and at stop; reloaded at start.
- Traffic totals, applications, peers and services are aggregations over `flows` and the
  live table (`flowscope.services.hosts.queries`).
- Country/ASN: `flowscope.services.hosts.geo` (`enrich_flow_rows` for the flow writer).

Config file section ``[hosts]``: ``geoip_db`` / ``asn_db`` (MaxMind .mmdb paths),
``sniff`` (default true: learn identity from packets), ``flush_seconds`` (default 5).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from flowscope.services.hosts import geo as geo_mod
from flowscope.services.hosts.identity import (
    LiveSniffer,
    learn_from_flow_columns,
    learn_from_flow_rows,
    learn_from_pcap,
)
from flowscope.services.hosts.model import HostModel
from flowscope.services.hosts.netinfo import LocalNets
from flowscope.store.columns import FlowColumns

log = logging.getLogger(__name__)

ASSET_COLUMNS = ("type", "key", "ip", "mac", "vlan", "name", "device_type", "manufacturer", "first_seen",
                 "last_seen", "gateway_mac", "os", "services", "is_local", "score", "alerts", "info", "version")


class HostsService:
    def __init__(self, app: Any):
        self.app = app
        cfg = getattr(app, "config", None)
        section = {}
        if cfg is not None and hasattr(cfg, "section"):
            try:
                section = cfg.section("hosts")
            except Exception:
                section = {}
        self.settings = section
        self.geo = geo_mod.configure(section.get("geoip_db"), section.get("asn_db"))
        self.local = LocalNets(getattr(cfg, "local_networks", None))
        self.model = HostModel(self.local)
        self.sniff = bool(section.get("sniff", True))
        self.flush_seconds = float(section.get("flush_seconds", 5))
        self.sniffers: dict[int, Any] = {}
        self.pcap_threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self._rows: queue.Queue = queue.Queue(maxsize=1000)
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.loaded = self.load()

    # ---- persistence -----------------------------------------------------------------------
    def load(self) -> int:
        store = getattr(self.app, "store", None)
        if store is None:
            return 0
        try:
            res = store.query(
                "SELECT type, key, ip, mac, vlan, gateway_mac, is_local, score, alerts, info, version, "
                "toUnixTimestamp64Milli(first_seen) / 1000 AS first_seen, "
                "toUnixTimestamp64Milli(last_seen) / 1000 AS last_seen FROM assets FINAL")
        except Exception as exc:
            log.warning("hosts: could not load assets: %s", exc)
            return 0
        return self.model.load_rows(res.dicts())

    def flush(self) -> int:
        """Write changed identities to `assets` (+ `asset_history`). Returns rows written."""
        store = getattr(self.app, "store", None)
        with self._flush_lock:
            rows, history = self.model.dirty_rows()
            if store is None or not rows:
                return 0
            try:
                store.insert("assets", ASSET_COLUMNS, [[r[c] for c in ASSET_COLUMNS] for r in rows])
                if history:
                    store.insert_dicts("asset_history", history)
            except Exception:
                log.exception("hosts: could not store %d assets", len(rows))
                self.model.mark_dirty(r["key"] for r in rows)  # retry on the next flush
                return 0
            return len(rows)

    # ---- inputs ----------------------------------------------------------------------------
    def on_flows(self, rows: list[dict]) -> None:
        """Flow hook (writer thread): hand the batch to our worker, never block the writer."""
        try:
            self._rows.put_nowait(rows)
        except queue.Full:
            log.debug("hosts: flow queue full, dropping a batch for identity learning")

    def feed_flows(self, rows: list[dict] | FlowColumns) -> None:
        if isinstance(rows, FlowColumns):
            learn_from_flow_columns(self.model, rows)
        else:
            learn_from_flow_rows(self.model, rows)

    def on_source(self, src: dict) -> None:
        if not self.sniff:
            return
        kind, name, sid = src.get("kind"), src.get("name") or "", src.get("id", 0)
        if kind == "pcap":
            t = threading.Thread(target=self._learn_file, args=(name,), name=f"identity-pcap-{sid}", daemon=True)
            self.pcap_threads.append(t)
            t.start()
        elif kind == "interface":
            sn = LiveSniffer(self.model, name)
            if sn.start():
                self.sniffers[sid] = sn
            elif sn.error:
                self.errors.append(sn.error)

    def learn_file(self, path: str) -> Any:
        """Read a capture file for identity (synchronously); returns the parser's counters."""
        parser = learn_from_pcap(self.model, path, self._stop)
        self.flush()
        return parser

    def _learn_file(self, path: str) -> None:
        try:
            self.learn_file(path)
        except Exception as exc:
            self.errors.append(f"identity learning on {path} failed: {exc}")
            log.warning(self.errors[-1])

    # ---- lifecycle -------------------------------------------------------------------------
    def _flow_worker(self) -> None:
        while not self._stop.is_set() or not self._rows.empty():
            try:
                rows = self._rows.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.feed_flows(rows)
            except Exception:
                log.exception("hosts: learning from flows failed")

    def _flusher(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:
                log.exception("hosts: flush failed")

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until queued flow batches and file readers are done, then flush (tests, tools)."""
        deadline = time.monotonic() + timeout
        if not self._threads:  # not started: learn from the queued batches here
            while not self._rows.empty():
                self.feed_flows(self._rows.get_nowait())
        while not self._rows.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        for t in list(self.pcap_threads):
            t.join(max(0.0, deadline - time.monotonic()))
        time.sleep(0.05)
        self.flush()

    async def start(self) -> None:
        if self._threads:
            return
        for target, name in ((self._flow_worker, "hosts-flows"), (self._flusher, "hosts-flush")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    async def stop(self) -> None:
        self._stop.set()
        for sn in self.sniffers.values():
            sn.stop()
        for t in self._threads + self.pcap_threads:
            t.join(timeout=5)
        while not self._rows.empty():
            try:
                self.feed_flows(self._rows.get_nowait())
            except Exception:
                break
        try:
            self.flush()
        except Exception:
            log.exception("hosts: final flush failed")


def attach(app: Any) -> HostsService:
    svc = HostsService(app)
    if hasattr(app, "on_flows"):
        app.on_flows(svc.on_flows, svc.on_flows)  # column batches queued as they are
    if hasattr(app, "on_source"):
        app.on_source(svc.on_source)
    return svc


def service(app: Any) -> HostsService:
    """The running hosts component (attaching one if the app has none, e.g. in scripts)."""
    comps = getattr(app, "components", None)
    svc = comps.get("hosts") if isinstance(comps, dict) else None
    if svc is None:
        svc = attach(app)
        if isinstance(comps, dict):
            comps["hosts"] = svc
    return svc
