"""The collector keeps every record of a router's IPFIX at 100 k records/s for 60 s, counted end to
end (records offered = rows in `flows`), with every loss counter at zero; the rollups, filled off the
insert path while the load runs (as the server fills them), equal the raw rows afterwards."""

from __future__ import annotations

from collector_harness import payload
from rollup_check import assert_rollups_equal_flows

from flowscope.collector.loadgen import Load, send_in_process
from flowscope.store.rollups import RollupFiller

RATE = 100_000
SECONDS = 60


def test_100k_records_per_second_for_60_s_none_lost(collector, store):
    load = Load(payload("ipfix_test_mikrotik_tpl.dat"), 258)  # a MikroTik router's IPv4 template
    filler = RollupFiller(store.rollups, 2.0)
    filler.start()
    try:
        sent = send_in_process(load, collector.port(), RATE, SECONDS)
        collector.flush()
    finally:
        filler.stop()
    # the pacing held: the offered load is what the test claims
    assert sent["rate"] >= 0.95 * RATE and sent["seconds"] >= 0.99 * SECONDS, sent
    status = collector.fc.status()
    losses = {k: status[k] for k in ("socket_drops", "queue_dropped", "rows_dropped", "rows_failed")}
    assert losses == dict.fromkeys(losses, 0), (losses, sent)
    stored = int(store.query("SELECT count() FROM flows").scalar())
    assert stored == sent["records"] == status["rows_stored"], (stored, sent)
    [iface] = collector.fc.interfaces()
    assert (iface["flows"], iface["drops"]) == (stored, 0)
    assert_rollups_equal_flows(store)
