"""A byte-transparent HTTP proxy that adds `Authorization: Token …` to each request, for MCP
clients that cannot send headers (the conformance runner). Host, Origin and every other header
pass unchanged, so DNS-rebinding checks still see what the client sent; each request goes on its
own upstream connection (`Connection: close`), so streams (SSE) pass as they come.

    python token_proxy.py LISTEN_PORT UPSTREAM_PORT TOKEN
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _handle(client_r, client_w, upstream_port: int, token: str) -> None:
    try:
        head = await client_r.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        client_w.close()
        return
    lines = head[:-4].split(b"\r\n")
    keep = [line for line in lines[1:] if not line.lower().startswith((b"authorization:", b"connection:"))]
    head = b"\r\n".join([lines[0], *keep, b"Authorization: Token " + token.encode(), b"Connection: close"])
    up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
    up_w.write(head + b"\r\n\r\n")
    await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))


async def main(listen_port: int, upstream_port: int, token: str) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, upstream_port, token), "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
