"""Per-host totals (flows history aggregated by host) against tshark's endpoint statistics.

tshark counts every frame once for its source (Tx) and once for its destination (Rx) with the
frame length; a flow gives its client SRC2DST as sent and DST2SRC as received (and the server the
reverse), with nfstream's link-layer byte counts. The two agree exactly on captures where every
frame is a TCP/UDP/ICMP packet of one flow. They differ (so these captures are not used) where
nfstream decodes tunnels (GTP, CAPWAP, 4in6/6in6: tshark also counts the outer addresses), drops
non-first IP fragments or malformed/truncated frames (fuzz captures), or ICMP errors that tshark
attributes to the quoted addresses as well.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from flowscope.capture.ingest import ingest_files
from flowscope.services.hosts import queries
from flowscope.store import Store
from fsharness import corpus_pcap, unavailable

# Chosen for variety: IPv4+IPv6 and mDNS/NetBIOS broadcast (wechat), DHCP (teams, signal),
# many remote hosts (teams, instagram), DoH, IPv6-only HTTP, QUIC with many hosts, pcapng.
CAPTURES = ["teams.pcap", "wechat.pcap", "signal.pcap", "whatsapp_login_chat.pcap", "instagram.pcap",
            "dnscrypt-v2-doh.pcap", "http_ipv6.pcap", "quic_interop_V.pcapng", "lru_ipv6_caches.pcapng"]


def tshark_endpoints(path: str) -> dict[str, tuple[int, int, int, int]]:
    """ip -> (tx packets, tx bytes, rx packets, rx bytes) from `tshark -q -z endpoints,ip/ipv6`."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for kind in ("ip", "ipv6"):
        res = subprocess.run(["tshark", "-n", "-r", path, "-q", "-z", f"endpoints,{kind}"], capture_output=True,
                             text=True, timeout=300, check=True)
        for line in res.stdout.splitlines():
            parts = line.split()
            # Address Packets Bytes TxPackets TxBytes RxPackets RxBytes
            if len(parts) == 7 and all(p.isdigit() for p in parts[1:]):
                v = [int(p) for p in parts[1:]]
                out[parts[0]] = (v[2], v[3], v[4], v[5])
    return out


@pytest.fixture(scope="module")
def tshark():
    if not shutil.which("tshark"):
        unavailable("tshark not installed (Debian package tshark)")


@pytest.mark.parametrize("name", CAPTURES)
def test_host_totals_match_tshark_endpoints(name, tshark, tmp_path):
    path = corpus_pcap(name)
    store = Store(str(tmp_path))
    store.migrate()
    try:
        summary = ingest_files(store, [str(path)], workers=1)
        assert not summary.errors, summary.errors
        ours: dict[str, list[int]] = {}
        for h in queries.all_hosts(store, limit=1_000_000):
            o = ours.setdefault(h["ip"], [0, 0, 0, 0])  # VLANs summed: tshark ignores them
            for i, k in enumerate(("packets_sent", "bytes_sent", "packets_rcvd", "bytes_rcvd")):
                o[i] += int(h[k])
    finally:
        store.close()
    ref = tshark_endpoints(str(path))
    assert ref, "tshark reported no endpoints"
    mismatches = {ip: (want, tuple(ours.get(ip, ()))) for ip, want in ref.items() if tuple(ours.get(ip, ())) != want}
    assert not mismatches, f"{len(mismatches)}/{len(ref)} hosts differ (tshark, ours): {list(mismatches.items())[:5]}"
    assert set(ours) == set(ref), f"hosts only we report: {sorted(set(ours) - set(ref))[:5]}"


def test_one_host_history_equals_aggregate(tshark, tmp_path):
    """host_history (one host, pushed-down address filter) agrees with the all-hosts aggregate."""
    path = corpus_pcap("wechat.pcap")
    store = Store(str(tmp_path))
    store.migrate()
    try:
        ingest_files(store, [str(path)], workers=1)
        ref = tshark_endpoints(str(path))
        for ip in ("192.168.1.103", "fe80::7a92:9cff:fe0f:a88e", "203.205.151.162"):
            t = queries.host_history(store, ip, top=5)["totals"]
            assert (t["packets_sent"], t["bytes_sent"], t["packets_rcvd"], t["bytes_rcvd"]) == ref[ip]
            assert t["flows"] == t["flows_as_client"] + t["flows_as_server"] > 0
        h = queries.host_history(store, "192.168.1.103", top=3)
        assert len(h["peers"]) == 3 and h["peers"][0]["bytes"] >= h["peers"][-1]["bytes"]
        assert h["applications"] and h["l4_protocols"]
        assert sum(a["bytes"] for a in h["l4_protocols"]) == t_bytes(h)
    finally:
        store.close()


def t_bytes(h) -> int:
    return h["totals"]["bytes_sent"] + h["totals"]["bytes_rcvd"]
