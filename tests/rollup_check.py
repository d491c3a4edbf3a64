"""The rollups against the raw rows they summarise (every test that stores flows can ask)."""

from __future__ import annotations

from flowscope.store import schema


def _assert_rollup_equals(store, rollup, table, where: str = "1", flows_where: str = "1") -> None:
    """Rows of `rollup`'s tables (named by `table(res)`, rows matching `where`) at every resolution,
    per bucket and key, against SQL over the `flows` matching `flows_where`."""
    metrics = [m for m, _e, _c in rollup.metrics if m != "drops"]
    keys = ", ".join(f"`{d.name}`" for d in rollup.dims)
    sums = ", ".join(f"sum(`{m}`)" for m in metrics)
    raw = rollup.rows_sql(flows_where)
    for res, secs, _days in schema.TS_RESOLUTIONS:
        if res not in rollup.resolutions:
            continue
        bucket = f"toStartOfInterval(time, INTERVAL {secs} SECOND)"
        got = store.query(f"SELECT toString(time) AS t, {keys}, {sums} FROM {table(res)} WHERE {where} "
                          f"GROUP BY t, {keys} HAVING {sums.replace(', ', ' + ')} > 0 ORDER BY t, {keys}").rows
        want = store.query(f"SELECT toString({bucket}) AS t, {keys}, {sums} FROM ({raw}) GROUP BY t, {keys} "
                           f"HAVING {sums.replace(', ', ' + ')} > 0 ORDER BY t, {keys}").rows
        assert got == want, (table(res), where)


def assert_scope_rollups_equal_flows(store, principal) -> None:
    """A restricted scope's own rollups against SQL over the flows of its networks."""
    from flowscope.store.scopes import scope_id

    for rollup in schema.SCOPE_ROLLUPS.values():
        _assert_rollup_equals(store, rollup, rollup.scope_table, f"scope = {scope_id(principal)}",
                              principal.scope.flows_sql())


def assert_rollups_equal_flows(store) -> None:
    """Every rollup at every resolution, per bucket and key, against SQL over `flows`."""
    for rollup in schema.TS_ROLLUPS.values():
        _assert_rollup_equals(store, rollup, rollup.table)
    hf = store.query("SELECT toString(FLOW_TIME), SRC_IP, DST_IP, IP_DST_PORT, sum(NUM_FLOWS), sum(TOTAL_BYTES), "
                     "groupBitOr(FLOW_RISK) FROM hourly_flows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4").rows
    ref = store.query("SELECT toString(toStartOfHour(LAST_SEEN)), SRC_IP, DST_IP, IP_DST_PORT, count(), "
                      "sum(TOTAL_BYTES), groupBitOr(FLOW_RISK) FROM flows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4").rows
    assert hf == ref
    hd = store.query("SELECT toString(day), ip, sum(flows_as_client + flows_as_server), sum(bytes_sent), "
                     "max(LAST_SEEN) FROM host_days GROUP BY 1, 2 ORDER BY 1, 2").rows
    ref = store.query("SELECT toString(toStartOfDay(l)), ip, count(), sum(s), max(l) FROM (SELECT LAST_SEEN AS l, "
                      "SRC_IP AS ip, SRC2DST_BYTES AS s FROM flows UNION ALL SELECT LAST_SEEN, DST_IP, DST2SRC_BYTES "
                      "FROM flows) GROUP BY 1, 2 ORDER BY 1, 2").rows
    assert hd == ref
