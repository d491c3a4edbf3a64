"""Where each flow's packets are kept (capture files, live interfaces' retention rings)."""

from __future__ import annotations

from flowscope.store.schema import C, Table, register

FLOW_PACKETS = register(Table(
    name="flow_packets",
    comment="Where each metered flow's packets are kept: the capture file it came from, or the "
            "retention ring of the live interface it was seen on. get_flow_packets reads it.",
    columns=(
        C("FLOW_ID", "UInt64", "FLOW_ID of the flow in `flows`"),
        C("FIRST_SEEN", "DateTime64(3, 'UTC')", "Time of the flow's first packet"),
        C("LAST_SEEN", "DateTime64(3, 'UTC')", "Time of the flow's last packet"),
        C("STORE_KIND", "LowCardinality(String)", "file (a capture file) or ring (a live interface's ring)"),
        C("STORE", "LowCardinality(String)", "Absolute path of the capture file, or the ring's directory"),
        C("INTERFACE", "LowCardinality(String)", "Live interface name (ring) or empty"),
        C("FILE_SIZE", "UInt64", "Size of the capture file when it was metered (0 for rings)"),
        C("FILE_MTIME", "Float64", "Modification time of the capture file when it was metered (0 for rings)"),
    ),
    order_by="FLOW_ID",
    admin_only=True,
))
