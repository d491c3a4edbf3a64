"""The scope net's rule on answers built by hand: what stays, what goes, what is refused."""

from __future__ import annotations

import ipaddress

import pytest

from flowscope.auth import Principal
from flowscope.mcp.scope_net import Refused, addresses, clean

SCOPE = Principal("r", "user", allowed_networks=(ipaddress.ip_network("192.168.0.0/16"),)).scope


@pytest.mark.parametrize("text,found", [
    ("10.0.0.1", ["10.0.0.1"]), ("udp://127.0.0.1:2055", ["127.0.0.1"]), ("key 10.0.0.1@0", ["10.0.0.1"]),
    ("TLS 8.8.8.8:443 -> 192.168.1.2.", ["8.8.8.8", "192.168.1.2"]), ("[2001:db8::1]:443", ["2001:db8::1"]),
    ("fe80::1%eth0", ["fe80::1"]), ("::ffff:10.1.2.3", ["10.1.2.3"]), ("2001:db8::/32", ["2001:db8::/32"]),
    ("std::string", []), ("2024-05-01T10:00:00.000Z", []), ("00:11:22:33:44:55", []), ("255.255.255.0", []),
    ("0.0.0.0", []), ("::", []), ("OID 1.3.6.1.2.1.2.2", []), ("Gi1/0/1", []),
])
def test_addresses_in_text(text, found):
    assert [str(a) for a in addresses(text)] == found


def test_outside_items_go_and_context_keeps_peers():
    answer = {
        "talkers": [{"ip": "8.8.8.8"}, {"ip": "192.168.1.1", "peers": [{"ip": "1.1.1.1", "name": "one"}]}],
        "countries": [{"cc": "US", "top_hosts": ["8.8.8.8", "192.168.1.4"]}],
        "rows": [["8.8.8.8", "192.168.1.1", 3], ["1.1.1.1", "9.9.9.9", 3]],
        "flow": {"src": "192.168.1.1", "dst": "8.8.8.8", "location": {"as": "8.8.8.0/24"}},
        "networks": ["192.168.1.0/24", "10.0.0.0/8"],
    }
    out, walk = clean(SCOPE, answer)
    assert out == {
        "talkers": [{"ip": "192.168.1.1", "peers": [{"ip": "1.1.1.1", "name": "one"}]}],
        "countries": [{"cc": "US", "top_hosts": ["192.168.1.4"]}],
        "rows": [["8.8.8.8", "192.168.1.1", 3]],
        "flow": answer["flow"],
        "networks": ["192.168.1.0/24"],
    }
    assert walk.removed == 4 and walk.strays == {"8.8.8.8", "1.1.1.1", "9.9.9.9", "10.0.0.0/8"}


def test_peers_of_visible_flows_are_excused_only_when_asked():
    answer = {"rows": [{"key": "9.9.9.9", "flows": 2}, {"key": "7.7.7.7", "flows": 1}]}
    out, walk = clean(SCOPE, answer, peers=lambda addrs: addrs & {"9.9.9.9"})
    assert out == {"rows": [{"key": "9.9.9.9", "flows": 2}]} and walk.removed == 1
    assert clean(SCOPE, answer)[0] == {"rows": []}


@pytest.mark.parametrize("answer", [{"ip": "8.8.8.8"}, {"detail": {"peer": "8.8.8.8"}}, {"note": "see 10.1.1.1"}])
def test_a_stray_scalar_refuses_the_answer(answer):
    with pytest.raises(Refused):
        clean(SCOPE, answer)


def test_unrestricted_scope_sees_everything():
    everyone = Principal("a", "admin").scope
    answer = {"talkers": [{"ip": "8.8.8.8"}], "ip": "10.0.0.1"}
    assert clean(everyone, answer)[0] == answer
