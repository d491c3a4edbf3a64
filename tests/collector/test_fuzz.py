"""10k mutated datagrams through the running collector: it stays up and keeps decoding good ones."""

from __future__ import annotations

import random
import socket

from flowscope.collector.core import Collector
from collector_harness import mutate, need_exports


def test_fuzz_10k_mutations_in_process():
    d = need_exports()
    seeds = [p.read_bytes() for p in sorted(d.iterdir()) if p.suffix == ".dat"]
    rng = random.Random(1234)
    c = Collector()
    for i in range(10_000):
        c.handle(mutate(rng, rng.choice(seeds)), (f"10.{i % 7}.0.1", 2055))
    assert c.errors == 0, "a decoder raised on malformed input"
    # still decodes a good datagram afterwards, from a fresh exporter
    rows, _ = c.handle((d / "netflow5_test_juniper_mx80.dat").read_bytes(), ("192.0.2.99", 1))
    assert len(rows) == 29


def test_fuzz_over_udp_collector_stays_up(collector, store):
    d = need_exports()
    seeds = [p.read_bytes() for p in sorted(d.iterdir()) if p.suffix == ".dat"]
    rng = random.Random(99)
    port = collector.port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(10_000):
            s.sendto(mutate(rng, rng.choice(seeds)), ("127.0.0.1", port))
            if i % 500 == 0:
                s.sendto((d / "netflow5_test_juniper_mx80.dat").read_bytes(), ("127.0.0.1", port))
    collector.flush()
    c = collector.fc.collector
    assert c.errors == 0
    assert c.datagrams >= 10_000
    # the 20 good v5 datagrams interleaved with garbage were all stored: 29 rows each
    n = store.query("SELECT count() FROM flows WHERE SOURCE_TYPE = 'netflow5' AND NEXT_HOP = '192.168.0.2' "
                    "AND IPV4_SRC_ADDR = IPv4StringToNum('10.0.0.1') AND IP_SRC_PORT = 443 AND "
                    "IP_DST_PORT = 61608").scalar()
    assert int(n) >= 20
    assert collector.fc.writer.failed_rows == 0
