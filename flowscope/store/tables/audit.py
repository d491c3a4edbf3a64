"""The append-only audit log of write tool calls (written by the toolkit)."""

from __future__ import annotations

from flowscope.store.schema import Table, columns, register

AUDIT_LOG = register(Table(
    name="audit_log",
    comment="Append-only record of every write tool call: who, which token, which tool, masked parameters.",
    columns=columns("""
            time      DateTime64(3, 'UTC')    When the call was made
            user      String                  User name
            token_id  String                  Id of the token used (see flowscope token list)
            tool      LowCardinality(String)  Tool name
            params    String                  Parameters as JSON, secrets masked
            outcome   String                  ok, or the reason it was refused
        """),
    order_by="time",
    admin_only=True,
))
