"""The MCP resource `flowscope://packets/flow/{id}`: a flow's packets as a pcap file, with the same
scope and payload rules as get_flow_packets."""

from __future__ import annotations

import asyncio

from flowscope.services import packets as packets_svc

URI = "flowscope://packets/flow/{flow_id}"
DESCRIPTION = ("The packets of one flow as a libpcap file to save and open in Wireshark. Query ?offset=N skips "
               "packets, ?max_bytes=N caps the file (default and maximum are server settings). Non-admins get "
               "headers only unless an admin allows payload. Example: flowscope://packets/flow/1234567890")


async def flow_pcap(app, principal, flow_id: str, offset: int = 0, max_bytes: int = 0) -> bytes:
    """The pcap bytes; ValueError (shown as not-found) for a bad id, or a flow outside the scope."""
    if not flow_id.isdigit():
        raise ValueError("the flow id is a number, e.g. flowscope://packets/flow/1234567890")
    svc = packets_svc.service(app)
    limit = min(max_bytes or svc.settings.pcap_bytes, svc.settings.pcap_bytes_max)
    key = svc.flow(principal, int(flow_id))
    ext = await asyncio.to_thread(svc.extract, [key])
    data, _, _ = await asyncio.to_thread(svc.pcap, ext, max(offset, 0), limit, svc.may_see_payload(principal))
    return data
