"""asyncio UDP listeners: one per `udp://host:port` URL, each with its INTERFACE_ID."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

RCVBUF = 32 * 1024 * 1024


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
        for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if opt is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
                break
            except OSError:
                continue
        sock.bind((host, port))
        sock.setblocking(False)
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

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
