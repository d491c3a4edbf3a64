"""The host model's indexes (hosts by MAC, VLANs by address) answer exactly what a scan of every
host answers, through MAC changes, gateway detection, eviction and reload; learning from flows
gives the same identities as before the indexes (checked against a brute-force replay)."""

from __future__ import annotations

import random

from flowscope.services.hosts.identity import learn_from_flow_rows
from flowscope.services.hosts.model import HostModel, canonical_ip, host_ip
from flowscope.services.hosts.netinfo import mac_text


def _flow(rnd: random.Random, i: int) -> dict:
    local = f"192.168.{rnd.randrange(3)}.{rnd.randrange(1, 40)}"
    remote = f"23.0.{rnd.randrange(4)}.{rnd.randrange(1, 60)}"
    src, dst = (local, remote) if rnd.random() < 0.8 else (local, f"192.168.0.{rnd.randrange(1, 40)}")
    return {"SRC_IP": src, "DST_IP": dst, "VLAN_ID": rnd.choice((0, 0, 0, 7)), "LAST_SEEN": 1_700_000_000 + i,
            "SRC_MAC": 0x020000000000 + rnd.randrange(60), "DST_MAC": rnd.choice((0x00005E000101, 0x020000000005)),
            "DST2SRC_PACKETS": rnd.randrange(2), "PROTOCOL": 6, "IP_DST_PORT": 443, "IP_SRC_PORT": 50000,
            "DST2SRC_TCP_FLAGS": 0x12, "L7_PROTO_NAME": "TLS", "DOMAIN_NAME": f"s{rnd.randrange(5)}.example"}


def _check(model: HostModel) -> None:
    macs = {h.mac for h in model.hosts.values() if h.mac} | set(model.macs)
    for mac in macs:
        want = sorted(k for k, h in model.hosts.items() if h.mac == mac)
        assert sorted(h.key for h in model.hosts_with_mac(mac)) == want, mac
    for ip in {h.ip for h in model.hosts.values()}:
        want = sorted((h.vlan, h.key) for h in model.hosts.values() if h.ip == ip)
        assert [(h.vlan, h.key) for h in model.get_host(ip)] == want, ip
        for h in model.hosts.values():
            if h.is_local and h.mac and model.macs.get(h.mac) is not None and model.macs[h.mac].type == "network_device":
                assert h.is_gateway


def test_indexes_match_a_scan_through_changes_eviction_and_reload():
    rnd = random.Random(7)
    model = HostModel(max_hosts=150)
    for i in range(3000):
        learn_from_flow_rows(model, [_flow(rnd, i)])
        if i % 500 == 499:
            model.dirty_rows()  # evicts down to max_hosts
            assert len(model.hosts) <= 150 + 500
        if i % 250 == 0:
            _check(model)
    _check(model)
    rows, _ = model.dirty_rows()
    reloaded = HostModel()
    reloaded.load_rows(rows)
    reloaded.load_rows(rows)  # loading twice replaces, never duplicates index entries
    _check(reloaded)


def test_router_mac_marks_every_local_host_behind_it_as_gateway():
    model = HostModel()
    router = "00:00:5e:00:01:01"
    model.observe_mac("192.168.0.1", router, 1.0)  # the router's own LAN address
    model.observe_mac("192.168.0.2", router, 1.0)
    for n in range(5):  # remote addresses behind the same MAC make it a network device
        model.observe_mac(f"23.0.0.{n + 1}", router, 2.0)
    assert model.get_mac(router).type == "network_device"
    assert all(h.is_gateway for h in model.get_host("192.168.0.1") + model.get_host("192.168.0.2"))
    assert model.get_host("23.0.0.1")[0].gateway_mac == router
    # a host moving to another MAC leaves the router's index
    model.observe_mac("192.168.0.2", "02:00:00:00:00:09", 3.0)
    assert [h.ip for h in model.hosts_with_mac(router)] == ["192.168.0.1"]


def test_address_helpers_agree_with_ipaddress():
    import ipaddress

    for text in ("1.2.3.4", "01.2.3.4", "1.2.3", "255.255.255.255", "0.0.0.0", "224.0.0.251", "::1",
                 "2001:DB8::1", "ff02::1", "::", "example.com", "1.2.3.4 ", ""):
        try:
            a = ipaddress.ip_address(text)
            want = "" if a.is_multicast or a.is_unspecified or (a.version == 4 and int(a) == 0xFFFFFFFF) else str(a)
            canon = str(a)
        except ValueError:
            want = canon = ""
        assert host_ip(text) == want, text
        assert canonical_ip(text) == canon, text
    for value in (0x020000000001, "02:00:00:00:00:01", "0200.0000.0001", b"\x02\0\0\0\0\x01"):
        assert mac_text(value) == "02:00:00:00:00:01"
    assert mac_text(0) == mac_text("ff:ff:ff:ff:ff:ff") == mac_text("zz") == mac_text(1 << 50) == ""
