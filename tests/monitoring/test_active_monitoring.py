"""Active monitoring against real targets the test starts on 127.0.0.1 (HTTP server, TCP listener,
dnsmasq on a high port) and inside a network namespace whose veth the test takes down."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from fsharness import unavailable

from flowscope.auth import Principal

ADMIN = Principal("admin", "admin")


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    state = {"delay": 0.0, "active": 0, "max_active": 0}
    lock = threading.Lock()

    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):
        with self.lock:
            self.state["active"] += 1
            self.state["max_active"] = max(self.state["max_active"], self.state["active"])
        try:
            if self.path.startswith("/slow"):
                time.sleep(self.state["delay"])
            if self.path.startswith("/missing"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"x" * (8_000_000 if self.path.startswith("/big") else 100)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with self.lock:
                self.state["active"] -= 1


@pytest.fixture(scope="module")
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def tcp_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    stop = threading.Event()

    def accept():
        s.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                c, _ = s.accept()
                c.close()

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield f"127.0.0.1:{s.getsockname()[1]}"
    stop.set()
    th.join(2)
    s.close()


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    exe = shutil.which("dnsmasq")
    if not exe:
        unavailable("dnsmasq not installed (apt-get install -y dnsmasq)")
    port = _free_port(socket.SOCK_DGRAM)
    d = tmp_path_factory.mktemp("dnsmasq")
    proc = subprocess.Popen([exe, "--no-daemon", "--conf-file=/dev/null", f"--port={port}",
                             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                             "--address=/probe.flowscope.test/10.11.12.13", f"--pid-file={d / 'pid'}",
                             "--local=/flowscope.test/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    if proc.poll() is not None:
        unavailable(f"dnsmasq did not start: {proc.stderr.read().decode()[-300:]}")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from flowscope.app import App
    from flowscope.config import Config

    d = tmp_path_factory.mktemp("am")
    (d / "flowscope.toml").write_text(
        "[monitoring]\nconcurrency = 2\ntick_s = 0.2\ngranularity_seconds = { min = 1 }\n"
        "timeouts = { icmp = 1.0, cicmp = 0.3, tcp = 2.0, dns = 1.0 }\n")
    a = App(Config(data_dir=str(d)))
    yield a
    a.store.close()


@pytest.fixture(scope="module")
def mon(app):
    return app.components["monitoring"]


def alerts_for(app, target, **f):
    rows, _ = app.components["alerts"].get_alerts(ADMIN, limit=100, entity_type="am_host", entity_value=target, **f)
    return rows


def run(coro):
    return asyncio.run(coro)


def test_catalogue():
    from flowscope.services.monitoring import GRANULARITIES, TYPES

    assert set(TYPES) == {"icmp", "cicmp", "http", "throughput", "tcp", "dns"}
    for t in TYPES.values():
        d = t.as_dict()
        assert d["granularities"] == list(GRANULARITIES) == ["min", "5mins", "hour"]
        assert d["min_threshold"] <= d["default_threshold"] <= d["max_threshold"]
    assert TYPES["cicmp"].operator == "lt" and TYPES["throughput"].operator == "lt" and TYPES["http"].operator == "gt"


@pytest.mark.parametrize("ptype,target,threshold,msg", [
    ("icmp", "bad host!", None, "host name or IP"),
    ("icmp", "127.0.0.1", 0, "between"),
    ("icmp", "127.0.0.1", 20000, "between"),
    ("cicmp", "127.0.0.1", 101, "between"),
    ("http", "ftp://127.0.0.1/", None, "http:// or https://"),
    ("http", "http://user:pw@127.0.0.1/", None, "credentials"),
    ("throughput", "http://127.0.0.1/", 0, "between"),
    ("tcp", "127.0.0.1", None, "HOST:PORT"),
    ("tcp", "127.0.0.1:70000", None, "HOST:PORT"),
    ("dns", "127.0.0.1", None, "DNS name"),
    ("nope", "127.0.0.1", None, "unknown type"),
])
def test_validation(mon, ptype, target, threshold, msg):
    from flowscope.services.monitoring import ProbeError

    with pytest.raises(ProbeError, match=msg):
        mon.validate(ptype, target, threshold, "min", {})
    with pytest.raises(ProbeError, match="granularity"):
        mon.validate("icmp", "127.0.0.1", None, "daily", {})


def test_icmp_loopback(app, mon):
    app.auth.add_user("t", "admin")  # a probe runs with its owner's current rights
    p, first = run(mon.add("icmp", "127.0.0.1", 500, "min", by="t"))
    assert first["ran"], first["error"]
    assert first["ok"] and 0 < first["value"] < 500 and first["unit"] == "ms" and not first["crossed"]
    assert p["id"] == "icmp:127.0.0.1"
    from flowscope.services.monitoring import ProbeError

    with pytest.raises(ProbeError, match="exists already"):
        run(mon.add("icmp", "127.0.0.1", 100, "hour"))
    _, v6 = run(mon.add("icmp", "::1", 500, "5mins"))
    assert v6["ok"] and v6["value"] < 500
    stored = app.store.query("SELECT count(), min(ok) FROM am_measurements WHERE probe_id = 'icmp:127.0.0.1'").rows[0]
    assert stored == [1, 1]


def test_cicmp_loopback(mon):
    _, first = run(mon.add("cicmp", "127.0.0.2", 90, "min", {"packets": 5}))
    assert first["ok"] and first["value"] == 100.0 and first["unit"] == "%"
    assert first["extra"]["sent"] == 5 and first["extra"]["received"] == 5 and first["extra"]["jitter_ms"] >= 0


def test_http_threshold_fires_and_clears(app, mon, http_server):
    url = http_server + "/slow"
    _Handler.state["delay"] = 0.4
    p, first = run(mon.add("http", url, 200, "min"))
    assert first["ok"] and first["value"] >= 400 and first["crossed"]
    engaged = alerts_for(app, url, status="engaged")
    assert len(engaged) == 1 and engaged[0]["alert_type"] == "am_threshold_cross"
    assert engaged[0]["evidence"]["value"] == first["value"] and engaged[0]["ip"] == "127.0.0.1"
    _Handler.state["delay"] = 0.0
    again = run(mon.run_probe(mon.probe(p["id"])))
    assert again["ok"] and again["value"] < 200 and not again["crossed"]
    assert not alerts_for(app, url, status="engaged")
    assert len(alerts_for(app, url, status="released")) == 1
    _, missing = run(mon.add("http", http_server + "/missing", 1000, "min"))
    assert not missing["ok"] and "404" in missing["error"]
    assert alerts_for(app, http_server + "/missing", alert_type="am_unreachable", status="engaged")


def test_throughput(app, mon, http_server):
    url = http_server + "/big"
    _, first = run(mon.add("throughput", url, 100_000, "5mins"))
    assert first["ok"] and first["unit"] == "Mbit/s" and first["extra"]["bytes"] == 8_000_000
    assert 1 < first["value"] < 100_000 and first["crossed"]  # below an impossible threshold: alert
    assert alerts_for(app, url, alert_type="am_threshold_cross", status="engaged")


def test_tcp_connect_and_refused(app, mon, tcp_listener):
    _, first = run(mon.add("tcp", tcp_listener, 1000, "min"))
    assert first["ok"] and 0 < first["value"] < 1000
    closed = f"127.0.0.1:{_free_port()}"
    _, bad = run(mon.add("tcp", closed, 1000, "min"))
    assert not bad["ok"] and bad["value"] is None and "failed" in bad["error"]
    a = alerts_for(app, closed, status="engaged")
    assert len(a) == 1 and a[0]["alert_type"] == "am_unreachable" and a[0]["severity"] == "error"


def test_dns_resolution(app, mon, dns_server):
    _, first = run(mon.add("dns", "probe.flowscope.test", 1000, "min", {"server": dns_server}))
    assert first["ok"], first["error"]
    assert 0 < first["value"] < 1000 and first["extra"]["answers"] == ["10.11.12.13"]
    _, nx = run(mon.add("dns", "missing.flowscope.test", 1000, "min", {"server": dns_server}))
    assert not nx["ok"] and "NXDOMAIN" in nx["error"]
    dead = f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}"
    _, silent = run(mon.add("dns", "probe.flowscope.test", 1000, "min", {"server": dead}))
    assert not silent["ok"] and "no answer" in silent["error"]


def test_last_and_availability(mon):
    up, _ = run(mon.add("icmp", "127.0.0.3", 500, "min"))  # probes of its own: passes in any order
    last = mon.last(up["id"])
    assert last and last["ok"]
    hours = mon.availability(up["id"])
    assert hours and hours[-1]["availability_pct"] == 100.0
    down, _ = run(mon.add("tcp", f"127.0.0.1:{_free_port()}", 1000, "min"))
    failing = mon.availability(down["id"])
    assert failing and failing[-1]["availability_pct"] == 0.0


def test_registry_survives_restart(app, mon):
    from flowscope.services.monitoring import MonitoringService

    again = MonitoringService(app)
    assert [p["id"] for p in again.probes()] == [p["id"] for p in mon.probes()]


def test_scheduler_runs_with_bounded_concurrency(app, mon, http_server):
    for p in mon.probes():
        mon.remove(p["id"])
    _Handler.state.update(delay=0.3, max_active=0)
    urls = [f"{http_server}/slow?{i}" for i in range(5)]
    for u in urls:
        run(mon.add("http", u, 60_000, "min"))
    before = app.store.query("SELECT count() FROM am_measurements WHERE probe_type = 'http'").rows[0][0]
    _Handler.state["max_active"] = 0

    async def go():
        await mon.start()
        await asyncio.sleep(5)
        await mon.stop()

    run(go())
    after = app.store.query("SELECT count() FROM am_measurements WHERE probe_type = 'http'").rows[0][0]
    # 5 probes due every second, 2 at a time, 0.3 s each: several rounds ran, never more than 2 at once
    assert after - before >= 6
    per_probe = app.store.query("SELECT target, count() FROM am_measurements WHERE probe_type = 'http' "
                                "AND target LIKE '%/slow?%' GROUP BY target").rows
    assert len(per_probe) == 5 and all(n >= 2 for _, n in per_probe)
    assert _Handler.state["max_active"] <= 2
    _Handler.state["delay"] = 0.0
    for u in urls:
        mon.remove(f"http:{u}")


NS = f"fsam{os.getpid() % 10000}"
VETH = f"fsv{os.getpid() % 10000}"


@pytest.fixture()
def netns():
    if os.geteuid() != 0 or not shutil.which("ip"):
        unavailable("needs root and iproute2 for a network namespace")
    octet = 16 + os.getpid() % 200
    host_ip, ns_ip = f"10.250.{octet}.1", f"10.250.{octet}.2"

    def ip(*args, check=True):
        return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)

    try:
        ip("netns", "add", NS)
    except subprocess.CalledProcessError as exc:
        unavailable(f"cannot create a network namespace: {exc.stderr.strip()}")
    try:
        ip("link", "add", VETH + "a", "type", "veth", "peer", "name", VETH + "b")
        ip("link", "set", VETH + "b", "netns", NS)
        ip("addr", "add", f"{host_ip}/30", "dev", VETH + "a")
        ip("link", "set", VETH + "a", "up")
        ip("netns", "exec", NS, "ip", "addr", "add", f"{ns_ip}/30", "dev", VETH + "b")
        ip("netns", "exec", NS, "ip", "link", "set", VETH + "b", "up")
        ip("netns", "exec", NS, "ip", "link", "set", "lo", "up")
        time.sleep(0.5)
        yield {"ns_ip": ns_ip, "down": lambda: ip("link", "set", VETH + "a", "down"),
               "up": lambda: ip("link", "set", VETH + "a", "up")}
    finally:
        ip("link", "del", VETH + "a", check=False)
        ip("netns", "del", NS, check=False)


def test_unreachable_when_veth_goes_down(app, mon, netns):
    target = netns["ns_ip"]
    p, first = run(mon.add("icmp", target, 1000, "min"))
    assert first["ok"], first["error"]
    netns["down"]()
    down = run(mon.run_probe(mon.probe(p["id"])))
    assert not down["ok"] and down["value"] is None
    a = alerts_for(app, target, status="engaged")
    assert len(a) == 1 and a[0]["alert_type"] == "am_unreachable" and a[0]["ip"] == target
    _, c = run(mon.add("cicmp", target, 90, "min", {"packets": 3}))
    assert not c["ok"] and c["value"] == 0.0
    netns["up"]()
    deadline = time.monotonic() + 10
    back = {"ok": False}
    while not back["ok"] and time.monotonic() < deadline:
        time.sleep(0.5)
        back = run(mon.run_probe(mon.probe(p["id"])))
    assert back["ok"]
    assert not [x for x in alerts_for(app, target, status="engaged") if x["evidence"]["probe_id"] == p["id"]]
    assert alerts_for(app, target, status="released")
    mon.remove(p["id"])
    mon.remove(f"cicmp:{target}")
