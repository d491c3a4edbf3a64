"""Fixed-length NetFlow v9 / IPFIX data sets decoded as whole columns (numpy), not record by record.

Which fields a template carries decides every choice `mapping.build_row` makes per record (IPv4
or IPv6, which counter is forward, which timestamp), so for most templates those choices are made
once per template and the values are computed for the whole set at once: a `Block` of flows
columns (addresses as text: each distinct one converted once). Templates needing a per-record
lookup (application ids and names, NTP or delta timestamps) keep
the record path; a test checks both paths give the same rows.
"""

from __future__ import annotations

import socket
from typing import Any

import numpy as np

from flowscope.collector import mapping
from flowscope.collector.mapping import (
    COL,
    COLUMNS,
    MAX_MS,
    U32,
    U64,
    Context,
    fmt_ms,
    is_flow_record,
)

#: record keys that send a template down the record path
RECORD_PATH = frozenset({"app_id", "l7_name", "first_us", "last_us",
                         "first_ns", "last_ns", "first_delta_us", "last_delta_us"})
#: record keys build_row reads (every other field is skipped by its length)
USED = frozenset({"src4", "dst4", "bytes", "pkts", "init_bytes", "total_bytes", "rbytes", "resp_bytes", "out_bytes",
                  "init_pkts", "total_pkts", "rpkts", "resp_pkts", "out_pkts", "sampling", "sampler_interval", "proto",
                  "sport", "dport", "first_ms", "last_ms", "first_s", "last_s", "first_up", "last_up", "l7", "nh4",
                  "bgp_nh4", "vlan", "dot1q_vlan", "smac", "dmac", "dmac_post", "tcp_flags", "rtcp_flags", "src_as",
                  "dst_as", "in_if", "out_if", "src6", "dst6", "nh6", "bgp_nh6", "obs_ms", "sampler_id"})
_INT_KINDS = {"u", "mac", "ip4"}
_IP6 = frozenset({"src6", "dst6", "nh6", "bgp_nh6"})
_ZERO16 = np.zeros(1, dtype="V16")[0]
_STD = {1: ">u1", 2: ">u2", 4: ">u4", 8: ">u8"}
_U64 = np.uint64(U64)


class Block:
    """Flows rows of one data set as columns: numpy arrays, or one value shared by every row."""

    __slots__ = ("columns", "n")

    def __init__(self, n: int, columns: list[Any]):
        self.n = n
        self.columns = columns  # in mapping.COLUMNS order; FIRST_SEEN/LAST_SEEN as epoch ms

    @staticmethod
    def concat(blocks: list[Block]) -> Block:
        """One block of many (a column shared by all keeps one value)."""
        if len(blocks) == 1:
            return blocks[0]
        cols = []
        for parts in zip(*(b.columns for b in blocks)):
            first = parts[0]
            if not any(isinstance(p, np.ndarray) for p in parts) and all(p == first for p in parts):
                cols.append(first)
            else:
                cols.append(np.concatenate([p if isinstance(p, np.ndarray) else np.full(b.n, p, dtype=_dtype(p))
                                            for p, b in zip(parts, blocks)]))
        return Block(sum(b.n for b in blocks), cols)

    def tuples(self) -> list[tuple]:
        """The same rows as build_row makes them (text timestamps)."""
        cols = []
        for name, c in zip(COLUMNS, self.columns):
            if isinstance(c, np.ndarray):
                c = c.tolist()
                if name in ("FIRST_SEEN", "LAST_SEEN"):
                    c = [fmt_ms(v) for v in c]
            else:
                c = [c] * self.n
            cols.append(c)
        return list(zip(*cols))


def _dtype(value: Any) -> Any:
    return np.uint64 if isinstance(value, int) else object


class Plan:
    """How to read one template's records as columns."""

    __slots__ = ("dtype", "fields", "flows", "keys")

    def __init__(self, dtype: np.dtype, fields: list[tuple[str, int, int]], keys: frozenset[str]):
        self.dtype = dtype
        self.fields = fields  # (key, offset, length) of fields needing byte assembly (odd lengths)
        self.keys = keys
        self.flows = is_flow_record(keys)  # do its records make flows rows


def plan_for(tpl: Any) -> Plan | None:
    """The columnar plan of a template, or None when its records take the record path."""
    plan = tpl.plan
    if plan is None:
        plan = tpl.plan = _make_plan(tpl) or False
    return plan or None


def _make_plan(tpl: Any) -> Plan | None:
    if tpl.options or tpl.variable or tpl.record_len <= 0:
        return None
    names, formats, offsets, odd, seen = [], [], [], [], set()
    pos = 0
    for key, kind, length in tpl._var_fields:
        here, pos = pos, pos + length
        if key is None or key in seen:
            continue
        if key in RECORD_PATH:
            return None
        if key not in USED:
            continue
        if (kind == "ip4" and length != 4) or (kind == "ip6" and length != 16):
            continue  # an address of another length is skipped, as the record path does
        if kind not in _INT_KINDS and kind != "ip6" or kind != "ip6" and not 0 < length <= 8:
            return None
        if key == "sampler_id" and length not in _STD:
            return None  # looked up as each set arrives: read with the plan's dtype
        seen.add(key)
        if kind == "ip6":
            names.append(key)
            formats.append("V16")
            offsets.append(here)
        elif length in _STD:
            names.append(key)
            formats.append(_STD[length])
            offsets.append(here)
        else:
            odd.append((key, here, length))
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": tpl.record_len})
    return Plan(dtype, odd, frozenset(seen))


class Sets:
    """Data sets of one template waiting to become columns: many sets (and datagrams) are turned
    into columns at once, so numpy's cost per call is spread over thousands of records."""

    __slots__ = ("bodies", "counts", "ctxs", "plan", "rec_len", "sampler_rates")

    def __init__(self, plan: Plan, rec_len: int):
        self.plan = plan
        self.rec_len = rec_len
        self.bodies: list[bytes] = []
        self.counts: list[int] = []
        self.ctxs: list[Context] = []
        self.sampler_rates: list[np.ndarray] = []  # per record, looked up when its set arrives

    @property
    def n(self) -> int:
        return sum(self.counts)

    def add(self, body: bytes, ctx: Context) -> int:
        """Take a set body; returns its records (trailing padding ignored)."""
        n = len(body) // self.rec_len
        if n > 0:
            self.bodies.append(body[:n * self.rec_len] if len(body) != n * self.rec_len else body)
            self.counts.append(n)
            self.ctxs.append(ctx)
            if "sampler_id" in self.plan.keys:
                self.sampler_rates.append(_sampler_rates(self.plan, body, n, ctx))
        return max(n, 0)

    def block(self) -> Block:
        plan, n = self.plan, self.n
        data = self.bodies[0] if len(self.bodies) == 1 else b"".join(self.bodies)
        raw = np.frombuffer(data, dtype=plan.dtype, count=n)
        cols: dict[str, np.ndarray] = {k: raw[k].copy() if k in _IP6 else raw[k].astype(np.uint64)
                                       for k in plan.dtype.names}
        if plan.fields:
            b = np.frombuffer(data, dtype=np.uint8, count=n * self.rec_len).reshape(n, self.rec_len)
            for key, off, length in plan.fields:
                v = np.zeros(n, dtype=np.uint64)
                for i in range(length):
                    v = (v << np.uint64(8)) | b[:, off + i].astype(np.uint64)
                cols[key] = v
        if self.sampler_rates:
            cols["_sampler_rate"] = np.concatenate(self.sampler_rates)
        return Block(n, _columns(cols, n, _PerRecord(self.ctxs, self.counts)))


def _sampler_rates(plan: Plan, body: bytes, n: int, ctx: Context) -> np.ndarray:
    """The rate of each record's sampler as the exporter's options data told it so far (0: unknown),
    looked up once per distinct sampler id."""
    sid = np.frombuffer(body, dtype=plan.dtype, count=n)["sampler_id"]
    uniq, inv = np.unique(sid, return_inverse=True)
    rates = [ctx.samplers.get((ctx.domain, s)) or 0 for s in uniq.tolist()]
    return np.array(rates, dtype=np.uint64)[inv.reshape(-1)]


class _PerRecord:
    """The datagram context of every record: one value when all sets share it, else an array."""

    def __init__(self, ctxs: list[Context], counts: list[int]):
        def each(values: list, dtype: Any) -> Any:
            if all(v == values[0] for v in values):
                return values[0]
            return np.repeat(np.array(values, dtype=dtype), counts)

        self.export_ms = each([c.export_ms for c in ctxs], np.int64)
        self.uptime_ms = each([c.uptime_ms for c in ctxs], object)
        self.sys_init_ms = each([c.sys_init_ms for c in ctxs], object)
        self.sampling = each([c.sampling or 1 for c in ctxs], np.uint64)
        self.interface_id = each([c.interface_id for c in ctxs], np.uint64)
        self.probe_ip = each([c.probe_ip for c in ctxs], object)
        self.source_type = each([c.source_type for c in ctxs], object)


class Pending:
    """Data sets waiting to become columns, by template plan (the collector turns them into
    blocks when it hands a batch to the writer)."""

    def __init__(self) -> None:
        self.sets: dict[Plan, Sets] = {}
        self.rows = 0

    def add(self, plan: Plan, rec_len: int, body: bytes, ctx: Context) -> int:
        """Take a set body of a flows template; returns its records."""
        sets = self.sets.get(plan)
        if sets is None:
            sets = self.sets[plan] = Sets(plan, rec_len)
        n = sets.add(body, ctx)
        self.rows += n
        return n

    def blocks(self) -> list[Block]:
        out = [s.block() for s in self.sets.values() if s.counts]
        self.sets.clear()
        self.rows = 0
        return out


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.uint64)


def _direction(c: dict, forward: tuple[str, ...], out: str, reverse: tuple[str, ...], n: int):
    """mapping._directions for a whole set (which fields exist is known per template)."""
    o = c.get(out)
    f = next((c[k] for k in forward if k in c), None)
    if f is None:
        f, o = (o if o is not None else _zeros(n)), None
    r = next((c[k] for k in reverse if k in c), None)
    return f, r if r is not None else (o if o is not None else _zeros(n))


def _scale(v: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """v * rate, saturating at 2**64-1."""
    over = v > _U64 // rate
    return np.where(over, _U64, v * rate)


def _time(c: dict, ctx: _PerRecord, ms: str, s: str, up: str, n: int) -> np.ndarray:
    """mapping._time for a whole set, as int64 (-1: unknown)."""
    v = c.get(ms)
    if v is not None:
        return np.minimum(v, np.uint64(MAX_MS + 1)).astype(np.int64)
    v = c.get(s)
    if v is not None:
        return (np.minimum(v, np.uint64(MAX_MS // 1000 + 1)) * np.uint64(1000)).astype(np.int64)
    v = c.get(up)
    if v is None:
        return np.full(n, -1, dtype=np.int64)
    top = MAX_MS + 1  # bounded: sums stay in int64 and still clamp to MAX_MS
    out = np.full(n, -1, dtype=np.int64)
    init = _known(ctx.sys_init_ms, n)
    if init is not None:
        has, vals = init
        vals = np.minimum(vals, top) + np.minimum(v, np.uint64(top)).astype(np.int64)
        out = np.where(has, vals, out)
    up_ms = _known(ctx.uptime_ms, n)
    if up_ms is not None:  # the exporter's uptime wins over its init time, as in build_row
        has, vals = up_ms
        d = ((vals.astype(np.uint64) - v) & np.uint64(U32)).astype(np.int64)
        d = np.where(d >= 0x80000000, d - (1 << 32), d)
        out = np.where(has, ctx.export_ms - d, out)
    return out


def _known(value: Any, n: int) -> tuple[Any, np.ndarray] | None:
    """(which records have it, values as int64) of an optional context value; None: no record has it."""
    if isinstance(value, np.ndarray):
        has = np.array([x is not None for x in value.tolist()])
        return has, np.array([min(x, MAX_MS + 1) if x is not None else 0 for x in value.tolist()], dtype=np.int64)
    if value is None:
        return None
    return True, np.full(n, min(value, MAX_MS + 1), dtype=np.int64)


def _ip_text(v: np.ndarray) -> Any:
    """IPv4 (ints; '' for 0) or IPv6 (16 bytes) addresses as text, converting each distinct one once;
    one value when all are the same."""
    uniq, inv = np.unique(v, return_inverse=True)
    if v.dtype.kind == "V":
        texts = [socket.inet_ntop(socket.AF_INET6, bytes(u)) for u in uniq]
    else:
        texts = [socket.inet_ntoa(int(u).to_bytes(4, "big")) if u else "" for u in uniq.tolist()]
    return texts[0] if len(uniq) == 1 else np.array(texts, dtype=object)[inv.reshape(-1)]


def _next_hop(c: dict[str, np.ndarray], n: int) -> Any:
    """build_row's NEXT_HOP: the IPv4 next hop, else the IPv6 one (nh6, else bgp_nh6) unless all zero,
    else the BGP IPv4 next hop, else ''."""
    zero = _zeros(n)
    nh4 = c.get("nh4", zero)
    text = _ip_text(np.where(nh4 != 0, nh4, c["bgp_nh4"]) if "bgp_nh4" in c else nh4)
    v6 = c["nh6"] if "nh6" in c else c.get("bgp_nh6")
    if v6 is not None:
        use6 = (nh4 == 0) & (v6 != _ZERO16)
        if use6.any():
            text = np.array([text] * n, dtype=object) if not isinstance(text, np.ndarray) else text
            text[use6] = _ip_text(v6[use6])
    return text


_port_lut: dict[int, np.ndarray] = {}


def _guess_l7(proto: np.ndarray, sport: np.ndarray, dport: np.ndarray, n: int) -> np.ndarray:
    """mapping.guess_l7 for a whole set."""
    if not _port_lut:
        for (p, port), app in mapping.PORT_GUESS.items():
            _port_lut.setdefault(p, np.zeros(65536, dtype=np.uint64))[port] = app
    out = _zeros(n)
    for p, lut in _port_lut.items():
        m = proto == p
        if m.any():
            d, s = lut[dport[m]], lut[sport[m]]
            out[m] = np.where(d != 0, d, s)
    for p, app in mapping.PROTO_GUESS.items():
        out[proto == p] = app
    return out


def _columns(c: dict[str, np.ndarray], n: int, ctx: _PerRecord) -> list[Any]:
    """The flows columns of build_row, whole sets at a time."""
    zero = _zeros(n)
    g = c.get
    b, rb = _direction(c, mapping._BYTES_FORWARD, "out_bytes", mapping._BYTES_REVERSE, n)
    p, rp = _direction(c, mapping._PKTS_FORWARD, "out_pkts", mapping._PKTS_REVERSE, n)
    rate = g("sampling", zero)
    if "sampler_interval" in c:
        rate = np.where(rate != 0, rate, c["sampler_interval"])
    if "_sampler_rate" in c:
        rate = np.where(rate != 0, rate, c["_sampler_rate"])
    rate = np.where(rate != 0, rate, np.uint64(ctx.sampling) if not isinstance(ctx.sampling, np.ndarray)
                    else ctx.sampling)
    if (rate > 1).any():
        b, rb, p, rp = (_scale(x, rate) for x in (b, rb, p, rp))
    proto = g("proto", zero) & np.uint64(0xFF)
    sport = g("sport", zero) & np.uint64(0xFFFF)
    dport = g("dport", zero) & np.uint64(0xFFFF)
    first = _time(c, ctx, "first_ms", "first_s", "first_up", n)
    last = _time(c, ctx, "last_ms", "last_s", "last_up", n)
    fallback = ctx.export_ms
    if "obs_ms" in c:
        obs = np.minimum(c["obs_ms"], np.uint64(MAX_MS + 1)).astype(np.int64)
        fallback = np.where(obs != 0, obs, ctx.export_ms)
    first = np.where(first < 0, np.where(last >= 0, last, fallback), first)
    last = np.maximum(last, first)
    l7 = g("l7", zero)
    by_exporter = l7 != 0
    l7 = l7 & np.uint64(0xFFFF)
    if by_exporter.all():
        cls: Any = "exporter"
    else:
        l7 = np.where(by_exporter, l7, _guess_l7(proto, sport, dport, n))
        cls = np.where(by_exporter, "exporter", "port").astype(object) if by_exporter.any() else "port"
    vlan = c["vlan"] if "vlan" in c else g("dot1q_vlan", zero)
    dmac = g("dmac", zero)
    if "dmac_post" in c:
        dmac = np.where(dmac != 0, dmac, c["dmac_post"])
    total_p = p + rp
    total_b = b + rb
    mac = np.uint64(0xFFFFFFFFFFFF)
    v6 = "src6" in c and "src4" not in c  # build_row's choice, the same for every record of a template
    u32 = np.uint64(U32)
    out: list[Any] = [None] * len(COLUMNS)
    values = {
        "FLOW_ID": np.uint64(mapping.take_flow_ids(n)) + np.arange(n, dtype=np.uint64),
        "IP_PROTOCOL_VERSION": 6 if v6 else 4, "FIRST_SEEN": np.clip(first, 0, MAX_MS), "LAST_SEEN": np.clip(last, 0, MAX_MS),
        "VLAN_ID": vlan & np.uint64(0xFFF),
        "PACKETS": np.where(total_p < p, _U64, total_p), "TOTAL_BYTES": np.where(total_b < b, _U64, total_b),
        "SRC2DST_BYTES": b, "DST2SRC_BYTES": rb, "SRC2DST_PACKETS": p, "DST2SRC_PACKETS": rp,
        "PROTOCOL": proto, "IPV4_SRC_ADDR": 0 if v6 else g("src4", zero), "IPV4_DST_ADDR": 0 if v6 else g("dst4", zero),
        "IPV6_SRC_ADDR": _ip_text(c["src6"]) if v6 else "::",
        "IPV6_DST_ADDR": (_ip_text(c["dst6"]) if "dst6" in c else "::") if v6 else "::", "IP_SRC_PORT": sport, "IP_DST_PORT": dport, "L7_PROTO": l7,
        "SRC_MAC": g("smac", zero) & mac, "DST_MAC": dmac & mac, "INTERFACE_ID": ctx.interface_id,
        "SRC2DST_TCP_FLAGS": g("tcp_flags", zero) & np.uint64(0xFF),
        "DST2SRC_TCP_FLAGS": g("rtcp_flags", zero) & np.uint64(0xFF),
        "SRC_ASN": g("src_as", zero) & u32, "DST_ASN": g("dst_as", zero) & u32, "PROBE_IP": ctx.probe_ip,
        "INPUT_SNMP": g("in_if", zero) & u32, "OUTPUT_SNMP": g("out_if", zero) & u32,
        "NEXT_HOP": _next_hop(c, n), "SAMPLING_RATE": np.minimum(rate, u32), "SOURCE_TYPE": ctx.source_type,
        "CLASSIFIED_BY": cls,
    }
    for name, v in values.items():
        out[COL[name]] = v
    return out
