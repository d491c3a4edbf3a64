"""Flow exporters as entities: who sends, what, how much, and what got lost."""

from __future__ import annotations

import threading
import time
from typing import Any

from flowscope.collector.templates import TemplateCache


class SequenceTracker:
    """Counts sequence gaps of one export stream (exporter address, source port, domain)."""

    __slots__ = ("expected", "gaps", "lost")

    def __init__(self) -> None:
        self.expected: int | None = None
        self.gaps = 0
        self.lost = 0

    def check(self, seq: int, advance: int | None) -> None:
        """`advance`: how far this message moves the sequence (None when it cannot be known)."""
        exp = self.expected
        if exp is not None and seq != exp:
            diff = (seq - exp) & 0xFFFFFFFF
            if 0 < diff < 0x10000000:     # forward jump: datagrams lost on the way
                self.gaps += 1
                self.lost += diff
            # a backward jump is a reordered datagram or an exporter restart: not a loss
        self.expected = None if advance is None else (seq + advance) & 0xFFFFFFFF


class Exporter:
    """One exporter (address, export type)."""

    def __init__(self, address: str, source_type: str, listener_id: int, now: float):
        self.address = address
        self.source_type = source_type
        self.version = 0
        self.listener_id = listener_id
        self.first_seen = now
        self.last_seen = now
        self.datagrams = 0
        self.records = 0
        self.option_records = 0
        self.bytes_received = 0
        self.undecodable = 0          # datagrams (or parts) that could not be parsed
        self.templates = TemplateCache()
        self.sequences: dict[tuple[int, int], SequenceTracker] = {}
        #: (domain, sampler id) -> 1-in-N interval, learned from options data
        self.samplers: dict[tuple[int, int], int] = {}
        self.domain_sampling: dict[int, int] = {}
        self.sys_init_ms: dict[int, int] = {}
        #: ifIndex -> name learned from options data (interfaceName / interfaceDescription)
        self.if_names: dict[int, str] = {}
        #: applicationId bytes -> name learned from options data
        self.app_names: dict[bytes, str] = {}
        self.sampling_seen = 0
        self.counter_samples = 0
        self.domains: set[int] = set()

    def sequence(self, port: int, domain: int) -> SequenceTracker:
        key = (port, domain)
        t = self.sequences.get(key)
        if t is None:
            if len(self.sequences) > 256:   # bounded: forget the oldest streams
                self.sequences.pop(next(iter(self.sequences)))
            t = self.sequences[key] = SequenceTracker()
        return t

    def learn_options(self, rec: dict[str, Any], domain: int) -> None:
        self.option_records += 1
        rate = rec.get("sampler_interval") or rec.get("sampling")
        if not rate and rec.get("sp_interval"):
            iv = rec["sp_interval"]
            rate = (iv + (rec.get("sp_space") or 0)) // iv if iv else 0
        sid = rec.get("sampler_id")
        if sid is None:
            sid = rec.get("selector_id")
        if rate and 1 <= rate <= 1 << 24:
            if sid is not None:
                self.samplers[(domain, sid)] = rate
            else:
                self.domain_sampling[domain] = rate
        if rec.get("sys_init_ms"):
            self.sys_init_ms[domain] = rec["sys_init_ms"]
        name = rec.get("if_name") or rec.get("if_desc")
        if name:
            idx = rec.get("in_if")
            if idx is None:
                idx = rec.get("scope_if")
            if idx is None:
                idx = rec.get("out_if")
            if idx is not None and len(self.if_names) < 100000:
                self.if_names[idx] = name[:128]
        app, app_name = rec.get("app_id"), rec.get("app_name")
        if app and app_name and len(self.app_names) < 100000:
            self.app_names[app] = app_name[:128]

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        lost = sum(t.lost for t in self.sequences.values())
        gaps = sum(t.gaps for t in self.sequences.values())
        idle = now - self.last_seen
        unit = "records" if self.source_type in ("netflow5", "ipfix") else "datagrams"
        tc = self.templates
        if idle > 300:
            health = "silent"
        elif self.datagrams and (self.undecodable / self.datagrams > 0.1 or tc.dropped_sets > 0
                                 or (lost and lost / max(1, self.records if unit == "records" else self.datagrams) > 0.01)):
            health = "degraded"
        else:
            health = "ok"
        return {
            "address": self.address,
            "type": self.source_type,
            "version": self.version,
            "interface_id": self.listener_id,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "datagrams": self.datagrams,
            "bytes_received": self.bytes_received,
            "records": self.records,
            "option_records": self.option_records,
            "counter_samples": self.counter_samples,
            "undecodable": self.undecodable,
            "sequence_gaps": gaps,
            "lost": lost,
            "lost_unit": unit,
            "templates": len(tc.templates),
            "options_templates": sum(1 for t in tc.templates.values() if t.options),
            "templates_withdrawn": tc.withdrawn,
            "pending_sets": tc.pending_count,
            "dropped_sets": tc.dropped_sets,
            "domains": sorted(self.domains)[:64],
            "interface_names": len(self.if_names),
            "health": health,
        }


class ExporterRegistry:
    """Every exporter seen, keyed by (address, type). Bounded."""

    def __init__(self, max_exporters: int = 10000):
        self._by_key: dict[tuple[str, str], Exporter] = {}
        self.max_exporters = max_exporters
        self.lock = threading.Lock()

    def get(self, address: str, source_type: str, listener_id: int, now: float) -> Exporter:
        key = (address, source_type)
        ex = self._by_key.get(key)
        if ex is None:
            with self.lock:
                if len(self._by_key) >= self.max_exporters:
                    oldest = min(self._by_key, key=lambda k: self._by_key[k].last_seen)
                    del self._by_key[oldest]
                ex = self._by_key[key] = Exporter(address, source_type, listener_id, now)
        return ex

    def all(self) -> list[Exporter]:
        with self.lock:
            return list(self._by_key.values())

    def find(self, address: str) -> list[Exporter]:
        return [e for e in self.all() if e.address == address]

    def snapshots(self) -> list[dict[str, Any]]:
        now = time.time()
        return [e.snapshot(now) for e in self.all()]
