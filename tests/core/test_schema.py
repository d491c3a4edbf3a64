"""The schema registry: every domain's tables are registered, documented and applied in order."""

from __future__ import annotations

from flowscope.store import schema
from flowscope.store.schema import Column, columns
from flowscope.store.tables import MODULES

DOMAINS = {"flows", "audit", "alerts", "monitoring", "timeseries", "host_days", "collector", "hosts", "snmp", "packets"}


def test_each_domain_has_its_module():
    assert {m.__name__.rsplit(".", 1)[-1] for m in MODULES} == DOMAINS
    owner: dict[str, str] = {}
    for m in MODULES:  # flows first; later modules may import its tables
        for t in vars(m).values():
            if isinstance(t, schema.Table):
                owner.setdefault(t.name, m.__name__)
    assert owner["flows"].endswith(".flows") and owner["snmp_devices"].endswith(".snmp")
    assert owner["audit_log"].endswith(".audit") and owner["assets"].endswith(".hosts")


def test_old_names_still_import():
    from flowscope.store.schema import FLOWS, TABLES, TS_ROLLUPS

    assert TABLES["flows"] is FLOWS is schema.FLOWS and "host" in TS_ROLLUPS
    assert len(TABLES) == 47  # with alert_acks, flow_packets, frame_counters, rollup_state, schema_state, scope_ts_*


def test_every_table_and_column_is_documented():
    for table in schema.TABLES.values():
        assert table.comment, table.name
        assert all(c.comment for c in table.columns), table.name


def test_statements_create_tables_before_what_uses_them():
    ddl = schema.statements()
    after_tables = set(schema.views())  # views, and what must follow every table (ALTERs, the rollup feed)
    kinds = ["view" if s in after_tables else "dictionary" if "DICTIONARY" in s.split("(")[0] else "table"
             for s in ddl]
    first_view = kinds.index("view")
    assert "table" not in kinds[first_view:] and kinds[:2] == ["table", "table"] and kinds[2:4] == ["dictionary"] * 2
    assert len([k for k in kinds if k == "table"]) == len(schema.TABLES)


def test_columns_text_table():
    assert columns("""
        time      DateTime64(3, 'UTC')                  When it happened
        bytes     SimpleAggregateFunction(sum, UInt64)  Bytes, summed on merge
        name      String                                Its name
    """) == (Column("time", "DateTime64(3, 'UTC')", "When it happened"),
             Column("bytes", "SimpleAggregateFunction(sum, UInt64)", "Bytes, summed on merge"),
             Column("name", "String", "Its name"))
