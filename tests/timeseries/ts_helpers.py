"""Helpers for the timeseries tests: synthetic flows, PNG checks and independent SQL over `flows`.

The reference numbers here are written straight against `flows` (toStartOfInterval on LAST_SEEN,
UNION ALL of both ends for per-host figures), independently of the rollups and the query code.
"""

from __future__ import annotations

import io
import ipaddress
import random
from datetime import datetime, timedelta, timezone

APPS = [(91, 126, 5), (0, 5, 14), (0, 188, 5), (91, 124, 17), (0, 7, 5), (91, 212, 5), (0, 0, 0)]
SERVERS = ["8.8.8.8", "142.250.1.1", "10.0.0.5", "151.101.1.69", "192.168.1.1", "2001:db8::53"]


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def synthetic_flows(n: int = 2500, hours: int = 30, seed: int = 7, now: datetime | None = None) -> list[dict]:
    rnd = random.Random(seed)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    rows = []
    for i in range(n):
        end = now - timedelta(seconds=rnd.randint(0, hours * 3600), milliseconds=rnd.randint(0, 999))
        start = end - timedelta(seconds=rnd.randint(0, 400))
        v6 = rnd.random() < 0.1
        src = f"2001:db8::{rnd.randint(2, 9)}" if v6 else f"192.168.1.{rnd.randint(2, 40)}"
        dst = "2001:db8::53" if v6 else rnd.choice(SERVERS[:-1])
        master, proto, cat = rnd.choice(APPS)
        b1, b2 = int(rnd.expovariate(1 / 20000)), int(rnd.expovariate(1 / 90000))
        p1, p2 = b1 // 700 + 1, b2 // 900 + 1
        row = dict(
            FLOW_ID=i + 1, IP_PROTOCOL_VERSION=6 if v6 else 4, FIRST_SEEN=ts(start), LAST_SEEN=ts(end),
            PACKETS=p1 + p2, TOTAL_BYTES=b1 + b2, SRC2DST_BYTES=b1, DST2SRC_BYTES=b2, SRC2DST_PACKETS=p1,
            DST2SRC_PACKETS=p2, PROTOCOL=rnd.choice([6, 17]), IP_SRC_PORT=rnd.randint(1024, 65535),
            IP_DST_PORT=rnd.choice([443, 53, 80]), L7_PROTO=proto, L7_PROTO_MASTER=master, L7_CATEGORY=cat,
            SCORE=rnd.choice([0, 0, 0, 10, 60]), INTERFACE_ID=rnd.choice([0, 0, 1]),
            SRC_COUNTRY_CODE=rnd.choice(["", "IT"]), DST_COUNTRY_CODE=rnd.choice(["US", "IE", ""]),
            SRC_ASN=0, DST_ASN=rnd.choice([15169, 0, 54113]), FLOW_RISK=rnd.choice([0, 1, 8]),
        )
        if v6:
            row.update(IPV6_SRC_ADDR=src, IPV6_DST_ADDR=dst)
        else:
            row.update(IPV4_SRC_ADDR=int(ipaddress.IPv4Address(src)), IPV4_DST_ADDR=int(ipaddress.IPv4Address(dst)))
        rows.append(row)
    return rows


def check_png(png: bytes, min_w: int = 600, min_h: int = 300) -> tuple[int, int]:
    """Decode with matplotlib's reader; the image must be big enough and not blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import numpy as np

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png), format="png")
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (w, h)
    rgb = img[..., :3]
    non_white = (rgb < 0.97).any(axis=-1).mean()
    assert non_white > 0.01, f"image is almost blank ({non_white:.3%} non-white pixels)"
    assert len(np.unique((rgb.reshape(-1, 3) * 255).astype(int), axis=0)) > 20, "too few colours"
    return w, h


def scope_sql(principal, columns=("SRC_IP", "DST_IP")) -> str:
    return principal.sql(list(columns)) if principal is not None else "1"


RANGE = "LAST_SEEN >= {a:DateTime64(3, 'UTC')} AND LAST_SEEN < {b:DateTime64(3, 'UTC')}"


def rng(start: str, end: str) -> dict:
    return {"a": start, "b": end}


def ref_buckets(store, start: str, end: str, step: int, value: str = "sum(TOTAL_BYTES)", where: str = "1",
                principal=None) -> dict[str, float]:
    sql = (f"SELECT toString(toStartOfInterval(LAST_SEEN, toIntervalSecond({step}))) AS t, {value} "
           f"FROM flows WHERE {RANGE} AND ({where}) AND {scope_sql(principal)} GROUP BY t")
    return {r[0][:19]: r[1] for r in store.query(sql, rng(start, end)).rows}


def ref_host_buckets(store, start: str, end: str, step: int, host: str) -> dict[str, dict[str, int]]:
    sql = (f"SELECT toString(toStartOfInterval(t, toIntervalSecond({step}))) AS b, sum(sent), sum(rcvd), count() "
           f"FROM (SELECT LAST_SEEN AS t, SRC2DST_BYTES AS sent, DST2SRC_BYTES AS rcvd FROM flows "
           f"WHERE {RANGE} AND SRC_IP = {{h:String}} UNION ALL SELECT LAST_SEEN, DST2SRC_BYTES, SRC2DST_BYTES "
           f"FROM flows WHERE {RANGE} AND DST_IP = {{h:String}}) GROUP BY b")
    rows = store.query(sql, rng(start, end) | {"h": host}).rows
    return {r[0][:19]: {"bytes_sent": r[1], "bytes_rcvd": r[2], "flows": r[3]} for r in rows}


def ref_group(store, start: str, end: str, key: str, value: str = "sum(TOTAL_BYTES)", principal=None,
              where: str = "1") -> dict[str, float]:
    sql = (f"SELECT toString({key}) AS k, {value} FROM flows WHERE {RANGE} AND ({where}) AND {scope_sql(principal)} "
           f"GROUP BY k")
    return {r[0]: r[1] for r in store.query(sql, rng(start, end)).rows}


def ref_host_totals(store, start: str, end: str, principal=None) -> dict[str, int]:
    side = scope_sql(principal, ("h",))
    sql = (f"SELECT h, sum(b) FROM (SELECT SRC_IP AS h, TOTAL_BYTES AS b FROM flows WHERE {RANGE} UNION ALL "
           f"SELECT DST_IP, TOTAL_BYTES FROM flows WHERE {RANGE}) WHERE {side} GROUP BY h")
    return {r[0]: r[1] for r in store.query(sql, rng(start, end)).rows}


def app_name_sql() -> str:
    name = "dictGetOrDefault('ndpi_protocols', 'name', toUInt64({c}), toString({c}))"
    return (f"if(L7_PROTO_MASTER != 0 AND L7_PROTO_MASTER != L7_PROTO, concat({name.format(c='L7_PROTO_MASTER')}, "
            f"'.', {name.format(c='L7_PROTO')}), {name.format(c='L7_PROTO')})")


def table_map(out, value_col: int = 2) -> dict[tuple[str, str], float]:
    return {(r[0], r[1]): r[value_col] for r in out.rows}


def with_other(ref: dict[str, float], items: list[list]) -> None:
    """Ranked items (label, value, ...) equal the reference: top ones exactly, 'other' = the rest."""
    top = {r[0]: r[1] for r in items if r[0] != "other"}
    for k, v in top.items():
        assert ref.get(k) == v, (k, v, ref.get(k))
    ranked = sorted(ref.values(), reverse=True)
    assert sorted(top.values(), reverse=True) == ranked[:len(top)]
    other = next((r[1] for r in items if r[0] == "other"), 0)
    assert other == sum(ref.values()) - sum(top.values())
