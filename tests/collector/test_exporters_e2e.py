"""Real exporters on loopback: softflowd (NetFlow v5, v9, IPFIX) and pmacctd (sFlow v5, IPFIX)
read corpus captures and export to the running collector; stored totals must equal the
exporter's own totals and nfdump's independent decoding of the same export."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import dpkt
import pytest

from collector_harness import free_udp_port, need_tool, softflowd, unblock_signals
from fsharness import corpus_pcap

CAPTURES = ["chrome.pcap", "dns_doh.pcap", "quic.pcap"]  # all in the corpus (ipv6_in_gtp.pcap is not)


def _captures() -> list[Path]:
    return [corpus_pcap(n) for n in CAPTURES]




class Nfcapd:
    def __init__(self, tmp: Path):
        exe = need_tool("nfcapd")
        need_tool("nfdump")
        self.dir = tmp / "nfcapd"
        self.dir.mkdir()
        self.port = free_udp_port()
        self.proc = subprocess.Popen([exe, "-b", "127.0.0.1", "-p", str(self.port), "-l", str(self.dir),
                                      "-t", "3600", "-B", "8000000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=unblock_signals)
        time.sleep(0.5)

    def totals(self) -> tuple[int, int, int]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        out = subprocess.run(["nfdump", "-R", str(self.dir), "-I"], capture_output=True, text=True,
                             timeout=60).stdout
        vals = dict(re.findall(r"^(Flows|Packets|Bytes): (\d+)$", out, re.M))
        return int(vals["Flows"]), int(vals["Packets"]), int(vals["Bytes"])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def stored(store, source_type: str) -> tuple[int, int, int]:
    r = store.query("SELECT count(), sum(PACKETS), sum(TOTAL_BYTES) FROM flows WHERE SOURCE_TYPE = {t:String}",
                    {"t": source_type}).rows[0]
    return int(r[0]), int(r[1] or 0), int(r[2] or 0)


@pytest.mark.parametrize("version,source_type", [("5", "netflow5"), ("9", "netflow9"), ("10", "ipfix")])
def test_softflowd_totals_match_exporter_and_nfdump(version, source_type, collector, store, tmp_path):
    caps = _captures()
    nf = Nfcapd(tmp_path)
    try:
        own_pkts = own_bytes = 0
        for cap in caps:
            p, b = softflowd(cap, collector.port(), version, tmp_path)
            own_pkts += p
            own_bytes += b
            softflowd(cap, nf.port, version, tmp_path)      # same capture, same export, to nfcapd
        time.sleep(0.5)
        collector.flush()
        nf_flows, nf_pkts, nf_bytes = nf.totals()
    finally:
        nf.kill()
    flows, pkts, byts = stored(store, source_type)
    assert flows > 0
    assert (flows, pkts, byts) == (nf_flows, nf_pkts, nf_bytes)
    if version != "5":                  # v5 carries no IPv6: softflowd's own totals include it
        assert (pkts, byts) == (own_pkts, own_bytes)
    else:
        assert pkts <= own_pkts and byts <= own_bytes
    ex = [e for e in collector.fc.registry.snapshots() if e["type"] == source_type]
    assert ex and ex[0]["address"] == "127.0.0.1" and ex[0]["lost"] == 0 and ex[0]["undecodable"] == 0
    # v4 rows carry an integer address and '::'; v6 rows the reverse
    bad = store.query("SELECT count() FROM flows WHERE (IP_PROTOCOL_VERSION = 4 AND (IPV4_SRC_ADDR = 0 OR "
                      "IPV6_SRC_ADDR != toIPv6('::'))) OR (IP_PROTOCOL_VERSION = 6 AND IPV4_SRC_ADDR != 0)").scalar()
    assert int(bad) == 0
    meta = store.query("SELECT any(PROBE_IP), any(INTERFACE_ID), uniqExact(FLOW_ID) = count() FROM flows").rows[0]
    assert meta[0] == "127.0.0.1" and int(meta[1]) == 100 and meta[2] in (1, True)


PMACCT_CONF = """daemonize: false
pcap_savefile: {pcap}
pcap_savefile_wait: false
plugins: {plugin}[x]
{extra}
"""


def pmacctd(pcap: Path, tmp: Path, plugin: str, extra: str, timeout: float = 60) -> str:
    exe = need_tool("pmacctd")
    conf = tmp / f"pmacctd-{plugin}.conf"
    conf.write_text(PMACCT_CONF.format(pcap=pcap, plugin=plugin, extra=extra))
    res = subprocess.run([exe, "-f", str(conf)], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL, preexec_fn=unblock_signals)
    return res.stdout + res.stderr


def _pcap_totals(pcap: Path) -> tuple[int, int]:
    """Packets and frame bytes of a capture, read by dpkt (the sampled packets' frame lengths)."""
    n = b = 0
    with pcap.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh) if pcap.suffix == ".pcap" else dpkt.pcapng.Reader(fh)
        for _, buf in reader:
            n += 1
            b += len(buf)
    return n, b


def test_pmacctd_sflow_scaled_totals(collector, store, tmp_path):
    caps = [c for c in _captures() if c.suffix == ".pcap"][:2]
    # sampling 1: every packet is a sample; totals must equal the capture's own
    exp_pkts = exp_bytes = 0
    for cap in caps:
        out = pmacctd(cap, tmp_path, "sfprobe", f"sfprobe_receiver: 127.0.0.1:{collector.port()}\n"
                      "sfprobe_agentip: 127.0.0.7\nsampling_rate: 1\n")
        p, b = _pcap_totals(cap)
        exp_pkts += p
        exp_bytes += b
    time.sleep(1.0)
    collector.flush()
    flows, pkts, byts = stored(store, "sflow")
    assert flows > 0, out
    ex = [e for e in collector.fc.registry.snapshots() if e["type"] == "sflow"]
    assert ex and ex[0]["address"] == "127.0.0.7"
    lost = ex[0]["lost"]
    assert lost == 0
    # never more than the capture holds; pmacctd exits at end of file without sending its last,
    # partly filled sFlow datagram, so a few trailing samples never leave it (measured: 255 of 269)
    assert 0 < pkts <= exp_pkts and 0 < byts <= exp_bytes
    assert pkts >= 0.9 * exp_pkts and byts >= 0.9 * exp_bytes


def test_pmacctd_sflow_sampling_scales(collector, store, tmp_path):
    cap = corpus_pcap("quic.pcap")  # 518 packets: about 130 samples at 1 in 4, many datagrams
    pmacctd(cap, tmp_path, "sfprobe", f"sfprobe_receiver: 127.0.0.1:{collector.port()}\n"
            "sfprobe_agentip: 127.0.0.8\nsampling_rate: 4\n")
    time.sleep(1.0)
    collector.flush()
    r = store.query("SELECT count(), sum(PACKETS), min(SAMPLING_RATE), max(SAMPLING_RATE) FROM flows "
                    "WHERE SOURCE_TYPE = 'sflow'").rows[0]
    n, pkts, lo, hi = int(r[0]), int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)
    assert n > 0, "pmacctd sent no samples at rate 4"
    assert lo == hi == 4 and pkts == 4 * n     # each sample stands for 4 packets
