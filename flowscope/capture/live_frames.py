"""Every frame of a live interface, counted by minute and EtherType (nfstream sees only IP).

A Linux packet socket (AF_PACKET, every protocol) reads a copy of each frame, in and out; on a
loopback interface each frame shows twice (outgoing and incoming), so outgoing copies are skipped
there, as libpcap does. Counts are handed over every `flush_s` seconds.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Callable

from flowscope.capture.frames import ETHERNET, FrameCounts, classify

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE  # tun devices: raw IP


def open_counter_socket(iface: str) -> socket.socket:
    """A packet socket on `iface` (raises OSError without CAP_NET_RAW or for an unknown interface)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    sock.settimeout(0.5)
    return sock


def count_frames(sock: socket.socket, stop: threading.Event, flush: Callable[[FrameCounts], None],
                 flush_s: float = 3.0) -> None:
    """Count frames until `stop` is set, calling `flush(counts)` with what each period saw."""
    buf = bytearray(128)  # the link and network headers are all classify() needs
    view = memoryview(buf)
    counts, last_flush = FrameCounts(), time.monotonic()
    try:
        while not stop.is_set():
            try:
                n, addr = sock.recvfrom_into(buf, len(buf), socket.MSG_TRUNC)
            except socket.timeout:
                n = 0
            except OSError as exc:
                if exc.errno not in (errno.ENETDOWN, errno.ENXIO):
                    raise
                stop.wait(1.0)  # the interface is down: count again once it is up
                continue
            if n:
                hatype, pkttype = addr[3], addr[2]
                if not (hatype == ARPHRD_LOOPBACK and pkttype == PACKET_OUTGOING):
                    linktype = 101 if hatype == ARPHRD_NONE else ETHERNET
                    etype, _ = classify(linktype, view[:min(n, len(buf))])
                    counts.add(int(time.time() // 60) * 60, etype, n)
            if time.monotonic() - last_flush >= flush_s:
                if counts.packets:
                    flush(counts)
                counts, last_flush = FrameCounts(), time.monotonic()
    finally:
        if counts.packets:
            flush(counts)
        sock.close()

