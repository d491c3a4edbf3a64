"""asyncio UDP listeners: one per `udp://host:port` URL, each with its INTERFACE_ID."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

RCVBUF = 32 * 1024 * 1024
#: Linux's SO_RCVBUFFORCE (Python's socket module lacks the name): with CAP_NET_ADMIN it grants
#: the buffer beyond net.core.rmem_max; without, SO_RCVBUF is capped at rmem_max
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)


def parse_url(url: str) -> tuple[str, int]:
    """'udp://0.0.0.0:2055' or 'udp://[::]:2055' -> (host, port)."""
    text = url.strip()
    if "://" not in text:
        text = "udp://" + text
    parts = urlsplit(text)
    if parts.scheme != "udp":
        raise ValueError(f"collector listen URL must be udp://HOST:PORT (got {url!r})")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise ValueError(f"collector listen URL needs a port, e.g. udp://0.0.0.0:2055 (got {url!r})")
    return parts.hostname or "0.0.0.0", port


def open_socket(host: str, port: int, rcvbuf: int = RCVBUF) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)   # dual stack
        for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            if opt is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
                break
            except OSError:
                continue
        sock.bind((host, port))
        sock.setblocking(False)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if granted < rcvbuf:  # Linux reports twice what it grants
            log.warning("collector receive buffer on %s:%d is %d bytes (asked %d): bursts may overflow it; "
                        "raise net.core.rmem_max or run with CAP_NET_ADMIN", host, port, granted, rcvbuf)
    except Exception:
        sock.close()
        raise
    return sock


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, listener: "Listener"):
        self.listener = listener

    def datagram_received(self, data: bytes, addr) -> None:
        lst = self.listener
        lst.received += 1
        lst.collector.submit(data, addr, lst.interface_id)

    def error_received(self, exc: Exception) -> None:
        log.debug("collector socket error: %s", exc)


class Listener:
    def __init__(self, url: str, interface_id: int, collector):
        self.url = url
        self.host, self.port = parse_url(url)
        self.interface_id = interface_id
        self.collector = collector
        self.received = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.bound: tuple | None = None
        self.drops_at_stop: int | None = None

    async def start(self) -> None:
        sock = open_socket(self.host, self.port)
        self.bound = sock.getsockname()
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        log.info("flow collector listening on %s (interface %d)", self.url, self.interface_id)

    def rcvbuf(self) -> int:
        if self.transport is None:
            return 0
        sock = self.transport.get_extra_info("socket")
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) if sock else 0

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on this socket (receive buffer full): /proc/net/udp{,6}."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return self.drops_at_stop
        return socket_drops(os.fstat(sock.fileno()).st_ino)

    async def stop(self) -> None:
        if self.transport is not None:
            self.drops_at_stop = self.kernel_drops()
            self.transport.close()
            self.transport = None


def socket_drops(inode: int) -> int | None:
    """The `drops` column of /proc/net/udp{,6} for a socket inode; None off Linux."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) >= 13 and parts[9] == str(inode):
                        return int(parts[12])
        except OSError:
            continue
    return None
