"""Packet settings: `serve --retain-packets/--retain-packets-for`, or `[packets]` in flowscope.toml."""

from __future__ import annotations

from dataclasses import dataclass

from flowscope.capture.retention import RingPlan
from flowscope.config import Config, parse_age, parse_size


@dataclass(frozen=True)
class PacketSettings:
    retain_bytes: int | None = None  # ring size per live interface; None with no age: no retention
    retain_age_s: int | None = None
    #: payload bytes (and application protocols other than DNS/TLS/HTTP headers) for non-admins
    payload_for_users: bool = False
    packets_per_answer: int = 50  # summary lines when the caller gives no limit
    packets_per_answer_max: int = 1000
    details_per_answer_max: int = 20
    pcap_bytes: int = 10 * 1024 ** 2  # a pcap resource holds at most this unless asked for more
    pcap_bytes_max: int = 100 * 1024 ** 2
    extract_timeout_s: float = 30.0
    flows_per_filter: int = 20  # flows a host/port filter gathers packets from

    @property
    def retaining(self) -> bool:
        return bool(self.retain_bytes or self.retain_age_s)

    def ring_plan(self) -> RingPlan:
        return RingPlan.for_limits(self.retain_bytes, self.retain_age_s)

    @classmethod
    def of(cls, config: Config) -> "PacketSettings":
        sec = config.section("packets")
        size = config.retain_packets or sec.get("retain")
        age = config.retain_packets_for or sec.get("retain_for")
        kw = {k: sec[k] for k in ("payload_for_users", "packets_per_answer", "packets_per_answer_max",
                                  "details_per_answer_max", "extract_timeout_s", "flows_per_filter") if k in sec}
        kw.update({k: parse_size(sec[k]) for k in ("pcap_bytes", "pcap_bytes_max") if k in sec})
        return cls(retain_bytes=parse_size(size) if size else None, retain_age_s=parse_age(age) if age else None,
                   **kw)
