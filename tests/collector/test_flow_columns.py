"""A collected batch as columns gets the same PER_MINUTE as the dict rows path gives each flow."""

from __future__ import annotations

import numpy as np

from flowscope.store.columns import FlowColumns
from flowscope.store.writer import fill_per_minute


def test_per_minute_of_columns_equals_the_rows_spread():
    rng = np.random.default_rng(7)
    n = 2000
    first = 1_700_000_000_000 + rng.integers(0, 600_000, n)
    last = first + rng.choice([0, 1, 999, 59_000, 61_000, 250_000], n)
    batch = FlowColumns(n, {"FIRST_SEEN": first, "LAST_SEEN": last, "IP_PROTOCOL_VERSION": 4,
                            "SRC2DST_PACKETS": rng.integers(0, 10**6, n).astype(np.uint64),
                            "SRC2DST_BYTES": rng.integers(0, 10**12, n).astype(np.uint64),
                            "DST2SRC_PACKETS": 0, "DST2SRC_BYTES": rng.integers(0, 10**9, n).astype(np.uint64)})
    rows = batch.rows()
    fill_per_minute(rows)
    batch.cols["PER_MINUTE"] = batch.per_minute()
    got = [[tuple(c) for c in r["PER_MINUTE"]] for r in batch.rows()]
    assert got == [[tuple(c) for c in r["PER_MINUTE"]] for r in rows]
    assert sum(len(g) > 1 for g in got) > n // 4  # many flows span minutes
