"""Real SNMP agents on loopback: Net-SNMP's snmpd (v2c + v3 authPriv SHA/AES) and snmpsim
serving recorded walks of real devices (PyPI snmpsim-data). Both are started by the tests on
127.0.0.1 with configs of their own; nothing is sent off the machine."""

from __future__ import annotations

import bz2
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
COMMUNITY = "fs-public-7Qx"
V3_USER = "fsAuthPriv"
V3_AUTH = "authpass-9f3k2"
V3_PRIV = "privpass-4j8d1"
SYS = {"sys_name": "flowscope-lab", "sys_location": "rack 7, loopback", "sys_contact": "noc@example.test"}

# recordings from snmpsim-data used by the tests: community = file name without extension
RECORDINGS = {"n5000": "network/switch/cisco-n5000.snmprec.bz2",
              "c3560": "network/switch/cisco-c3560.snmprec.bz2"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(path: str, what: str) -> str:
    if not (os.path.exists(path) or shutil.which(path)):
        raise AssertionError(f"{what} is required for tests/snmp: apt-get install -y snmpd snmp")
    return path


def wait_answer(port: int, community: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["snmpget", "-m", "", "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On",
                            f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"], capture_output=True, text=True)
        if r.returncode == 0 and "1.3.6.1.2.1.1.3.0" in r.stdout:
            return
        time.sleep(0.3)
    raise AssertionError(f"agent on udp:127.0.0.1:{port} did not answer")


class Snmpd:
    def __init__(self, root: Path):
        need(SNMPD, "snmpd")
        need("snmpwalk", "snmpwalk (package snmp)")
        self.root = root
        self.port = free_udp_port()
        self.conf = root / "snmpd.conf"
        self.conf.write_text("\n".join([
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"rocommunity {COMMUNITY} 127.0.0.1",
            f'createUser {V3_USER} SHA "{V3_AUTH}" AES "{V3_PRIV}"',
            f"rouser {V3_USER} priv",
            f"sysName {SYS['sys_name']}",
            f"sysLocation {SYS['sys_location']}",
            f"sysContact {SYS['sys_contact']}",
            "dontLogTCPWrappersConnects yes",
            "",
        ]))
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.root / "persist"), "MIBS": "", "MIBDIRS": ""}
        self.proc = subprocess.Popen([SNMPD, "-f", "-C", "-c", str(self.conf), "-m", "", "-Lf",
                                      str(self.root / "snmpd.log")], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_answer(self.port, COMMUNITY)
        self.started = time.monotonic()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def walk(self, oid: str, v3: bool = False) -> dict[str, str]:
        return snmpwalk(self.port, oid, COMMUNITY if not v3 else None)


def snmpwalk(port: int, oid: str, community: str | None) -> dict[str, str]:
    """OID (no leading dot) -> value as snmpwalk prints it with -OQ -Oe -Ot -On (quotes removed)."""
    if community is not None:
        auth = ["-v2c", "-c", community]
    else:
        auth = ["-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA", "-A", V3_AUTH, "-x", "AES", "-X", V3_PRIV]
    r = subprocess.run(["snmpwalk", "-m", "", *auth, "-On", "-Oe", "-Ot", "-OQ", "-t", "2", "-r", "1",
                        f"127.0.0.1:{port}", oid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\.?([\d.]+) = (.*)$", line)
        if not m:
            continue
        v = m.group(2)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        out[m.group(1)] = v
    return out


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory):
    agent = Snmpd(tmp_path_factory.mktemp("snmpd"))
    yield agent
    agent.stop()


class Snmpsim:
    def __init__(self, root: Path):
        import snmpsim_data

        self.data = root / "data"
        self.data.mkdir()
        src = Path(snmpsim_data.__file__).parent / "data"
        self.files: dict[str, Path] = {}
        for community, rel in RECORDINGS.items():
            dst = self.data / f"{community}.snmprec"
            dst.write_bytes(bz2.decompress((src / rel).read_bytes()))
            self.files[community] = dst
        self.port = free_udp_port()
        exe = Path(sys.executable).parent / "snmpsim-command-responder"
        env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}   # loopback-only test agent
        self.log = open(root / "snmpsim.log", "w")
        self.proc = subprocess.Popen([str(exe), f"--data-dir={self.data}", f"--cache-dir={root / 'cache'}",
                                      f"--agent-udpv4-endpoint=127.0.0.1:{self.port}"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for community in RECORDINGS:
            wait_answer(self.port, community, timeout=120)

    def records(self, community: str) -> dict[str, tuple[str, str]]:
        out = {}
        for line in self.files[community].read_text(errors="replace").splitlines():
            parts = line.split("|", 2)
            if len(parts) == 3:
                out[parts[0]] = (parts[1], parts[2])
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory):
    sim = Snmpsim(tmp_path_factory.mktemp("snmpsim"))
    yield sim
    sim.stop()


class _Config:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir

    def section(self, name: str) -> dict:
        return {}


@pytest.fixture
def app(tmp_path):
    from flowscope.store import Store

    store = Store(str(tmp_path))
    store.migrate()
    a = types.SimpleNamespace(store=store, config=_Config(str(tmp_path)), components={})
    yield a
    store.close()


@pytest.fixture
def service(app):
    from flowscope.services.snmp import attach

    svc = attach(app)
    app.components["snmp"] = svc
    return svc
