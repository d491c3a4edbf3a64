"""Restricted scopes' own rollups (scope_ts_*): equal to the flows of their networks after a
backfill racing with inserts and fills, made again after a restart, and readable by their scope
only (SQL of another scope sees none of their rows)."""

from __future__ import annotations

import ipaddress
import threading
from datetime import datetime, timezone

import pytest

from flowscope.auth import Principal
from flowscope.store import Store
from flowscope.store.guard import GuardError, run_guarded
from flowscope.store.scopes import scope_id

from rollup_check import assert_rollups_equal_flows, assert_scope_rollups_equal_flows
from ts_helpers import synthetic_flows

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
A = Principal("a", "user", allowed_networks=(ipaddress.ip_network("192.168.1.0/28"),))
B = Principal("b", "user", allowed_networks=(ipaddress.ip_network("192.168.1.16/28"), ipaddress.ip_network("2001:db8::/64")))


def test_backfill_racing_with_inserts_counts_every_flow_once(tmp_path):
    store = Store(str(tmp_path))
    store.migrate()
    rows = synthetic_flows(n=4000, hours=6, now=NOW)
    store.insert_dicts("flows", rows[:1000])
    store.rollups.catch_up()
    stop = threading.Event()

    def write():  # batches stored and fed while the scopes are made and backfilled
        for i in range(1000, 3000, 100):
            store.insert_dicts("flows", rows[i:i + 100])
            store.rollups.catch_up()
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not stop.is_set():
        store.scopes.for_principal(A)
        store.scopes.for_principal(B)
        store.scopes.reset()  # drops views and rows: made and backfilled again next time
    writer.join()
    store.scopes.for_principal(A)
    store.insert_dicts("flows", rows[3000:3500])  # after A, before B: both must count them once
    store.scopes.for_principal(B)
    store.insert_dicts("flows", rows[3500:])
    for who in (A, B):
        assert_scope_rollups_equal_flows(store, who)  # reads catch up first
    assert_rollups_equal_flows(store)
    n = store.query(f"SELECT sum(flows) FROM scope_ts_interface_1h WHERE scope = {scope_id(A)}").scalar()
    assert 0 < n < 4000
    store.close()

    again = Store(str(tmp_path))  # a restart drops the scope rollups; first use makes them again
    again.migrate()
    assert again.query("SELECT count() FROM scope_ts_application_1m").scalar() == 0
    again.scopes.for_principal(B)
    again.insert_dicts("flows", synthetic_flows(n=300, hours=1, seed=9, now=NOW))
    assert_scope_rollups_equal_flows(again, B)
    again.close()


@pytest.fixture  # one embedded database per process at a time: closed before the next test opens its own
def app(tmp_path):
    from flowscope.app import App
    from flowscope.config import Config

    a = App(Config(data_dir=str(tmp_path)))
    a.store.insert_dicts("flows", synthetic_flows(n=1500, hours=4, now=NOW))
    yield a
    a.store.close()


def test_a_scope_reads_only_its_own_rows(app):
    app.store.scopes.for_principal(A)
    app.store.scopes.for_principal(B)
    ids = {r[0] for r in app.store.query("SELECT DISTINCT scope FROM scope_ts_application_1m").rows}
    assert ids == {scope_id(A), scope_id(B)}
    for who, other in ((A, B), (B, A)):
        mine = run_guarded(app, who, "SELECT DISTINCT scope FROM scope_ts_interface_1m").rows
        assert mine == [[scope_id(who)]]
        total = run_guarded(app, who, "SELECT sum(flows) FROM scope_ts_interface_5m").rows[0][0]
        ref = app.store.query(f"SELECT count() FROM flows WHERE {who.scope.flows_sql()}").scalar()
        assert total == ref
        # naming another scope's rows, or the base table with a database, shows nothing of them
        sql = f"SELECT count() FROM scope_ts_application_1h WHERE scope = {scope_id(other)}"
        assert run_guarded(app, who, sql).rows == [[0]]
        with pytest.raises(GuardError):
            run_guarded(app, who, "SELECT count() FROM default.scope_ts_application_1h")
        with pytest.raises(GuardError):
            run_guarded(app, who, f"SELECT count() FROM mv_for_scope_{scope_id(other):016x}_interface")
        tables = {r[0] for r in run_guarded(app, who, "SELECT name FROM system.tables").rows}
        assert "scope_ts_interface_1m" in tables and not any(t.startswith("mv_for_scope_") for t in tables)
