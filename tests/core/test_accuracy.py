"""Stored numbers against reference tools on the whole real corpus, ingested once with two
workers: flows against nDPI's own reader output (pcap-expected/*.out), interface totals against
capinfos, per-minute interface volumes against tshark."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter

import pytest

from fsharness import CORPUS, PCAPS, cli, unavailable

LINE = re.compile(
    r"^\s+\d+\s+(?P<l4>TCP|UDP)\s+(?P<a>\S+):(?P<ap>\d+)\s+(?P<dir><->|->)\s+(?P<b>\S+):(?P<bp>\d+)\s+"
    r"(?:\[VLAN: (?P<vlan>\d+)\])?.*?\[proto: [\d.]+/(?P<proto>[^\]]+)\].*?"
    r"\[(?P<p1>\d+) pkts/(?P<b1>\d+) bytes (?:<->|->) (?P<p2>\d+) pkts/(?P<b2>\d+) bytes\]")


SCORE = re.compile(r"\[Risk Score: (\d+)\]")


def reference_flows(out_file) -> list[dict]:
    flows = []
    for line in out_file.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if not m:
            continue
        flows.append({
            "l4": 6 if m["l4"] == "TCP" else 17, "a": m["a"].strip("[]"), "ap": int(m["ap"]),
            "b": m["b"].strip("[]"), "bp": int(m["bp"]), "vlan": int(m["vlan"] or 0), "proto": m["proto"],
            "packets": int(m["p1"]) + int(m["p2"]), "bytes": int(m["b1"]) + int(m["b2"]),
            "score": int(s.group(1)) if (s := SCORE.search(line)) else 0,
        })
    return flows


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    if not PCAPS.exists():
        unavailable("../shared/corpus absent")
    captures = sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap")
                      and (CORPUS / "pcap-expected" / (p.name + ".out")).exists())
    data = tmp_path_factory.mktemp("accuracy")
    res = cli(data, "ingest", "--workers", "2", *map(str, captures), check=False)
    # Corrupt captures are part of the corpus: they may fail, the others must be stored
    assert "flows" in res.stdout, res.stderr
    from flowscope.store import Store

    store = Store(str(data))
    yield store, captures
    store.close()


def test_flows_match_ndpi_reader(ingested):
    store, captures = ingested
    rows = store.query(
        "SELECT PROTOCOL, SRC_IP, IP_SRC_PORT, DST_IP, IP_DST_PORT, VLAN_ID, PACKETS, TOTAL_BYTES, "
        "L7_PROTO_NAME, SCORE FROM flows").rows
    assert rows, "nothing stored"
    # index stored flows by L4 protocol and unordered endpoints
    stored: dict[tuple, list] = {}
    for l4, sip, sp, dip, dp, vlan, pk, by, app, score in rows:
        key = (l4, frozenset([(sip, sp), (dip, dp)]))
        stored.setdefault(key, []).append((pk, by, app, score))
    from flowscope.flows.ndpi_catalog import catalog

    cat = catalog()
    # The reference was made by a different nDPI build with the test suite's custom protocol files:
    # names that build knows and ours does not (renamed, removed, or custom) cannot be compared.
    def comparable(cap, name):
        return not cap.startswith("custom_") and all(cat.by_name(part) for part in name.split("."))

    linktypes = _linktypes(captures)
    other_counted = other_matched = 0
    other_seen: set[str] = set()
    matched = counted = proto_ok = proto_counted = master_ok = score_ok = risky = risky_ok = risky_seen = 0
    misses = []
    for cap in captures:
        for ref in reference_flows(CORPUS / "pcap-expected" / (cap.name + ".out")):
            key = (ref["l4"], frozenset([(ref["a"], ref["ap"]), (ref["b"], ref["bp"])]))
            cands = stored.get(key)
            if not cands:
                continue  # flows nfstream never meters (e.g. tunnels decoded differently)
            counted += 1
            exact = [c for c in cands if c[0] == ref["packets"] and c[1] == ref["bytes"]]
            if linktypes[cap.name] != "ether":
                other_counted += 1
                other_matched += bool(exact)
                other_seen.add(cap.name)
            if exact:
                matched += 1
                same_score = any(c[3] == ref["score"] for c in exact)
                score_ok += same_score
                risky += ref["score"] > 0
                risky_ok += ref["score"] > 0 and same_score
                risky_seen += ref["score"] > 0 and any(c[3] > 0 for c in exact)
                if not comparable(cap.name, ref["proto"]):
                    continue
                proto_counted += 1
                if any(c[2].split(".")[0] == ref["proto"].split(".")[0] for c in exact):
                    master_ok += 1
                if any(c[2] == ref["proto"] for c in exact):
                    proto_ok += 1
                else:
                    misses.append((cap.name, ref["proto"], [c[2] for c in exact]))
            else:
                misses.append((cap.name, ref, cands[:3]))
    rate, proto_rate, master_rate = matched / counted, proto_ok / proto_counted, master_ok / proto_counted
    print(f"\nreference flows found: {counted}; exact packets+bytes: {matched} ({rate:.2%}); "
          f"same application: {proto_ok} of {proto_counted} comparable ({proto_rate:.2%}); "
          f"same master protocol: {master_ok} ({master_rate:.2%}); same risk score: {score_ok} "
          f"({score_ok / matched:.2%}), of the {risky} with a reference risk: {risky_ok} ({risky_ok / risky:.2%}) "
          f"same score, {risky_seen} ({risky_seen / risky:.2%}) with a risk found")
    print(f"non-Ethernet captures: {len(other_seen)} with reference flows, {other_counted} flows, "
          f"{other_matched} exact ({other_matched / other_counted:.2%})")
    for m in misses[:15]:
        print("  miss:", m)
    assert counted > 1000
    assert rate >= 0.995
    # every capture of another link type (raw IP, Linux SLL, loopback, Cisco HDLC) is read and agrees
    with_reference = {c.name for c in captures if linktypes[c.name] != "ether"
                      and reference_flows(CORPUS / "pcap-expected" / (c.name + ".out"))}
    assert other_seen == with_reference
    assert other_matched / other_counted >= 0.995
    # Exact sub-application names drift between nDPI builds (Microsoft vs Microsoft365, Google vs
    # GoogleCloud); the protocol itself must agree.
    assert master_rate >= 0.99
    assert proto_rate >= 0.97
    # nDPI risks are read from nfstream's meter: a flow the reference finds risky must carry risks
    # here too. Exact scores differ more (31 %): the reference's nDPI build and reader set other risk
    # bits (e.g. Unidirectional Traffic, Known Proto on Non Std Port are decided differently).
    assert risky_seen / risky >= 0.85


def _linktypes(captures) -> dict[str, str]:
    out = subprocess.run(["capinfos", "-T", "-r", "-E", *map(str, captures)], capture_output=True, text=True).stdout
    return {line.split("\t")[0].rsplit("/", 1)[-1]: line.split("\t")[1] for line in out.splitlines() if "\t" in line}


def test_interface_totals_equal_capinfos(ingested):
    """Every frame counts (ARP, STP, EAPOL, undecodable...), per capture and on the interface."""
    store, captures = ingested
    out = subprocess.run(["capinfos", "-T", "-r", "-c", "-d", *map(str, captures)], capture_output=True,
                         text=True).stdout
    reference = {}
    for line in out.splitlines():
        name, packets, size = line.split("\t")[:3]
        reference[name] = (int(packets), int(size))
    stored = {src: (int(p), int(b)) for src, p, b in store.query(
        "SELECT SOURCE, sum(packets), sum(bytes) FROM frame_counters GROUP BY SOURCE").rows}
    assert stored == {os.path.abspath(c): reference[str(c)] for c in captures}
    iface = [int(v) for v in store.query("SELECT sum(packets), sum(bytes) FROM ts_interface_1m").rows[0]]
    assert iface == [sum(p for p, _ in reference.values()), sum(b for _, b in reference.values())]
    non_ip = dict(store.query("SELECT ETHER_TYPE_NAME, sum(packets) FROM frame_counters WHERE NOT IS_IP "
                              "GROUP BY ETHER_TYPE_NAME").rows)
    print("\nnon-IP frames by EtherType:", non_ip)
    assert int(non_ip.get("ARP", 0)) > 0


def test_minutes_follow_packets(ingested):
    """Per-minute interface bytes = the bytes of the frames time-stamped in each minute (tshark)."""
    store, captures = ingested
    reference: Counter = Counter()
    corrupt: list = []
    for cap in captures:
        res = subprocess.run(["tshark", "-n", "-r", str(cap), "-T", "fields", "-e", "frame.time_epoch",
                              "-e", "frame.len"], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            t, _, n = line.partition("\t")
            if not (t and n):
                continue
            if float(t) < 0 or int(n) >= 2**31 - 1:
                corrupt.append((cap.name, t, n))  # a fuzzed record tshark reads as signed/clamped
                continue
            reference[int(float(t) // 60) * 60] += int(n)
    stored = {int(t): int(b) for t, b in store.query(
        "SELECT toUnixTimestamp(time), sum(bytes) FROM ts_interface_1m GROUP BY time").rows}
    off = {m: (stored.get(m, 0), b) for m, b in reference.items() if abs(stored.get(m, 0) - b) > 0.01 * b}
    print(f"\n{len(reference)} minutes, {len(off)} more than 1 % off; records tshark cannot place: {corrupt}")
    assert not off, sorted(off.items())[:10]
    assert sum(stored[m] for m in reference) == sum(reference.values())
    assert len(corrupt) <= 1
