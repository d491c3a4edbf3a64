"""NetFlow v9 / IPFIX templates, compiled into fast record decoders, and the cache that
keeps them per (exporter, observation domain / source id) together with data sets that
arrived before their template."""

from __future__ import annotations

import struct
import time
from collections import deque
from typing import Any, Callable

from flowscope.collector.fields import V9_SCOPE, lookup

VARLEN = 65535
_UINT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _int_be(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _text(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()


def _convert(kind: str, length: int) -> tuple[str, Callable[[bytes], Any] | None] | None:
    """(struct code, converter) for a fixed-length field; None when it must be skipped."""
    if kind == "u":
        if length in _UINT:
            return _UINT[length], None
        if 0 < length <= 8:
            return f"{length}s", _int_be
        return None
    if kind == "ip4":
        return ("I", None) if length == 4 else None
    if kind == "ip6":
        return ("16s", None) if length == 16 else None
    if kind == "mac":
        return (f"{length}s", _int_be) if 0 < length <= 8 else None
    if kind == "str":
        return (f"{length}s", _text) if length > 0 else None
    if kind == "raw":
        return (f"{length}s", bytes) if length > 0 else None
    return None


def _var_convert(kind: str, value: bytes) -> Any:
    n = len(value)
    if kind == "u":
        return int.from_bytes(value, "big") if 0 < n <= 8 else None
    if kind == "ip4":
        return int.from_bytes(value, "big") if n == 4 else None
    if kind == "ip6":
        return bytes(value) if n == 16 else None
    if kind == "mac":
        return int.from_bytes(value, "big") if 0 < n <= 8 else None
    if kind == "str":
        return _text(bytes(value))
    return bytes(value)


class Template:
    """One template: its fields and a compiled decoder for its data records."""

    __slots__ = ("tid", "fields", "options", "scope_count", "record_len", "variable",
                 "_struct", "_keys", "_convs", "_var_fields", "learned", "plan")

    def __init__(self, tid: int, fields: tuple[tuple[int, int, int], ...], *, options: bool = False,
                 scope_count: int = 0, v9: bool = False):
        self.tid = tid
        self.fields = fields            # (field id, length, enterprise number)
        self.options = options
        self.scope_count = scope_count
        self.learned = time.time()
        self.plan = None                # flowscope.collector.columnar's plan, made on first use
        self.variable = any(length == VARLEN for _, length, _ in fields)
        self.record_len = sum(length for _, length, _ in fields if length != VARLEN)
        infos = []
        for i, (fid, length, pen) in enumerate(fields):
            if options and v9 and i < scope_count:
                info = V9_SCOPE.get(fid)
            else:
                info = lookup(fid, pen, v9)
            infos.append(info)
        self._var_fields = [(info[0] if info else None, info[1] if info else None, length)
                            for info, (_, length, _) in zip(infos, fields)]
        self._struct = None
        self._keys: tuple[str, ...] = ()
        self._convs: tuple[tuple[str, Callable], ...] = ()
        if not self.variable and self.record_len > 0:
            fmt, keys, convs, skip = ["!"], [], [], 0
            for info, (_, length, _) in zip(infos, fields):
                conv = _convert(info[1], length) if info else None
                if conv is None or info[0] in keys:
                    skip += length
                    continue
                if skip:
                    fmt.append(f"{skip}x")
                    skip = 0
                fmt.append(conv[0])
                keys.append(info[0])
                if conv[1] is not None:
                    convs.append((info[0], conv[1]))
            if skip:
                fmt.append(f"{skip}x")
            self._struct = struct.Struct("".join(fmt))
            self._keys = tuple(keys)
            self._convs = tuple(convs)

    def same_as(self, other: "Template") -> bool:
        return (self.fields == other.fields and self.options == other.options
                and self.scope_count == other.scope_count)

    def decode(self, body: bytes | memoryview) -> list[dict[str, Any]]:
        """Every data record in a set body; trailing padding and truncated records are ignored."""
        if self._struct is not None:
            n = len(body) // self.record_len
            if n <= 0:
                return []
            keys, convs = self._keys, self._convs
            recs = [dict(zip(keys, vals)) for vals in self._struct.iter_unpack(body[:n * self.record_len])]
            if convs:
                for r in recs:
                    for k, f in convs:
                        r[k] = f(r[k])
            return recs
        if self.variable:
            return self._decode_variable(bytes(body))
        return []  # every field has length 0: nothing to read

    def _decode_variable(self, body: bytes) -> list[dict[str, Any]]:
        recs = []
        end = len(body)
        pos = 0
        min_len = max(1, self.record_len)
        while end - pos >= min_len:
            rec: dict[str, Any] = {}
            ok = True
            for key, kind, length in self._var_fields:
                if length == VARLEN:
                    if pos >= end:
                        ok = False
                        break
                    length = body[pos]
                    pos += 1
                    if length == 255:
                        if pos + 2 > end:
                            ok = False
                            break
                        length = (body[pos] << 8) | body[pos + 1]
                        pos += 2
                if pos + length > end:
                    ok = False
                    break
                if key is not None and length and key not in rec:
                    val = _var_convert(kind, body[pos:pos + length])
                    if val is not None:
                        rec[key] = val
                pos += length
            if not ok:
                break
            recs.append(rec)
        return recs


class TemplateCache:
    """Templates of one exporter, keyed by (observation domain / source id, template id),
    plus data sets waiting for a template (bounded in count and age)."""

    def __init__(self, pending_max_sets: int = 2000, pending_max_age: float = 60.0):
        self.templates: dict[tuple[int, int], Template] = {}
        self.pending: dict[tuple[int, int], deque] = {}
        self.pending_count = 0
        self.pending_max_sets = pending_max_sets
        self.pending_max_age = pending_max_age
        self.dropped_sets = 0
        self.dropped_bytes = 0
        self.withdrawn = 0

    def get(self, domain: int, tid: int) -> Template | None:
        return self.templates.get((domain, tid))

    def add(self, domain: int, tpl: Template) -> bool:
        """Store a template; True when it is new or changed."""
        key = (domain, tpl.tid)
        old = self.templates.get(key)
        if old is not None and old.same_as(tpl):
            old.learned = tpl.learned
            return False
        self.templates[key] = tpl
        return True

    def withdraw(self, domain: int, tid: int, all_of_kind: bool | None = None) -> None:
        """Remove one template, or every (options) template of the domain (IPFIX withdrawal)."""
        if all_of_kind is None:
            if self.templates.pop((domain, tid), None) is not None:
                self.withdrawn += 1
            return
        for key in [k for k, t in self.templates.items() if k[0] == domain and t.options == all_of_kind]:
            del self.templates[key]
            self.withdrawn += 1

    def park(self, domain: int, tid: int, body: bytes, ctx: Any, now: float) -> None:
        """Keep a data set whose template is unknown yet."""
        self.expire(now)
        if self.pending_count >= self.pending_max_sets:
            self._drop_oldest()
        self.pending.setdefault((domain, tid), deque()).append((now, bytes(body), ctx))
        self.pending_count += 1

    def take(self, domain: int, tid: int) -> list[tuple[float, bytes, Any]]:
        q = self.pending.pop((domain, tid), None)
        if not q:
            return []
        self.pending_count -= len(q)
        return list(q)

    def expire(self, now: float) -> None:
        if not self.pending_count:
            return
        limit = now - self.pending_max_age
        for key in list(self.pending):
            q = self.pending[key]
            while q and q[0][0] < limit:
                _, body, _ = q.popleft()
                self.pending_count -= 1
                self.dropped_sets += 1
                self.dropped_bytes += len(body)
            if not q:
                del self.pending[key]

    def _drop_oldest(self) -> None:
        oldest_key = min(self.pending, key=lambda k: self.pending[k][0][0])
        q = self.pending[oldest_key]
        _, body, _ = q.popleft()
        self.pending_count -= 1
        self.dropped_sets += 1
        self.dropped_bytes += len(body)
        if not q:
            del self.pending[oldest_key]
