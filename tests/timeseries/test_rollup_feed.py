"""Rollups filled off the insert path equal the raw rows they summarise: after batches stored
while a fill runs, after a restart (no batch counted twice), and after upgrading a store whose
views rolled up inside every insert. The stored-flows counter comes from the store."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from flowscope.store import Store, schema

from rollup_check import assert_rollups_equal_flows
from ts_helpers import synthetic_flows

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


def test_batches_stored_during_fills_are_rolled_up_once(tmp_path):
    store = Store(str(tmp_path))
    store.migrate()
    rows = synthetic_flows(n=3000, hours=6, now=NOW)
    for i, r in enumerate(rows):
        r["FLOW_ID"] = i + 1
    stop = threading.Event()

    def fill():
        while not stop.is_set():
            store.rollups.catch_up()

    filler = threading.Thread(target=fill)
    filler.start()
    for i in range(0, 2000, 100):  # inserts race with fills
        store.insert_dicts("flows", rows[i:i + 100])
    stop.set()
    filler.join()
    assert store.rollups.pending
    assert_rollups_equal_flows(store)  # reading a rollup catches up first
    assert not store.rollups.pending
    # nothing happens in an insert: rollups stay behind until a fill or a read
    store.insert_dicts("flows", rows[2000:2500])
    assert store.query("SELECT sum(flows) FROM ts_interface_1m", lane="write").scalar() == 2000
    store.close()  # closing rolls up what is pending

    again = Store(str(tmp_path))  # a restart resumes from the stored watermark
    again.migrate()
    assert not again.rollups.pending and again.rollups.last_seq == 21
    assert again.flows_stored == 2500  # get_interfaces' flows_stored: history, not this process's writes
    again.insert_dicts("flows", rows[2500:])
    assert again.flows_stored == 3000
    assert again.rollups.catch_up() == 500
    assert again.query("SELECT count() FROM flows").scalar() == 3000
    assert_rollups_equal_flows(again)
    again.close()


def test_upgrade_drops_views_that_rolled_up_inside_inserts(tmp_path):
    store = Store(str(tmp_path))
    store.migrate()
    # the old layout: a view feeding a rollup on every insert into flows
    store.command("DROP VIEW mv_ts_interface_1m")
    store.command("CREATE MATERIALIZED VIEW mv_ts_interface_1m TO ts_interface_1m AS SELECT toStartOfMinute(LAST_SEEN) "
                  "AS time, INTERFACE_ID, sum(TOTAL_BYTES) AS bytes, sum(PACKETS) AS packets, count() AS flows, "
                  "toUInt64(0) AS drops, now() AS written FROM flows GROUP BY time, INTERFACE_ID")
    store.command("DROP TABLE schema_state")  # as a version before the schema digest left it
    store.close()
    store = Store(str(tmp_path))
    store.migrate()
    create = store.query("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
                         "AND name = 'mv_ts_interface_1m'").scalar()
    assert schema.ROLLUP_FEED in create
    store.insert_dicts("flows", synthetic_flows(n=300, hours=2, now=NOW))
    assert_rollups_equal_flows(store)
    store.close()


def test_upgrade_fills_new_rollups_and_drops_unstored_resolutions(tmp_path):
    """A store from before host_days and with per-host minute rollups (ts_host_1m -> 5m -> 1h):
    after the upgrade host_days holds every stored flow, the minute tables are gone, ts_host_1h
    is fed from the feed, and every rollup equals `flows`, also for batches stored afterwards."""
    store = Store(str(tmp_path))
    store.migrate()
    rows = synthetic_flows(n=1200, hours=30, now=NOW)
    store.insert_dicts("flows", rows[:800])
    store.rollups.catch_up()
    store.command("DROP VIEW mv_host_days")
    store.command("DROP TABLE host_days")
    store.command("DROP VIEW mv_ts_host_1h")  # the old chain: feed -> 1m -> 5m -> 1h
    for res, src in (("1m", None), ("5m", "ts_host_1m")):
        store.command(f"CREATE TABLE ts_host_{res} AS ts_host_1h")
        if src:
            store.command(f"CREATE MATERIALIZED VIEW mv_ts_host_{res} TO ts_host_{res} AS SELECT * FROM {src}")
    store.command("CREATE MATERIALIZED VIEW mv_ts_host_1h TO ts_host_1h AS SELECT * FROM ts_host_5m")
    store.close()

    store = Store(str(tmp_path))
    store.migrate()
    names = {r[0] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows}
    assert "host_days" in names and not names & {"ts_host_1m", "ts_host_5m", "mv_ts_host_1m", "mv_ts_host_5m"}
    assert store.query("SELECT sum(flows_as_client) FROM host_days").scalar() == 800
    store.insert_dicts("flows", rows[800:])
    assert_rollups_equal_flows(store)
    assert store.query("SELECT sum(flows_as_server) FROM host_days").scalar() == 1200
    store.close()
