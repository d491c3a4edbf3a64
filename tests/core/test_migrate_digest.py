"""`Store.migrate` applies the schema only when it changed (a faster start), and always when it did."""

from __future__ import annotations

from flowscope.store import Store, schema


def _applied(store) -> int:
    return int(store.query("SELECT count() FROM schema_state").scalar())


def _exists(store, name: str) -> bool:
    return bool(store.query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
                            {"n": name}).scalar())


def test_unchanged_schema_is_applied_once(tmp_path):
    store = Store(str(tmp_path))
    store.migrate()
    store.command("DROP VIEW mv_ts_interface_1m")  # a change the next migrate would undo if it ran
    assert _applied(store) == 1
    store.close()
    store = Store(str(tmp_path))
    store.migrate()
    assert _applied(store) == 1 and not _exists(store, "mv_ts_interface_1m")
    store.close()


def test_changed_schema_and_missing_tables_are_applied_again(tmp_path, monkeypatch):
    store = Store(str(tmp_path))
    store.migrate()
    store.close()
    monkeypatch.setattr(schema, "_VIEWS", schema.views() + ["CREATE VIEW IF NOT EXISTS digest_probe AS SELECT 1 AS one"])
    store = Store(str(tmp_path))
    store.migrate()  # a new view: the digest differs
    assert _exists(store, "digest_probe") and _applied(store) == 2
    store.command("DROP TABLE assets")
    store.command("DROP VIEW mv_hourly_flows")
    store.close()
    store = Store(str(tmp_path))
    store.migrate()  # same digest, but a table is gone: everything is applied again
    assert _exists(store, "assets") and _exists(store, "mv_hourly_flows") and _applied(store) == 3
    store.close()


def test_store_from_before_the_digest_is_upgraded(tmp_path):
    store = Store(str(tmp_path))
    store.migrate()
    store.command("DROP TABLE schema_state")
    store.command("DROP VIEW mv_ts_interface_1m")
    store.close()
    store = Store(str(tmp_path))
    store.migrate()
    assert _exists(store, "mv_ts_interface_1m") and _applied(store) == 1
    store.close()
