"""nfstream (nDPI) metering of capture files and live interfaces.

nfstream keeps only whole-flow counters and frees nDPI's per-flow state without exposing the risk
bitmap, so `instrument()` wraps `NFlow` inside nfstream's meter process: each flow's (otherwise
unused) `udps` slot carries a small list with what the meter alone can see:

- `RISK`: nDPI's risk bitmap, read just before nfstream frees the nDPI flow;
- `MINUTES`: packets and bytes per clock minute and direction, so timeseries follow the packets;
- `FIRST`: facts about the first packet (a TCP SYN, SYN+ACK or mid-session segment; a DNS or DHCP
  answer) from which `flows.orientation` decides client and server as nDPI/ntopng do.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any, Callable

ACCOUNTING_LINK_LAYER = 0  # bytes as on the wire, as ntopng and ndpiReader count them
RISK, MINUTES, FIRST = range(3)
# FIRST flags
TCP_SYN, TCP_SYNACK, TCP_MID, DNS_RESPONSE, DHCP_REPLY, DHCP_REQUEST = 1, 2, 4, 8, 16, 32
_DNS_PORTS = (53, 5353, 5355)
_patched = False


def first_packet_facts(packet, ffi) -> int:
    """Flags describing the first packet of a flow (see FIRST)."""
    proto = packet.protocol
    if proto == 6:
        if packet.syn:
            return TCP_SYNACK if packet.ack else TCP_SYN
        return TCP_MID
    if proto != 17:
        return 0
    sport, dport = packet.src_port, packet.dst_port
    if sport in _DNS_PORTS or dport in _DNS_PORTS or {sport, dport} & {67, 68}:
        n = packet.ip_content_len
        if n < 28:
            return 0
        ip = ffi.buffer(packet.ip_content, min(n, 64))
        head = (ip[0][0] & 0x0F) * 4 if packet.ip_version == 4 else 40
        at = head + 8  # UDP payload
        if at + 3 > len(ip):
            return 0
        if sport in _DNS_PORTS or dport in _DNS_PORTS:
            return DNS_RESPONSE if ip[at + 2][0] & 0x80 else 0
        op = ip[at][0]
        return DHCP_REPLY if op == 2 else DHCP_REQUEST if op == 1 else 0
    return 0


class _Deferred(types.ModuleType):
    """Stands in sys.modules for a module until one of its attributes is used, then imports it."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def import_nfstream() -> None:
    """Import nfstream, leaving pandas (used only by its `to_pandas`, ~0.3 s to import) to be
    imported on first use."""
    if "pandas" not in sys.modules and "nfstream" not in sys.modules:
        sys.modules["pandas"] = _Deferred("pandas")
    import nfstream  # noqa: F401


def instrument() -> None:
    """Patch NFlow (once per process) to fill the `udps` slot described above."""
    global _patched
    if _patched:
        return
    import_nfstream()
    from nfstream.flow import NFlow

    init, update, expire = NFlow.__init__, NFlow.update, NFlow.expire

    def new_init(self, packet, ffi, lib, *args):
        init(self, packet, ffi, lib, *args)
        minute = packet.time // 60000
        cell = [0, 0, 0, 0]
        cell[packet.direction * 2] = 1  # the first packet defines src -> dst: direction 0
        cell[packet.direction * 2 + 1] = packet.raw_size
        self.udps = [0, {minute: cell}, first_packet_facts(packet, ffi)]

    def new_update(self, packet, *args):
        out = update(self, packet, *args)
        if out is None:  # counted in this flow (an expiring packet starts the next one)
            minutes = self.udps[MINUTES]
            minute = packet.time // 60000
            cell = minutes.get(minute)
            if cell is None:
                cell = minutes[minute] = [0, 0, 0, 0]
            d = packet.direction * 2
            cell[d] += 1
            cell[d + 1] += packet.raw_size
        return out

    def new_expire(self, udps, sync, n_dissections, statistics, splt, ffi, lib, dissector):
        risk = 0
        try:
            nd = self._C.ndpi_flow
            if nd != ffi.NULL:
                risk = int(nd.risk)
        except Exception:
            risk = 0
        extra = self.udps
        out = expire(self, udps, sync, n_dissections, statistics, splt, ffi, lib, dissector)
        if not sync and isinstance(extra, list):
            extra[RISK] = risk
            self.udps = extra
        return out

    NFlow.__init__, NFlow.update, NFlow.expire = new_init, new_update, new_expire
    _patched = True


def flow_extra(f: Any) -> list:
    value = getattr(f, "udps", None)
    return value if isinstance(value, list) else [0, {}, 0]


def flow_risk(f: Any) -> int:
    return flow_extra(f)[RISK]


class _Channel:
    """Where nfstream's meter puts what it makes: here a call in the same process, so flows are
    never pickled through a queue to another process."""

    def __init__(self, on_flow: Callable[[Any], None], flow_type: type, error_event: int):
        self.on_flow, self.flow_type, self.error_event = on_flow, flow_type, error_event
        self.error: str | None = None

    def put(self, item: Any) -> None:
        if isinstance(item, self.flow_type):
            self.on_flow(item)
        elif getattr(item, "id", None) == self.error_event:
            self.error = str(getattr(item, "message", "")) or "nfstream meter error"


class _Lock:
    """The start lock nfstream's meters share; a single meter only releases it."""

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass


class _Value:
    value = 0  # nfstream's meter reports drops and packet counts here


def meter_flows(source: str, on_flow: Callable[[Any], None], *, bpf: str | None = None, idle_timeout: int,
                active_timeout: int) -> None:
    """Run nfstream's meter on `source` in this process, calling `on_flow(flow)` for each finished
    flow (an expired NFlow); raise RuntimeError with nfstream's message when it cannot meter.

    nfstream would run the meter in a child process and pickle every flow back through a queue:
    one busy process and a copy per flow fewer this way. The streamer is built only to check the
    settings as nfstream does."""
    instrument()
    from nfstream import NFStreamer
    from nfstream import meter as _meter
    from nfstream.flow import NFlow
    from nfstream.utils import NFEvent

    s = NFStreamer(source=source, bpf_filter=bpf, idle_timeout=idle_timeout, active_timeout=active_timeout,
                   accounting_mode=ACCOUNTING_LINK_LAYER, n_dissections=20,
                   statistical_analysis=True,  # per-direction TCP flag counts (SRC2DST_TCP_FLAGS)
                   n_meters=1, decode_tunnels=True)
    _meter.set_affinity = lambda idx: None  # nfstream pins meters to cores; workers share the machine's
    channel = _Channel(on_flow, NFlow, NFEvent.ERROR)
    ready = _Lock()
    _meter.meter_workflow(s.source, s.snapshot_length, s.decode_tunnels, s.bpf_filter, s.promiscuous_mode, 1, 0,
                          s._mode, s.idle_timeout * 1000, s.active_timeout * 1000, s.accounting_mode, s.udps,
                          s.n_dissections, s.statistical_analysis, s.splt_analysis, channel,
                          [_Value(), _Value(), _Value()], ready, os.getpid(), s.system_visibility_mode,
                          s.socket_buffer_size)
    if channel.error:
        raise RuntimeError(channel.error)


def split_filter(workers: int, index: int) -> str | None:
    """BPF that keeps one worker's share of an Ethernet capture: a symmetric XOR of address bytes
    keeps each flow whole.

    802.1Q-tagged traffic is matched after `vlan`, which shifts offsets for the rest of the
    expression, so it comes last; worker 0 takes whatever the others do not match.
    """
    if workers <= 1:
        return None
    w4 = "(ip[12:4]^ip[16:4])"
    w6 = "(" + "^".join(f"ip6[{i}:4]" for i in range(8, 40, 4)) + ")"
    h4 = f"({w4} ^ ({w4} >> 8) ^ ({w4} >> 16) ^ ({w4} >> 24))"  # fold every address byte in
    h6 = f"({w6} ^ ({w6} >> 8) ^ ({w6} >> 16) ^ ({w6} >> 24))"
    def share(test: str) -> str:
        core = f"(ip and ({h4} % {workers} {test})) or (ip6 and ({h6} % {workers} {test}))"
        return f"({core}) or (vlan and ({core}))"

    if index == 0:
        # Worker 0 takes everything no other worker matches (QinQ, PPPoE, MPLS...): nothing is lost.
        return f"not ({share('!= 0')})"
    return share(f"= {index}")
