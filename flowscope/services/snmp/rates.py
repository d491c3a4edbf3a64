"""Per-interface rates from two successive counter samples.

SNMP counters only ever go up, then wrap: a Counter32 at 2**32, a Counter64 at 2**64 (which
no real interface reaches). A counter that goes *down* is either a wrap (32-bit, and only if the
implied traffic fits the link) or a reset: the agent restarted, the interface was re-created or
its counters were cleared. A reset must never produce a negative or an absurdly large rate, so
such an interval yields no rate (None) for that counter.

Agent restarts are detected from sysUpTime: it goes back (and is not a plausible 497-day wrap of
its own 32-bit tick counter), or it is shorter than the time since the previous sample (the agent
came up after the previous poll).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

C32 = 2 ** 32
C64 = 2 ** 64

#: smallest Ethernet frame, used to bound plausible packet/error counts on a link
MIN_FRAME_BYTES = 64
#: a wrap is believed only if the traffic it implies is at most this times the link speed
WRAP_SLACK = 1.5


@dataclass
class CounterSample:
    """One poll's view of one interface."""
    time: float                      # wall clock of the poll, seconds since the epoch
    uptime_ticks: Optional[int]      # sysUpTime in hundredths of a second
    speed_bps: int = 0               # link speed in bits/s, 0 when unknown
    octet_bits: int = 32             # 64 when in/out octets came from ifHCIn/OutOctets
    in_octets: Optional[int] = None
    out_octets: Optional[int] = None
    in_errors: Optional[int] = None
    out_errors: Optional[int] = None
    in_discards: Optional[int] = None
    out_discards: Optional[int] = None
    discontinuity: Optional[int] = None   # ifCounterDiscontinuityTime, when the agent has it
    in_pkts: Optional[int] = None          # unicast packets, same width as the octet counters
    out_pkts: Optional[int] = None


@dataclass
class Rates:
    interval_s: float
    in_bps: Optional[float] = None
    out_bps: Optional[float] = None
    in_util: Optional[float] = None      # percent of speed_bps
    out_util: Optional[float] = None
    in_pps: Optional[float] = None
    out_pps: Optional[float] = None
    in_errors_ps: Optional[float] = None
    out_errors_ps: Optional[float] = None
    in_discards_ps: Optional[float] = None
    out_discards_ps: Optional[float] = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "in_bps", "out_bps", "in_util", "out_util", "in_pps", "out_pps", "in_errors_ps", "out_errors_ps",
            "in_discards_ps", "out_discards_ps")}


def counter_delta(prev: Optional[int], cur: Optional[int], bits: int,
                  max_delta: Optional[float] = None) -> Optional[int]:
    """Increase of a counter between two readings, or None when it cannot be trusted.

    - cur >= prev: the plain difference.
    - cur < prev on a 32-bit counter: one wrap, cur + 2**32 - prev, provided it is at most
      max_delta (the most the link could have carried); otherwise a reset -> None.
    - cur < prev on a 64-bit counter: a reset (a 64-bit counter does not wrap) -> None.
    """
    if prev is None or cur is None or prev < 0 or cur < 0:
        return None
    if cur >= prev:
        return cur - prev
    if bits != 32:
        return None
    wrapped = cur + C32 - prev
    if max_delta is not None and wrapped > max_delta:
        return None
    return wrapped


def agent_restarted(prev_ticks: Optional[int], cur_ticks: Optional[int], elapsed_s: float) -> bool:
    """True when sysUpTime shows the agent restarted between two samples."""
    if prev_ticks is None or cur_ticks is None:
        return False
    tol = max(5.0, 0.25 * elapsed_s)
    if cur_ticks < prev_ticks:
        wrapped_s = (cur_ticks + C32 - prev_ticks) / 100.0
        return abs(wrapped_s - elapsed_s) > tol   # not sysUpTime's own 497-day wrap
    # up for less time than has passed since the previous poll: it came up in between
    return cur_ticks / 100.0 + tol < elapsed_s


def compute_rates(prev: Optional[CounterSample], cur: CounterSample) -> Optional[Rates]:
    """Rates over the interval prev -> cur; None when there is no usable previous sample."""
    if prev is None:
        return None
    elapsed = cur.time - prev.time
    if elapsed <= 0:
        return None
    out = Rates(interval_s=elapsed)
    if agent_restarted(prev.uptime_ticks, cur.uptime_ticks, elapsed):
        out.notes.append("agent restarted: counters reset, no rate for this interval")
        return out
    if (prev.discontinuity is not None and cur.discontinuity is not None
            and prev.discontinuity != cur.discontinuity):
        out.notes.append("counter discontinuity reported by the agent: no rate for this interval")
        return out
    speed = cur.speed_bps or prev.speed_bps or 0
    max_octets = speed / 8.0 * elapsed * WRAP_SLACK if speed else None
    max_frames = speed / 8.0 / MIN_FRAME_BYTES * elapsed * WRAP_SLACK if speed else None

    if prev.octet_bits == cur.octet_bits:
        d_in = counter_delta(prev.in_octets, cur.in_octets, cur.octet_bits, max_octets)
        d_out = counter_delta(prev.out_octets, cur.out_octets, cur.octet_bits, max_octets)
        if d_in is not None:
            out.in_bps = d_in * 8.0 / elapsed
        if d_out is not None:
            out.out_bps = d_out * 8.0 / elapsed
        if (d_in is None and prev.in_octets is not None) or (d_out is None and prev.out_octets is not None):
            out.notes.append("octet counter went back (reset): no byte rate for this interval")
        for name in ("in_pkts", "out_pkts"):
            d = counter_delta(getattr(prev, name), getattr(cur, name), cur.octet_bits, max_frames)
            if d is not None:
                setattr(out, name.replace("pkts", "pps"), d / elapsed)
    else:
        out.notes.append("counter width changed (32/64-bit): no byte rate for this interval")
    if speed:
        if out.in_bps is not None:
            out.in_util = out.in_bps * 100.0 / speed
        if out.out_bps is not None:
            out.out_util = out.out_bps * 100.0 / speed
    for name in ("in_errors", "out_errors", "in_discards", "out_discards"):
        d = counter_delta(getattr(prev, name), getattr(cur, name), 32, max_frames)
        if d is not None:
            setattr(out, name + "_ps", d / elapsed)
    return out
