"""NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): templates, options templates, data sets.

Templates are kept per (exporter, observation domain / source id); data sets that arrive
before their template are parked (bounded) and decoded when it arrives. Options data
teaches the exporter its samplers, interface names and application names.
"""

from __future__ import annotations

import struct
import time

from flowscope.collector.columnar import Pending, Sets, plan_for
from flowscope.collector.exporters import Exporter
from flowscope.collector.mapping import Context, build_row, is_flow_record
from flowscope.collector.netflow_v5 import DecodeError
from flowscope.collector.templates import Template

V9_HEADER = struct.Struct("!HHIIII")      # version, count, sys uptime, unix secs, sequence, source id
IPFIX_HEADER = struct.Struct("!HHIII")    # version, length, export time, sequence, domain
SET_HEADER = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
MAX_FIELDS = 512


def _parse_template_set(ex: Exporter, domain: int, body: bytes, *, v9: bool, options: bool) -> int:
    """Learn the templates of a (options) template set; returns how many were read."""
    tc = ex.templates
    pos, end, n = 0, len(body), 0
    while end - pos >= 4:
        tid, count = SET_HEADER.unpack_from(body, pos)
        pos += 4
        if not v9 and count == 0:               # IPFIX template withdrawal
            if tid == (3 if options else 2):
                tc.withdraw(domain, tid, all_of_kind=options)
            else:
                tc.withdraw(domain, tid)
            continue
        if tid < 256:
            break                               # padding or garbage
        scope_count = 0
        if options:
            if v9:
                if end - pos < 2:
                    break
                scope_len = count
                (opt_len,) = _U16.unpack_from(body, pos)
                pos += 2
                scope_count = scope_len // 4
                count = scope_count + opt_len // 4
            else:
                if end - pos < 2:
                    break
                (scope_count,) = _U16.unpack_from(body, pos)
                pos += 2
                if scope_count == 0 or scope_count > count:
                    break
        if count == 0 or count > MAX_FIELDS:
            break
        fields = []
        ok = True
        for _ in range(count):
            if end - pos < 4:
                ok = False
                break
            ftype, flen = SET_HEADER.unpack_from(body, pos)
            pos += 4
            pen = 0
            if not v9 and ftype & 0x8000:
                if end - pos < 4:
                    ok = False
                    break
                (pen,) = _U32.unpack_from(body, pos)
                pos += 4
                ftype &= 0x7FFF
            fields.append((ftype, flen, pen))
        if not ok:
            break
        tpl = Template(tid, tuple(fields), options=options, scope_count=scope_count, v9=v9)
        tc.add(domain, tpl)
        n += 1
    return n


def _data_set(ex: Exporter, tpl: Template, body: bytes, ctx: Context, rows: list, pending: Pending | None) -> int:
    plan = plan_for(tpl)
    if plan is not None:  # the whole set as columns
        if not plan.flows:
            return len(body) // tpl.record_len
        if pending is None:  # decoded now, into rows
            sets = Sets(plan, tpl.record_len)
            n = sets.add(body, ctx)
            if n:
                rows.extend(sets.block().tuples())
        else:
            n = pending.add(plan, tpl.record_len, body, ctx)
        ex.records += n
        return n
    recs = tpl.decode(body)
    if tpl.options:
        for r in recs:
            ex.learn_options(r, ctx.domain)
        return len(recs)
    n = 0
    for r in recs:
        if is_flow_record(r):
            rows.append(build_row(r, ctx))
            n += 1
    ex.records += n
    return len(recs)


def decode(data: bytes, ex: Exporter, src_port: int, listener_id: int, now: float | None = None,
           pending: Pending | None = None) -> list[tuple]:
    """Flows rows of a datagram; with `pending`, data sets of fixed-length templates go there, to
    become columns later (flowscope.collector.columnar), instead of into the rows."""
    now = time.time() if now is None else now
    if len(data) < 16:
        raise DecodeError("datagram shorter than a NetFlow v9 / IPFIX header")
    (version,) = _U16.unpack_from(data)
    if version == 9:
        if len(data) < V9_HEADER.size:
            raise DecodeError("datagram shorter than a NetFlow v9 header")
        _, count, uptime, secs, seq, domain = V9_HEADER.unpack_from(data)
        pos, end = V9_HEADER.size, len(data)
        v9 = True
        ctx = Context(ex.address, "netflow9", listener_id, secs * 1000, uptime_ms=uptime, domain=domain)
        tpl_ids, opt_ids = (0,), (1,)
    elif version == 10:
        _, length, secs, seq, domain = IPFIX_HEADER.unpack_from(data)
        if length < IPFIX_HEADER.size or length > len(data):
            raise DecodeError(f"IPFIX message length {length} does not match the datagram ({len(data)})")
        pos, end = IPFIX_HEADER.size, length
        v9 = False
        ctx = Context(ex.address, "ipfix", listener_id, secs * 1000, sys_init_ms=ex.sys_init_ms.get(domain),
                      domain=domain)
        tpl_ids, opt_ids = (2,), (3,)
    else:
        raise DecodeError(f"unknown NetFlow version {version}")
    ex.version = version
    ex.domains.add(domain)
    ctx.samplers = ex.samplers
    ctx.app_names = ex.app_names
    ctx.sampling = ex.domain_sampling.get(domain, 1)
    rows: list[tuple] = []
    data_records = 0
    unknown_sets = False
    sets = 0
    tc = ex.templates
    while end - pos >= 4:
        set_id, set_len = SET_HEADER.unpack_from(data, pos)
        if set_len < 4 or pos + set_len > end:
            if set_id == 0 and set_len == 0:
                break                           # zero fill after the last set
            ex.undecodable += 1
            break
        body = data[pos + 4:pos + set_len]
        pos += set_len
        sets += 1
        if set_id in tpl_ids or set_id in opt_ids:
            options = set_id in opt_ids
            _parse_template_set(ex, domain, body, v9=v9, options=options)
            if tc.pending_count:
                for key in [k for k in tc.pending if k[0] == domain and k in tc.templates]:
                    tpl = tc.templates[key]
                    for _, pbody, pctx in tc.take(*key):
                        pctx.sys_init_ms = pctx.sys_init_ms or ex.sys_init_ms.get(domain)
                        _data_set(ex, tpl, pbody, pctx, rows, pending)
        elif set_id >= 256:
            tpl = tc.get(domain, set_id)
            if tpl is None:
                tc.park(domain, set_id, body, ctx, now)
                unknown_sets = True
            else:
                data_records += _data_set(ex, tpl, body, ctx, rows, pending)
        # set ids 2..255 (v9) or 4..255 (IPFIX) are reserved: skipped
    if sets == 0:
        raise DecodeError("no flow set could be read")
    if v9:
        ex.sequence(src_port, domain).check(seq, 1)
    else:
        ex.sequence(src_port, domain).check(seq, None if unknown_sets else data_records)
    return rows
