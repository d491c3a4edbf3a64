#!/usr/bin/env python3
"""CI / runbook check: fail the pipeline when the network shows traffic it must not.

    FLOWSCOPE_URL=http://127.0.0.1:3000/mcp FLOWSCOPE_TOKEN=fs_… \
        python examples/ci_check.py --no-flows-to 203.0.113.0/24 --since 2024-05-01T10:00:00Z

Connects with a (read-only) token, asks flowscope for flows to the network since the deploy and
exits 1 when there are any (listing the first ones), 0 when there are none, 2 when the check
could not run. Use a read-only token: the check never changes anything.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
from datetime import datetime, timezone

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


def flows_to_sql(network: str, since: str) -> str:
    # Both values are normalised before use (ipaddress, datetime): no request text reaches the SQL.
    net = ipaddress.ip_network(network, strict=False)
    ts = datetime.fromisoformat(since.replace("Z", "+00:00"))
    epoch = int((ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp())
    return (f"SELECT FLOW_ID, SRC_IP, DST_IP, IP_DST_PORT, L7_PROTO_NAME, TOTAL_BYTES, FIRST_SEEN FROM flows "
            f"WHERE isIPAddressInRange(DST_IP, '{net}') AND LAST_SEEN >= toDateTime64({epoch}, 3, 'UTC') "
            "ORDER BY FIRST_SEEN LIMIT 20")


async def check(url: str, token: str, network: str, since: str, sql: str) -> int:
    async with httpx2.AsyncClient(headers={"Authorization": f"Token {token}"}, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                res = await session.call_tool("query", {"sql": sql})
    if res.is_error:
        print(f"check could not run: {res.content[0].text}", file=sys.stderr)
        return 2
    rows = res.structured_content["rows"]
    if not rows:
        print(f"OK: no flows to {network} since {since}")
        return 0
    print(f"FAIL: {len(rows)}{'+' if res.structured_content['truncated'] else ''} flows to {network} since {since}:")
    for flow_id, src, dst, port, app, nbytes, first in rows:
        print(f"  flow {flow_id}: {src} -> {dst}:{port} {app} {nbytes} B at {first}")
    return 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-flows-to", required=True, metavar="CIDR", help="network that must see no traffic")
    p.add_argument("--since", required=True, metavar="ISO_TIME", help="e.g. the deploy time, 2024-05-01T10:00:00Z")
    p.add_argument("--url", default=os.environ.get("FLOWSCOPE_URL", "http://127.0.0.1:3000/mcp"))
    args = p.parse_args()
    token = os.environ.get("FLOWSCOPE_TOKEN")
    if not token:
        print("set FLOWSCOPE_TOKEN (flowscope token create USER --read-only)", file=sys.stderr)
        return 2
    try:
        sql = flows_to_sql(args.no_flows_to, args.since)
    except ValueError as exc:
        print(f"bad argument: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(check(args.url, token, args.no_flows_to, args.since, sql))


if __name__ == "__main__":
    sys.exit(main())
