"""The measurements behind active monitoring: ICMP, continuous ICMP, HTTP, throughput, TCP, DNS.

Each `measure_*` coroutine returns a `Measurement`; a target that does not answer gives
`ok=False` with the reason, and a measurement that cannot run on this machine at all (no ICMP
socket, no ping binary...) raises `Unavailable` with a message saying why.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
import select
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable


class Unavailable(Exception):
    """The measurement cannot run here (missing privilege or tool)."""


class Refused(Exception):
    """A host the probe was about to contact (e.g. an HTTP redirect) is not allowed for its owner."""


@dataclass
class Measurement:
    ok: bool
    value: float | None
    unit: str
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- ICMP -----------------------------------------------------------------------------------

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _resolve(host: str, family: int = socket.AF_UNSPEC) -> tuple[int, str]:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), str(ip)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise LookupError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    fam, _, _, _, sa = infos[0]
    return fam, sa[0]


def _open_icmp(fam: int) -> tuple[socket.socket, str]:
    proto = socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6
    errors = []
    for kind, name in ((socket.SOCK_DGRAM, "dgram"), (socket.SOCK_RAW, "raw")):
        try:
            return socket.socket(fam, kind, proto), name
        except OSError as exc:
            errors.append(f"{name}: {exc.strerror or exc}")
    raise PermissionError("; ".join(errors))


def _icmp_socket_ping(fam: int, addr: str, count: int, timeout: float, interval: float) -> list[float | None]:
    sock, kind = _open_icmp(fam)
    ident = random.randrange(1, 0xFFFF)
    v6 = fam == socket.AF_INET6
    rtts: list[float | None] = []
    readable = select.poll()  # not select(): a busy server's descriptors go past FD_SETSIZE (1024)
    readable.register(sock, select.POLLIN)
    try:
        sock.setblocking(False)
        for seq in range(1, count + 1):
            payload = struct.pack("!d", time.monotonic()) + b"flowscope-am".ljust(24, b".")
            head = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, seq)
            csum = 0 if v6 else _checksum(head + payload)
            pkt = struct.pack("!BBHHH", 128 if v6 else 8, 0, csum, ident, seq) + payload
            sent = time.monotonic()
            try:
                sock.sendto(pkt, (addr, 0))
            except OSError:  # e.g. network unreachable: count as lost, keep going
                rtts.append(None)
                if seq < count:
                    time.sleep(interval)
                continue
            got = None
            deadline = sent + timeout
            while got is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not readable.poll(left * 1000):
                    break
                try:
                    data, src = sock.recvfrom(2048)
                except OSError:
                    break
                if src[0].split("%")[0] != addr.split("%")[0]:
                    continue
                if not v6 and kind == "raw":
                    data = data[(data[0] & 0x0F) * 4:]
                if len(data) < 8:
                    continue
                rtype, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
                if rtype != (129 if v6 else 0) or rseq != seq:
                    continue
                if kind == "raw" and rid != ident:
                    continue
                got = (time.monotonic() - sent) * 1000.0
            rtts.append(got)
            if seq < count:
                wait = interval - (time.monotonic() - sent)
                if wait > 0:
                    time.sleep(wait)
    finally:
        sock.close()
    return rtts


_PING_TIME = re.compile(r"icmp_seq=(\d+).*?time[=<]([\d.]+)\s*ms")


def _ping_binary(fam: int, addr: str, count: int, timeout: float, interval: float) -> list[float | None]:
    exe = shutil.which("ping")
    if not exe:
        raise Unavailable("ICMP cannot run here: no unprivileged ICMP socket (sysctl net.ipv4.ping_group_range), "
                          "no raw socket (needs CAP_NET_RAW) and no `ping` program installed (apt-get install "
                          "iputils-ping)")
    args = [exe, "-n", "-c", str(count), "-i", f"{max(0.2, interval):.1f}", "-W", str(max(1, int(round(timeout))))]
    if fam == socket.AF_INET6:
        args.insert(1, "-6")
    try:
        proc = subprocess.run(args + [addr], capture_output=True, text=True,
                              timeout=count * (interval + timeout) + 5, check=False)
    except subprocess.TimeoutExpired:
        return [None] * count
    rtts: list[float | None] = [None] * count
    for m in _PING_TIME.finditer(proc.stdout):
        seq = int(m.group(1))
        if 1 <= seq <= count:
            rtts[seq - 1] = float(m.group(2))
    if proc.returncode not in (0, 1) and not any(rtts):
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise Unavailable(f"ping failed: {msg[-1] if msg else 'exit ' + str(proc.returncode)}")
    return rtts


def icmp_rtts(host: str, count: int = 1, timeout: float = 2.0, interval: float = 0.2) -> tuple[list[float | None], str]:
    """RTTs (ms, None = lost) of `count` echo requests and the method used. Blocking."""
    fam, addr = _resolve(host)
    try:
        return _icmp_socket_ping(fam, addr, count, timeout, interval), "socket"
    except PermissionError:
        return _ping_binary(fam, addr, count, timeout, interval), "ping"


async def measure_icmp(target: str, timeout: float = 2.0, address: str | None = None, **_: Any) -> Measurement:
    """`address`: the checked address of `target` (not resolved again)."""
    try:
        rtts, how = await asyncio.to_thread(icmp_rtts, address or target, 1, timeout)
    except LookupError as exc:
        return Measurement(False, None, "ms", str(exc))
    rtt = rtts[0] if rtts else None
    if rtt is None:
        return Measurement(False, None, "ms", f"no ICMP echo reply from {target} within {timeout:g}s",
                           {"method": how})
    return Measurement(True, round(rtt, 3), "ms", "", {"method": how})


async def measure_cicmp(target: str, timeout: float = 1.0, packets: int = 10, interval: float = 0.2,
                        address: str | None = None, **_: Any) -> Measurement:
    """Continuous ICMP: a burst of `packets` echo requests each run; value = % answered."""
    packets = max(2, min(int(packets), 100))
    try:
        rtts, how = await asyncio.to_thread(icmp_rtts, address or target, packets, timeout, interval)
    except LookupError as exc:
        return Measurement(False, None, "%", str(exc))
    got = [r for r in rtts if r is not None]
    avail = 100.0 * len(got) / len(rtts) if rtts else 0.0
    jitter = (sum(abs(a - b) for a, b in zip(got, got[1:])) / (len(got) - 1)) if len(got) > 1 else 0.0
    extra = {"method": how, "sent": len(rtts), "received": len(got), "jitter_ms": round(jitter, 3),
             "rtt_min_ms": round(min(got), 3) if got else None, "rtt_avg_ms": round(sum(got) / len(got), 3) if got else None,
             "rtt_max_ms": round(max(got), 3) if got else None}
    if not got:
        return Measurement(False, 0.0, "%", f"no ICMP echo reply from {target} ({len(rtts)} sent)", extra)
    return Measurement(True, round(avail, 2), "%", "", extra)


# --- HTTP -----------------------------------------------------------------------------------

def _client(timeout: float, verify_tls: bool, check_host: Callable[[str], None] | None) -> Any:
    """An HTTP client following up to 5 redirects; `check_host` (blocking, raises Refused) vets the host
    of every request, redirects included, before it is sent."""
    import httpx

    async def vet(request: httpx.Request) -> None:
        if check_host is not None:
            await asyncio.to_thread(check_host, request.url.host)

    return httpx.AsyncClient(timeout=timeout, follow_redirects=True, verify=verify_tls, max_redirects=5,
                             trust_env=False, event_hooks={"request": [vet]})


async def measure_http(target: str, timeout: float = 10.0, max_body: int = 2_000_000, verify_tls: bool = True,
                       check_host: Callable[[str], None] | None = None, **_: Any) -> Measurement:
    import httpx

    start = time.monotonic()
    try:
        async with _client(timeout, verify_tls, check_host) as client:
            async with client.stream("GET", target, headers={"User-Agent": "flowscope-am/1"}) as resp:
                first = (time.monotonic() - start) * 1000.0
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size >= max_body:
                        break
                total = (time.monotonic() - start) * 1000.0
    except Refused as exc:
        return Measurement(False, None, "ms", f"request refused: {exc}"[:500], {"refused": True})
    except httpx.HTTPError as exc:
        return Measurement(False, None, "ms", f"HTTP request failed: {type(exc).__name__}: {exc}"[:500])
    extra = {"status": resp.status_code, "bytes": size, "ttfb_ms": round(first, 3), "final_url": str(resp.url)}
    if resp.status_code >= 400:
        return Measurement(False, round(total, 3), "ms", f"HTTP status {resp.status_code}", extra)
    return Measurement(True, round(total, 3), "ms", "", extra)


async def measure_throughput(target: str, timeout: float = 10.0, max_bytes: int = 100_000_000,
                             max_seconds: float = 10.0, verify_tls: bool = True,
                             check_host: Callable[[str], None] | None = None, **_: Any) -> Measurement:
    import httpx

    size = 0
    try:
        async with _client(timeout, verify_tls, check_host) as client:
            start = time.monotonic()
            async with client.stream("GET", target, headers={"User-Agent": "flowscope-am/1"}) as resp:
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size >= max_bytes or time.monotonic() - start >= max_seconds:
                        break
            elapsed = max(time.monotonic() - start, 1e-6)
    except Refused as exc:
        return Measurement(False, None, "Mbit/s", f"request refused: {exc}"[:500], {"refused": True})
    except httpx.HTTPError as exc:
        return Measurement(False, None, "Mbit/s", f"download failed: {type(exc).__name__}: {exc}"[:500])
    mbps = size * 8 / elapsed / 1e6
    extra = {"status": resp.status_code, "bytes": size, "seconds": round(elapsed, 4)}
    if resp.status_code >= 400 or size == 0:
        return Measurement(False, round(mbps, 3), "Mbit/s",
                           f"HTTP status {resp.status_code}" if resp.status_code >= 400 else "empty download", extra)
    return Measurement(True, round(mbps, 3), "Mbit/s", "", extra)


# --- TCP ------------------------------------------------------------------------------------

def split_host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT (IPv6 as [addr]:port), got {text!r}")
    return host, int(port)


async def measure_tcp(target: str, timeout: float = 5.0, address: str | None = None, **_: Any) -> Measurement:
    host, port = split_host_port(target)
    host = address or host
    start = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return Measurement(False, None, "ms", f"TCP connect to {target} timed out after {timeout:g}s")
    except OSError as exc:
        return Measurement(False, None, "ms", f"TCP connect to {target} failed: {exc.strerror or exc}")
    ms = (time.monotonic() - start) * 1000.0
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except Exception:
        pass
    return Measurement(True, round(ms, 3), "ms")


# --- DNS ------------------------------------------------------------------------------------

RTYPES = {"A": 1, "AAAA": 28, "MX": 15, "TXT": 16, "NS": 2, "CNAME": 5}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def system_resolver() -> str | None:
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1]
    except OSError:
        pass
    return None


def _dns_query(name: str, rtype: int) -> tuple[int, bytes]:
    qid = random.randrange(0, 0xFFFF)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna")
        q += bytes([len(raw)]) + raw
    return qid, q + b"\0" + struct.pack("!HH", rtype, 1)


def _skip_name(data: bytes, off: int) -> int:
    for _ in range(128):
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += n + 1
    raise ValueError("bad name")


def _parse_dns(data: bytes, qid: int) -> tuple[int, list[str]]:
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != qid:
        raise ValueError("id mismatch")
    off = 12
    for _ in range(qd):
        off = _skip_name(data, off) + 4
    answers = []
    for _ in range(min(an, 64)):
        off = _skip_name(data, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", data[off:off + 10])
        off += 10
        rdata = data[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            answers.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28 and rdlen == 16:
            answers.append(socket.inet_ntop(socket.AF_INET6, rdata))
        else:
            answers.append(f"type{rtype}")
    return flags & 0x0F, answers


def dns_server_addr(server: str) -> tuple[str, int]:
    server = server.strip()
    try:
        ipaddress.ip_address(server)
        return server, 53
    except ValueError:
        return split_host_port(server)


def _dns_blocking(name: str, server: str, rtype: int, timeout: float) -> tuple[float, int, list[str]]:
    host, port = dns_server_addr(server)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    qid, q = _dns_query(name, rtype)
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        start = time.monotonic()
        s.sendto(q, (host, port))
        deadline = start + timeout
        while True:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            data, _ = s.recvfrom(4096)
            try:
                rcode, answers = _parse_dns(data, qid)
            except (ValueError, struct.error, IndexError):
                continue
            return (time.monotonic() - start) * 1000.0, rcode, answers


async def measure_dns(target: str, server: str | None = None, record_type: str = "A", timeout: float = 3.0,
                      **_: Any) -> Measurement:
    server = server or system_resolver()
    if not server:
        raise Unavailable("no DNS server given and none in /etc/resolv.conf")
    rtype = RTYPES.get(record_type.upper(), 1)
    try:
        ms, rcode, answers = await asyncio.to_thread(_dns_blocking, target, server, rtype, timeout)
    except socket.timeout:
        return Measurement(False, None, "ms", f"no answer from DNS server {server} within {timeout:g}s",
                           {"server": server})
    except OSError as exc:
        return Measurement(False, None, "ms", f"DNS query to {server} failed: {exc.strerror or exc}",
                           {"server": server})
    extra = {"server": server, "rcode": RCODES.get(rcode, str(rcode)), "answers": answers[:10]}
    if rcode != 0:
        return Measurement(False, round(ms, 3), "ms", f"DNS server {server} answered {extra['rcode']}", extra)
    if not answers:
        return Measurement(False, round(ms, 3), "ms", f"no {record_type.upper()} record for {target}", extra)
    return Measurement(True, round(ms, 3), "ms", "", extra)


MEASURE = {
    "icmp": measure_icmp, "cicmp": measure_cicmp, "http": measure_http,
    "throughput": measure_throughput, "tcp": measure_tcp, "dns": measure_dns,
}

__all__ = ["Measurement", "Unavailable", "Refused", "MEASURE", "split_host_port", "system_resolver"]
