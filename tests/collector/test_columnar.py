"""Data sets decoded as whole columns give exactly the rows the record-by-record path gives: over
the real exports of the corpus, mutations of them, and random templates of every field the
columns path reads (odd lengths, extreme values, NetFlow v9 uptimes, IPFIX reverse and vendor fields)."""

from __future__ import annotations

import random
import struct

import pytest
from collector_harness import mutate, need_exports

from flowscope.collector import netflow_v9_ipfix
from flowscope.collector.columnar import Pending
from flowscope.collector.core import Collector

# (field id, enterprise number, lengths): every field the columns path reads, and one it skips
FIELDS = [(1, 0, (4, 8, 3, 6)), (2, 0, (4, 8, 5)), (4, 0, (1, 2)), (6, 0, (1, 2)), (7, 0, (2,)), (11, 0, (2,)),
          (8, 0, (4, 3)), (12, 0, (4,)), (10, 0, (2, 4)), (14, 0, (4,)), (15, 0, (4,)), (18, 0, (4,)),
          (16, 0, (2, 4)), (17, 0, (4,)), (21, 0, (4,)), (22, 0, (4,)), (23, 0, (8,)), (24, 0, (8,)), (34, 0, (4, 2)),
          (50, 0, (4,)), (56, 0, (6,)), (57, 0, (6,)), (80, 0, (6,)), (58, 0, (2,)), (243, 0, (2,)), (85, 0, (8,)),
          (86, 0, (8,)), (150, 0, (4,)), (151, 0, (4,)), (152, 0, (8,)), (153, 0, (8,)), (231, 0, (8,)),
          (232, 0, (8,)), (298, 0, (8,)), (299, 0, (8,)), (1, 29305, (8,)), (2, 29305, (4,)), (6, 29305, (1,)),
          (118, 35632, (2,)), (999, 0, (4,)), (27, 0, (16,)), (28, 0, (16, 4)), (62, 0, (16,)), (63, 0, (16,)),
          (323, 0, (8,)), (48, 0, (1, 2))]


def _rows(datagrams: list[tuple[bytes, str]], columns: bool, monkeypatch, grouped: bool = False
          ) -> tuple[list[tuple], int]:
    """Rows of the datagrams (FLOW_ID aside), and how many data sets took the columns path. `grouped`:
    sets wait and become columns together, many datagrams at once, as in the running collector."""
    plan_for = netflow_v9_ipfix.plan_for
    used = []

    def counted(tpl):
        plan = plan_for(tpl)
        used.append(plan is not None)
        return plan

    with monkeypatch.context() as m:
        m.setattr(netflow_v9_ipfix, "plan_for", counted if columns else lambda tpl: None)
        c = Collector()
        pending = Pending() if grouped else None
        out = []
        for i, (data, addr) in enumerate(datagrams):
            rows, _ = c.handle(data, (addr, 2055), now=1_700_000_000.0, pending=pending)
            if grouped and i % 97 == 96 or i == len(datagrams) - 1:
                rows += [t for b in (pending.blocks() if grouped else []) for t in b.tuples()]
            out += [r[1:] for r in rows]  # FLOW_ID aside: new numbers each run
        assert c.errors == 0
        return out, sum(used)


def _same(datagrams, monkeypatch, min_sets: int) -> int:
    """Rows both ways are equal; at least `min_sets` data sets took the columns path."""
    (fast, sets), (slow, _) = _rows(datagrams, True, monkeypatch), _rows(datagrams, False, monkeypatch)
    assert sets >= min_sets
    grouped, _ = _rows(datagrams, True, monkeypatch, grouped=True)
    assert sorted(grouped) == sorted(slow)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a == b
    return len(fast)


def _value(rng: random.Random, length: int) -> bytes:
    top = (1 << (8 * length)) - 1
    return rng.choice([0, 1, top, rng.randrange(top + 1), rng.randrange(1 << min(8 * length, 20))]).to_bytes(length, "big")


def _random_template(rng: random.Random, v9: bool) -> list[tuple[int, int, int]]:
    chosen = rng.sample(FIELDS, rng.randint(3, 14))
    return [(f, pen, rng.choice(lengths)) for f, pen, lengths in chosen if not (v9 and pen and f != 118)]


def _sampler_options(rng: random.Random, v9: bool) -> bytes:
    """An options template and its data: the sampling rates of samplers 0..3 (they change over time)."""
    if v9:
        tpl = struct.pack("!HHHHHHHHH", 600, 4, 8, 1, 4, 48, 1, 34, 4)
        tset = struct.pack("!HH", 1, 4 + len(tpl)) + tpl
    else:
        tpl = struct.pack("!HHHHHHHHH", 600, 3, 1, 149, 4, 48, 1, 50, 4)
        tset = struct.pack("!HH", 3, 4 + len(tpl)) + tpl
    recs = b"".join(struct.pack("!IBI", 7, sid, rng.choice((1, 10, 100, 4096))) for sid in range(4))
    return tset + struct.pack("!HH", 600, 4 + len(recs)) + recs


def _random_datagram(rng: random.Random, v9: bool, tid: int, fields: list, seq: int) -> bytes:
    if v9:
        fields = [(57590 if pen else f, 0, n) for f, pen, n in fields]
    spec = b"".join(struct.pack("!HH", f | (0x8000 if pen else 0), n) + (struct.pack("!I", pen) if pen else b"")
                    for f, pen, n in fields)
    tpl = struct.pack("!HH", tid, len(fields)) + spec
    recs = b"".join(b"".join(_value(rng, n) for _f, _p, n in fields) for _ in range(rng.randint(1, 6)))
    pad = b"\x00" * rng.choice((0, 0, 3))
    tset = struct.pack("!HH", 0 if v9 else 2, 4 + len(tpl)) + tpl
    dset = struct.pack("!HH", tid, 4 + len(recs) + len(pad)) + recs + pad
    body = (_sampler_options(rng, v9) if rng.random() < 0.2 else b"") + tset + dset
    if v9:
        return struct.pack("!HHIIII", 9, 2, rng.randrange(1 << 32), 1_700_000_000, seq, 7) + body
    return struct.pack("!HHIII", 10, 16 + len(body), 1_700_000_000 - rng.randrange(100), seq, 7) + body


def test_corpus_exports_same_rows_both_ways(monkeypatch):
    d = need_exports()
    files = sorted(p for p in d.iterdir() if p.suffix == ".dat")
    assert _same([(p.read_bytes(), p.name) for p in files], monkeypatch, 10) > 150


def test_mutated_exports_same_rows_both_ways(monkeypatch):
    d = need_exports()
    seeds = [(p.read_bytes(), p.name) for p in sorted(d.iterdir()) if p.suffix == ".dat"]
    rng = random.Random(5)
    datagrams = list(seeds)
    for _ in range(3000):
        data, name = rng.choice(seeds)
        datagrams.append((mutate(rng, data), name))
    assert _same(datagrams, monkeypatch, 150) > 200


@pytest.mark.parametrize("v9", [False, True])
def test_random_templates_same_rows_both_ways(v9, monkeypatch):
    rng = random.Random(11 + v9)
    templates = [_random_template(rng, v9) for _ in range(40)]  # each sent again and again, as exporters do
    datagrams = []
    for i in range(1500):
        tid = rng.randrange(len(templates))
        datagrams.append((_random_datagram(rng, v9, 256 + tid, templates[tid], i), f"192.0.2.{tid % 3}"))
    assert _same(datagrams, monkeypatch, 1000) > 1500
