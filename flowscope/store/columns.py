"""A batch of flows as columns (numpy arrays, or one value shared by every row): what the
collector decodes, stored and handed to the hooks without a dict per flow.

Per-batch work is done per distinct value: addresses are turned to text once each
(`ips`), hooks aggregate over `numpy.unique`. `rows()` gives dict rows (built on demand)
for the hooks that have no column variant.
"""

from __future__ import annotations

import ipaddress
from itertools import pairwise
from typing import Any

import numpy as np

#: PER_MINUTE cells, as flows.PER_MINUTE stores them (minute start, s2d pkts, s2d bytes, d2s pkts, d2s bytes)
_COUNTERS = ("SRC2DST_PACKETS", "SRC2DST_BYTES", "DST2SRC_PACKETS", "DST2SRC_BYTES")


class FlowColumns:
    """`cols`: flows column name -> numpy array or shared value; FIRST_SEEN/LAST_SEEN in epoch ms."""

    def __init__(self, n: int, cols: dict[str, Any]):
        self.n = n
        self.cols = cols
        self._ips: dict[str, np.ndarray] = {}

    def full(self, name: str, default: Any = 0) -> np.ndarray:
        """The column as an array of n values."""
        c = self.cols.get(name, default)
        if isinstance(c, np.ndarray):
            return c
        return np.full(self.n, c, dtype=np.uint64 if isinstance(c, int) and c >= 0 else object)

    def shared(self, name: str) -> Any:
        """The value every row shares, or None when the rows differ."""
        c = self.cols.get(name)
        return None if isinstance(c, np.ndarray) else c

    def ips(self, side: str) -> np.ndarray:
        """SRC or DST address of each row as text (object array), each distinct address converted once."""
        if side not in self._ips:
            v4 = self.full("IP_PROTOCOL_VERSION") == 4
            out = np.empty(self.n, dtype=object)
            if v4.any():
                u, inv = np.unique(self.full(f"IPV4_{side}_ADDR")[v4], return_inverse=True)
                out[v4] = np.array([str(ipaddress.IPv4Address(int(a))) for a in u], dtype=object)[inv]
            if not v4.all():
                out[~v4] = self.full(f"IPV6_{side}_ADDR", "::")[~v4]
            self._ips[side] = out
        return self._ips[side]

    def per_minute(self) -> list[Any]:
        """PER_MINUTE of every row, spread like `writer.spread` (most rows lie in one minute: done at
        once; rows over several minutes one by one) -> (offsets, 5 cell columns)."""
        from flowscope.store.writer import spread

        first, last = self.full("FIRST_SEEN").astype(np.int64), self.full("LAST_SEEN").astype(np.int64)
        counters = [self.full(c).astype(np.uint64) for c in _COUNTERS]
        multi = np.flatnonzero((last // 60_000 > first // 60_000) & (last > first))
        sizes = np.ones(self.n, dtype=np.int64)
        spreads = {int(i): spread(first[i] / 1000, last[i] / 1000, tuple(int(c[i]) for c in counters))
                   for i in multi}
        for i, cells in spreads.items():
            sizes[i] = len(cells)
        offsets = np.zeros(self.n + 1, dtype=np.int32)
        np.cumsum(sizes, out=offsets[1:])
        starts = offsets[:-1]
        minute = np.empty(offsets[-1], dtype=np.uint32)
        cells = [np.empty(offsets[-1], dtype=np.uint64) for _ in _COUNTERS]
        minute[starts] = (last // 60_000) * 60
        for cell, c in zip(cells, counters):
            cell[starts] = c
        for i, spread_cells in spreads.items():
            at = slice(offsets[i], offsets[i + 1])
            minute[at] = [m for m, *_ in spread_cells]
            for k, cell in enumerate(cells):
                cell[at] = [c[k + 1] for c in spread_cells]
        return [offsets, minute, *cells]

    def rows(self) -> list[dict[str, Any]]:
        """The batch as dict rows (text timestamps as the JSON insert takes them), new ones each call."""
        from flowscope.store.backend import ms_text

        names = list(self.cols)
        values = []
        for name in names:
            if name == "PER_MINUTE":
                offsets, *parts = (p.tolist() for p in self.cols[name])
                cells = list(zip(*parts))
                values.append([cells[a:z] for a, z in pairwise(offsets)])
                continue
            c = self.full(name).tolist()
            if name in ("FIRST_SEEN", "LAST_SEEN"):
                c = [ms_text(v) for v in c]
            values.append(c)
        return [dict(zip(names, r)) for r in zip(*values)]
