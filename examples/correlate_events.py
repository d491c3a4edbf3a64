#!/usr/bin/env python3
"""Custom-agent skeleton: correlate an outside event list with the flows flowscope saw.

    FLOWSCOPE_URL=http://127.0.0.1:3000/mcp FLOWSCOPE_TOKEN=fs_… \
        python examples/correlate_events.py events.json [--window 300]

events.json holds SIEM-style events: [{"host": "10.0.0.5", "time": "2024-05-01T10:00:00Z",
"type": "edr_alert"}, ...]. For each event the agent asks for the host's riskiest flows in
[time - window, time + window] and decides whether the network confirms it. `decide` is where an
LLM or your own rules go. Prints one JSON report on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


def window(time: str, seconds: int) -> tuple[str, str]:
    t = datetime.fromisoformat(time.replace("Z", "+00:00"))
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return ((t - timedelta(seconds=seconds)).astimezone(timezone.utc).strftime(fmt),
            (t + timedelta(seconds=seconds)).astimezone(timezone.utc).strftime(fmt))


def decide(event: dict, flows: list[dict]) -> dict:
    """Replace with an LLM call or your own rules; this one says what the flows show."""
    risky = [f for f in flows if f["score"] or f["flow_risk"]]
    verdict = "confirmed" if risky else "network activity" if flows else "no network activity"
    return {"verdict": verdict, "flows": len(flows), "risky_flows": len(risky),
            "peers": sorted({f["dst_ip"] if f["src_ip"] == event["host"] else f["src_ip"] for f in flows}),
            "applications": sorted({f["application"] for f in flows})}


async def correlate(url: str, token: str, events: list[dict], seconds: int) -> list[dict]:
    report = []
    async with httpx2.AsyncClient(headers={"Authorization": f"Token {token}"}, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for event in events:
                    begin, end = window(event["time"], seconds)
                    res = await session.call_tool("get_historical_flow", {
                        "host": event["host"], "begin": begin, "end": end, "sort": "score", "limit": 50})
                    if res.is_error:
                        report.append({**event, "error": res.content[0].text})
                        continue
                    flows = res.structured_content["flows"]
                    report.append({**event, "begin": begin, "end": end, **decide(event, flows),
                                   "flow_ids": [f["flow_id"] for f in flows]})
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("events", help="JSON file: a list of {host, time, type}")
    p.add_argument("--window", type=int, default=300, help="seconds before and after each event (default 300)")
    p.add_argument("--url", default=os.environ.get("FLOWSCOPE_URL", "http://127.0.0.1:3000/mcp"))
    args = p.parse_args()
    token = os.environ.get("FLOWSCOPE_TOKEN")
    if not token:
        print("set FLOWSCOPE_TOKEN (flowscope token create USER --read-only)", file=sys.stderr)
        return 2
    with open(args.events) as fh:
        events = json.load(fh)
    print(json.dumps(asyncio.run(correlate(args.url, token, events, args.window)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
