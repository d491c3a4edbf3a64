"""The one address parser and the probe-target check, on a real App: spellings, special addresses,
the admin setting `[targets] allow_special`, and HTTP redirects vetted before they are followed."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import threading

import pytest

from flowscope import addresses
from flowscope.auth import Principal, TargetRefused, check_target

USER = Principal("uma", "user")
NETS = Principal("nat", "user", allowed_networks=(ipaddress.ip_network("10.60.0.0/16"),))


@pytest.mark.parametrize("text,canonical", [
    ("10.60.1.2", "10.60.1.2"), ("[2001:DB8::1]", "2001:db8::1"), ("::ffff:10.60.1.2", "10.60.1.2"),
    ("Router.Example.LAN.", "router.example.lan"), ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_parse_host_normalises(text, canonical):
    assert addresses.parse_host(text) == canonical


@pytest.mark.parametrize("text", ["10.1", "167772161", "0xa.0.0.1", "010.0.0.1", "10.0.0.1 evil", "1.2.3.999",
                                  "host_with space", "", "a" * 64 + ".example", "1.2.3.4.5"])
def test_parse_host_refuses(text):
    with pytest.raises(addresses.AddressError):
        addresses.parse_host(text)


def test_check_target_special_and_networks():
    assert check_target(USER, "10.60.1.2") == ["10.60.1.2"]
    assert check_target(Principal("root", "admin"), "localhost")  # admins may
    for host, kind in (("localhost", "loopback"), ("169.254.170.2", "metadata"), ("ff02::fb", "multicast"),
                       ("::", "unspecified"), ("240.1.2.3", "reserved")):
        with pytest.raises(TargetRefused, match=kind):
            check_target(USER, host)
    assert check_target(USER, "127.0.0.2", frozenset({"loopback"})) == ["127.0.0.2"]
    with pytest.raises(TargetRefused) as exc:
        check_target(NETS, "10.61.0.1")
    assert "outside your allowed networks" in str(exc.value)
    with pytest.raises(TargetRefused, match="loopback"):  # special first, and never names the address
        check_target(NETS, "localhost")
    with pytest.raises(ValueError, match="unknown kind"):
        addresses.allowed_special(["loopback", "everything"])
    assert addresses.allowed_special(True) == frozenset(addresses.SPECIAL_KINDS)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from flowscope.app import App
    from flowscope.config import Config

    d = tmp_path_factory.mktemp("targets")
    (d / "flowscope.toml").write_text('[targets]\nallow_special = ["loopback"]\n')
    a = App(Config(data_dir=str(d)))
    a.auth.add_user(USER.name, USER.role)
    yield a
    a.store.close()


@pytest.fixture(scope="module")
def redirecting():
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/ok":
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/" if self.path == "/meta"
                             else "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_allowed_loopback_and_redirects_vetted(app, redirecting):
    from flowscope.services.monitoring import ProbeError

    mon = app.components["monitoring"]
    _, first = asyncio.run(mon.add("http", redirecting + "/same", 60_000, "min", principal=USER))
    assert first["ok"], first["error"]                      # loopback allowed by the admin setting
    _, meta = asyncio.run(mon.add("http", redirecting + "/meta", 60_000, "min", principal=USER))
    assert not meta["ok"] and "request refused" in meta["error"] and "metadata" in meta["error"]
    with pytest.raises(ProbeError, match="link-local"):     # still refused: only loopback is allowed
        asyncio.run(mon.add("icmp", "fe80::1", 100, "min", principal=USER))
    for p in mon.probes():
        mon.remove(p["id"])
