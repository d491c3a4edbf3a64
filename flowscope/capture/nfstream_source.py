"""nfstream (nDPI) metering of capture files and live interfaces.

nfstream frees nDPI's per-flow state when a flow expires without exposing the risk bitmap, so
`enable_flow_risk()` wraps `NFlow.expire` to read `ndpi_flow.risk` just before that happens and
keeps it in the flow's (otherwise unused) `udps` slot. This runs inside nfstream's meter process.
"""

from __future__ import annotations

from typing import Any, Iterator

from nfstream import NFStreamer
from nfstream.flow import NFlow

ACCOUNTING_LINK_LAYER = 0  # bytes as on the wire, as ntopng and ndpiReader count them
_patched = False


def enable_flow_risk() -> None:
    global _patched
    if _patched:
        return
    original = NFlow.expire

    def expire(self, udps, sync, n_dissections, statistics, splt, ffi, lib, dissector):
        risk = 0
        try:
            nd = self._C.ndpi_flow
            if nd != ffi.NULL:
                risk = int(nd.risk)
        except Exception:
            risk = 0
        out = original(self, udps, sync, n_dissections, statistics, splt, ffi, lib, dissector)
        if not sync:
            self.udps = risk
        return out

    NFlow.expire = expire
    _patched = True


def flow_risk(f: Any) -> int:
    value = getattr(f, "udps", 0)
    return value if isinstance(value, int) else 0


def stream(source: str, *, bpf: str | None = None, idle_timeout: int, active_timeout: int,
           n_meters: int = 1) -> Iterator[Any]:
    enable_flow_risk()
    streamer = NFStreamer(
        source=source,
        bpf_filter=bpf,
        idle_timeout=idle_timeout,
        active_timeout=active_timeout,
        accounting_mode=ACCOUNTING_LINK_LAYER,
        n_dissections=20,
        statistical_analysis=True,  # per-direction TCP flag counts (SRC2DST_TCP_FLAGS); measured at no cost
        n_meters=n_meters,
        decode_tunnels=True,
    )
    yield from streamer


def split_filter(workers: int, index: int) -> str | None:
    """BPF that keeps one worker's share: a symmetric XOR of address bytes keeps each flow whole.

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
