"""The live flow table: current flows with their counters, in memory.

Live interfaces are metered with a short nfstream active timeout, so a flow's counters reach
this table within seconds; the segments of one flow are merged here into a single live flow.
Flows read from capture files arrive finished and stay visible (newest kept) until evicted.

Storage is by column: each number lives in a typed `array` at the flow's slot, IPv4 addresses
as numbers, shared names (application, category, source type, countries) as small codes, and
the per-flow texts (SNI, fingerprints, User-Agent) joined in one string. Per-minute volumes
(PER_MINUTE) keep one cell in the slot's columns (most flows lie within one minute) and the
cells of further minutes in a small array kept only for flows that span minutes. An index maps
each flow's key (a number packing its 5-tuple, interface and VLAN) to its slot.

`LiveFlow` is a view of one slot (`flows()`), or a copy for flows taken out (`sweep()`), with the
same attributes and `as_row()` as a flow row. A freed slot keeps its values for a grace period
before it is reused, so a view handed to a reader a moment before its flow was swept still reads
that flow; a view whose slot was reused meanwhile raises `FlowGone` rather than show another flow.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from array import array
from collections import deque
from typing import Any, Callable, Iterable

from flowscope.flows.orientation import swap
from flowscope.flows.record import community_id

# Numeric columns and their array type codes
_NUMBERS = {
    "FLOW_ID": "Q", "IP_PROTOCOL_VERSION": "B", "FIRST_SEEN": "d", "LAST_SEEN": "d", "VLAN_ID": "H",
    "PROTOCOL": "B", "IP_SRC_PORT": "H", "IP_DST_PORT": "H", "SRC_MAC": "Q", "DST_MAC": "Q", "INTERFACE_ID": "H",
    "SCORE": "H", "SRC_ASN": "I", "DST_ASN": "I", "PACKETS": "Q", "TOTAL_BYTES": "Q", "SRC2DST_BYTES": "Q",
    "DST2SRC_BYTES": "Q", "SRC2DST_PACKETS": "Q", "DST2SRC_PACKETS": "Q", "FLOW_RISK": "Q",
    "SRC2DST_TCP_FLAGS": "B", "DST2SRC_TCP_FLAGS": "B", "L7_PROTO": "H", "L7_PROTO_MASTER": "H",
    "L7_CATEGORY": "H",
}
# One per-minute cell in the slot: minute number (time // 60), then the PER_MINUTE counters
_CELL = {"CELL_MINUTE": "i", "CELL_S2D_PACKETS": "I", "CELL_S2D_BYTES": "Q", "CELL_D2S_PACKETS": "I",
         "CELL_D2S_BYTES": "Q"}
_CELL_COUNTERS = tuple(_CELL)[1:]
_NO_CELL = -(1 << 31)
# Counters added up when segments of one flow are merged
_SUMMED = ("PACKETS", "TOTAL_BYTES", "SRC2DST_BYTES", "DST2SRC_BYTES", "SRC2DST_PACKETS", "DST2SRC_PACKETS")
_ORED = ("FLOW_RISK", "SRC2DST_TCP_FLAGS", "DST2SRC_TCP_FLAGS")
# Few distinct values, shared across flows: kept as codes into one list of names
_SHARED = ("L7_PROTO_NAME", "L7_CATEGORY_NAME", "SOURCE_TYPE", "CLASSIFIED_BY", "SRC_COUNTRY_CODE",
           "DST_COUNTRY_CODE")
# Per-flow texts, joined by _SEP in one string per flow ("" when all are empty)
_TEXTS = ("INFO", "CLIENT_FINGERPRINT", "SERVER_FINGERPRINT", "USER_AGENT")
_SEP = "\x00"
_NO_TEXTS = ("",) * len(_TEXTS)
# Kept from the first segment that knows them (nDPI classifies early packets only)
_STICKY_NUMBERS = ("L7_PROTO", "L7_PROTO_MASTER", "L7_CATEGORY")
_STICKY_SHARED = ("L7_PROTO_NAME", "L7_CATEGORY_NAME")

FIELDS = tuple(_NUMBERS) + ("SRC_IP", "DST_IP") + _SHARED + _TEXTS
_COLUMNS = {**_NUMBERS, **_CELL}
_LIMITS = {code: (1 << (8 * array(code).itemsize)) - 1 for code in set(_COLUMNS.values()) if code not in "di"}
# One array per type code, `stride` values per slot: where each number lives
_LAYOUT = {code: tuple(n for n, c in _COLUMNS.items() if c == code) for code in sorted(set(_COLUMNS.values()))}
_WHERE = {name: (code, i, len(names)) for code, names in _LAYOUT.items() for i, name in enumerate(names)}
_STRIDE = {code: len(names) for code, names in _LAYOUT.items()}
_CELL_AT = [_WHERE[name] for name in _CELL]
_SUMMED_AT = [(name, _WHERE[name][1]) for name in _SUMMED]
_ORED_AT = [(name, *_WHERE[name]) for name in _ORED]
_STICKY_AT = [(name, *_WHERE[name]) for name in _STICKY_NUMBERS]
assert all(_NUMBERS[name] == "Q" for name in _SUMMED)

#: seconds a freed slot keeps its flow before it may be reused (readers' views stay right)
GRACE_S = 30.0


class FlowGone(LookupError):
    """A view's flow left the table and its slot now holds another flow."""


def flow_key(row: dict[str, Any]) -> tuple:
    return (row.get("INTERFACE_ID", 0), row.get("VLAN_ID", 0), row.get("PROTOCOL", 0), row.get("SRC_IP"),
            row.get("IP_SRC_PORT", 0), row.get("DST_IP"), row.get("IP_DST_PORT", 0))


def _address(text: Any) -> int:
    """An address as a number (IPv6 above 2**32 never collides with IPv4); 0 when none."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, TypeError):
        try:
            return (1 << 128) | int(ipaddress.IPv6Address(text))
        except ValueError:
            return 0


def _packed_key(row: dict[str, Any], src: int, dst: int, reverse: bool = False) -> int:
    """The 5-tuple with interface and VLAN, packed in one positive number (IPv4 flows in 32-bit
    address fields, IPv6 flows in 129-bit ones above every IPv4 key); `reverse`: the key of the
    same flow seen from its other end."""
    bits = 32 if src <= 0xFFFFFFFF and dst <= 0xFFFFFFFF else 129
    sport, dport = int(row.get("IP_SRC_PORT") or 0), int(row.get("IP_DST_PORT") or 0)
    if reverse:
        src, dst, sport, dport = dst, src, dport, sport
    k = (int(row.get("INTERFACE_ID") or 0) << 20) | (int(row.get("VLAN_ID") or 0) << 8) | int(row.get("PROTOCOL") or 0)
    k = (k << bits | src) << 16 | sport
    k = (k << bits | dst) << 16 | dport
    return k if bits == 32 else k | 1 << 440


class LiveFlow:
    """One flow's columns as attributes: a view of a live slot, or a detached copy (`values`)."""

    __slots__ = ("_table", "_slot", "_gen", "_values")

    def __init__(self, table: "LiveTable", slot: int, gen: int = 0, values: dict[str, Any] | None = None):
        self._table, self._slot, self._gen, self._values = table, slot, gen, values

    def __getattr__(self, name: str) -> Any:
        if self._values is not None:
            try:
                return self._values[name]
            except KeyError:
                raise AttributeError(name) from None
        value = self._table._get(self._slot, name)
        self._check()
        return value

    def _check(self) -> None:
        if self._values is None and self._table._gens[self._slot] != self._gen:
            raise FlowGone(f"the live flow in slot {self._slot} left the table")

    def detached(self) -> "LiveFlow":
        return LiveFlow(self._table, -1, 0, self._read())

    def _read(self) -> dict[str, Any]:
        if self._values is not None:
            return dict(self._values)
        values = self._table._values(self._slot)
        self._check()
        return values

    def as_row(self) -> dict[str, Any]:
        """The flow as a `flows` row (with `active`, and PER_MINUTE when it has per-minute cells)."""
        out = self._read()
        minutes = out.pop("minutes")
        if minutes:
            out["PER_MINUTE"] = minutes
        v4 = out["IP_PROTOCOL_VERSION"] == 4
        src, dst = out["SRC_IP"], out["DST_IP"]
        out["IPV4_SRC_ADDR"] = _address(src) if v4 else 0
        out["IPV4_DST_ADDR"] = _address(dst) if v4 else 0
        out["IPV6_SRC_ADDR"] = "::" if v4 else src
        out["IPV6_DST_ADDR"] = "::" if v4 else dst
        out["DOMAIN_NAME"] = out["INFO"]
        out["COMMUNITY_ID"] = community_id(src, dst, out["PROTOCOL"], out["IP_SRC_PORT"], out["IP_DST_PORT"])
        return out


class LiveTable:
    def __init__(self, max_flows: int = 1_000_000):
        self.max_flows = max_flows
        self._lock = threading.Lock()
        self.evicted = 0
        self._nums = {code: array(code) for code in _LAYOUT}  # `stride` numbers per slot
        self._addr = array("I")  # IPv4 client and server per slot; IPv6 flows in _v6
        self._v6: dict[int, tuple[str, str]] = {}
        self._shared = array("H")  # codes of the _SHARED names per slot
        self._names: list[str] = [""]
        self._name_codes: dict[str, int] = {"": 0}
        self._texts: list[str | tuple] = []  # the _TEXTS of each slot, joined
        self._more_minutes: dict[int, array] = {}  # slot -> (minute, 4 counters) * n besides its cell
        self._active = array("B")
        self._gens = array("I")  # bumped when a slot is reused: views of the flow before see it
        self._keys: list[int | None] = []  # slot -> index key (None when free)
        self._index: dict[int, int] = {}  # key -> slot
        self._cooling: deque[tuple[int, float]] = deque()  # freed slots, oldest first

    def __len__(self) -> int:
        return len(self._index)

    # ---- slots ---------------------------------------------------------------------------------
    def _code(self, name: Any) -> int:
        name = name if isinstance(name, str) else ""
        code = self._name_codes.get(name)
        if code is None:
            code = self._name_codes[name] = len(self._names)
            self._names.append(name)
        return code

    def _reusable_slot(self) -> int | None:
        """The oldest freed slot once its grace period is over (or when many wait)."""
        if not self._cooling:
            return None
        slot, freed = self._cooling[0]
        if time.monotonic() - freed < GRACE_S and len(self._cooling) <= max(1024, self.max_flows // 16):
            return None
        self._cooling.popleft()
        self._gens[slot] = (self._gens[slot] + 1) & 0xFFFFFFFF  # before any value changes: views check it after reading
        return slot

    def _new_slot(self, key: int, row: dict[str, Any], src: int, dst: int, active: bool) -> None:
        v6 = src > 0xFFFFFFFF or dst > 0xFFFFFFFF
        addr = (0, 0) if v6 else (src, dst)
        shared = [self._code(row.get(name)) for name in _SHARED]
        texts = _joined(row)
        columns = {code: _typed(code, [row.get(x) for x in names]) for code, names in _LAYOUT.items()}
        columns["i"][_WHERE["CELL_MINUTE"][1]] = _NO_CELL  # the cell is filled by _add_minutes
        slot = self._reusable_slot()
        if slot is not None:
            for code, values in columns.items():
                n = len(values)
                self._nums[code][slot * n:slot * n + n] = values
            self._addr[slot * 2:slot * 2 + 2] = array("I", addr)
            k = len(_SHARED)
            self._shared[slot * k:slot * k + k] = array("H", shared)
            self._texts[slot] = texts
            self._active[slot], self._keys[slot] = active, key
            self._v6.pop(slot, None)
            self._more_minutes.pop(slot, None)
        else:
            slot = len(self._keys)
            for code, values in columns.items():
                self._nums[code].extend(values)
            self._addr.extend(addr)
            self._shared.extend(shared)
            self._texts.append(texts)
            self._active.append(active)
            self._gens.append(0)
            self._keys.append(key)
        self._add_minutes(slot, row.get("PER_MINUTE"))
        if v6:
            self._v6[slot] = (str(row.get("SRC_IP") or ""), str(row.get("DST_IP") or ""))
        self._index[key] = slot

    def _free_slot(self, slot: int) -> None:
        """Take a slot out of the index; its values stay readable until it is reused."""
        del self._index[self._keys[slot]]
        self._keys[slot] = None
        self._cooling.append((slot, time.monotonic()))

    def _num(self, slot: int, name: str) -> Any:
        code, i, n = _WHERE[name]
        return self._nums[code][slot * n + i]

    def _values(self, slot: int) -> dict[str, Any]:
        """All of a slot's columns by name (FIELDS, `active` and `minutes`)."""
        out: dict[str, Any] = {}
        for code, names in _LAYOUT.items():
            n = len(names)
            out.update(zip(names, self._nums[code][slot * n:slot * n + n]))
        for name in _CELL:
            del out[name]
        pair = self._v6.get(slot)
        if pair is None:
            a = self._addr
            pair = (socket.inet_ntoa(a[slot * 2].to_bytes(4, "big")), socket.inet_ntoa(a[slot * 2 + 1].to_bytes(4, "big")))
        out["SRC_IP"], out["DST_IP"] = pair
        k = len(_SHARED)
        out.update(zip(_SHARED, (self._names[c] for c in self._shared[slot * k:slot * k + k])))
        out.update(zip(_TEXTS, _parts(self._texts[slot])))
        out["active"] = bool(self._active[slot])
        out["minutes"] = self._minutes(slot)
        return out

    def _get(self, slot: int, name: str) -> Any:
        if name in _NUMBERS:
            return self._num(slot, name)
        if name in ("SRC_IP", "DST_IP"):
            pair = self._v6.get(slot)
            side = name == "DST_IP"
            if pair is not None:
                return pair[side]
            return socket.inet_ntoa(self._addr[slot * 2 + side].to_bytes(4, "big"))
        if name in _SHARED:
            return self._names[self._shared[slot * len(_SHARED) + _SHARED.index(name)]]
        if name in _TEXTS:
            return _parts(self._texts[slot])[_TEXTS.index(name)]
        if name == "active":
            return bool(self._active[slot])
        if name == "minutes":
            return self._minutes(slot)
        raise AttributeError(name)

    # ---- per-minute cells ------------------------------------------------------------------------
    def _cell(self, slot: int) -> list[tuple[array, int]]:
        """Where the slot's own per-minute cell lives: (array, index) for minute and 4 counters."""
        return [(self._nums[code], slot * n + i) for code, i, n in _CELL_AT]

    def _add_minutes(self, slot: int, cells: Any) -> None:
        """Add PER_MINUTE cells [(minute start, s2d packets, s2d bytes, d2s packets, d2s bytes)]:
        into the slot's own cell when it is that minute's (or free) and the sums fit its columns,
        else into the flow's further minutes."""
        if not cells:
            return
        (minutes, at), *counters = self._cell(slot)
        for t, *values in cells:
            minute = t // 60 if t % 60 == 0 and -_NO_CELL > t // 60 > _NO_CELL else None
            if minute is not None and minutes[at] == minute:
                total = [arr[i] + v for (arr, i), v in zip(counters, values)]
                if _fits(total):
                    for (arr, i), v in zip(counters, total):
                        arr[i] = v
                    continue
                self._move_cell_out(slot)
            elif minute is not None and minutes[at] == _NO_CELL and _fits(values):
                more = self._more_minutes.get(slot)
                if more is None or t not in more[::5]:
                    minutes[at] = minute
                    for (arr, i), v in zip(counters, values):
                        arr[i] = v
                    continue
            self._add_further(slot, t, values)

    def _add_further(self, slot: int, t: int, counters: list[int]) -> None:
        more = self._more_minutes.setdefault(slot, array("q"))
        for at in range(0, len(more), 5):
            if more[at] == t:
                for i, v in enumerate(counters):
                    more[at + 1 + i] += v
                return
        more.extend([t, *counters])

    def _move_cell_out(self, slot: int) -> None:
        (minutes, at), *counters = self._cell(slot)
        self._add_further(slot, minutes[at] * 60, [arr[i] for arr, i in counters])
        minutes[at] = _NO_CELL

    def _minutes(self, slot: int) -> list[tuple[int, int, int, int, int]]:
        """The flow's PER_MINUTE cells, by minute."""
        (minutes, at), *counters = self._cell(slot)
        out = [] if minutes[at] == _NO_CELL else [(minutes[at] * 60, *(arr[i] for arr, i in counters))]
        more = self._more_minutes.get(slot)
        if more:
            out += [tuple(more[at:at + 5]) for at in range(0, len(more), 5)]
            out.sort()
        return out

    # ---- merging ---------------------------------------------------------------------------------
    def _merge(self, slot: int, row: dict[str, Any]) -> None:
        nums = self._nums
        q, n = nums["Q"], _STRIDE["Q"]
        base = slot * n
        sums = [(base + i, q[base + i] + (row.get(name) or 0)) for name, i in _SUMMED_AT]
        try:
            for at, v in sums:
                q[at] = v
        except (OverflowError, TypeError):
            for at, v in sums:  # saturate
                q[at] = _clamp("Q", v)
        for name, code, i, n in _ORED_AT:
            value = row.get(name)
            if value:
                arr, at = nums[code], slot * n + i
                try:
                    arr[at] |= value
                except (OverflowError, TypeError):
                    arr[at] = _clamp(code, arr[at] | int(value))
        for name, code, i, n in _STICKY_AT:
            value = row.get(name)
            if value and not nums[code][slot * n + i]:
                nums[code][slot * n + i] = _clamp(code, value)
        for name in _STICKY_SHARED:
            if row.get(name):
                at = slot * len(_SHARED) + _SHARED.index(name)
                if self._names[self._shared[at]] in ("", "Unknown"):
                    self._shared[at] = self._code(row[name])
        self._merge_texts(slot, row)
        code, i, n = _WHERE["LAST_SEEN"]
        last = float(row.get("LAST_SEEN") or 0)
        if last > nums[code][slot * n + i]:
            nums[code][slot * n + i] = last
        self._add_minutes(slot, row.get("PER_MINUTE"))

    def _merge_texts(self, slot: int, row: dict[str, Any]) -> None:
        """Texts the flow lacks are taken from the segment."""
        have = _parts(self._texts[slot])
        for h, name in zip(have, _TEXTS):
            if not h and row.get(name):
                break
        else:
            return
        self._texts[slot] = _joined({name: h or row.get(name) for h, name in zip(have, _TEXTS)})

    # ---- public ----------------------------------------------------------------------------------
    def add_finished(self, rows: Iterable[dict[str, Any]]) -> None:
        """Flows that ended (e.g. from a capture file): shown, not active."""
        with self._lock:
            for row in rows:
                key = -1 - int(row["FLOW_ID"])  # keyed by flow id, apart from live 5-tuples
                slot = self._index.get(key)
                if slot is not None:
                    self._free_slot(slot)
                self._new_slot(key, row, _address(row.get("SRC_IP")), _address(row.get("DST_IP")), False)
            self._evict()

    def merge_segment(self, row: dict[str, Any]) -> None:
        """Merge one nfstream segment of a live flow into its entry (a segment seen the other way
        round, e.g. one that began with the server's packet, is turned to match)."""
        src, dst = _address(row.get("SRC_IP")), _address(row.get("DST_IP"))
        key = _packed_key(row, src, dst)
        with self._lock:
            slot = self._index.get(key)
            if slot is None:
                slot = self._index.get(_packed_key(row, src, dst, reverse=True))
                if slot is not None:
                    row = dict(row)
                    swap(row)
            if slot is None:
                self._new_slot(key, row, src, dst, True)
                self._evict()
            else:
                self._merge(slot, row)

    def sweep(self, older_than: float = float("inf"), max_duration: float = float("inf")) -> list[LiveFlow]:
        """Remove, in one pass, active flows last seen before `older_than` or lasting `max_duration`
        or more (default: all active flows); returns them, ended. A flow that goes on after it was
        taken for its duration starts a new entry, so no packet is counted twice."""
        code, first_i, n = _WHERE["FIRST_SEEN"]
        last_i = _WHERE["LAST_SEEN"][1]
        with self._lock:
            times, active = self._nums[code], self._active
            done = [s for s in self._index.values()
                    if active[s] and (times[s * n + last_i] < older_than
                                      or times[s * n + last_i] - times[s * n + first_i] >= max_duration)]
            flows = []
            for s in done:
                active[s] = 0
                flows.append(LiveFlow(self, s, self._gens[s]).detached())
                self._free_slot(s)
        return flows

    def _evict(self) -> None:
        excess = len(self._index) - self.max_flows
        if excess <= 0:
            return
        active = self._active
        for slot in [s for s in self._index.values() if not active[s]][:excess]:
            self._free_slot(slot)
            self.evicted += 1

    def snapshot(self, predicate: Callable[[LiveFlow], bool] | None = None) -> list[dict[str, Any]]:
        """The current flows as rows (flows that leave the table meanwhile are left out)."""
        rows = []
        for f in self.flows():
            try:
                if predicate is None or predicate(f):
                    rows.append(f.as_row())
            except FlowGone:
                continue
        return rows

    def flows(self) -> list[LiveFlow]:
        """Views of the current flows: counters read when asked (a flow merged meanwhile shows its
        new counters; `detached()` freezes one)."""
        with self._lock:
            gens = self._gens
            return [LiveFlow(self, s, gens[s]) for s in self._index.values()]


def _joined(row: dict[str, Any]) -> str | tuple:
    """The _TEXTS of a row in one string ("" when none; a tuple if a text holds the separator)."""
    texts = [_text(row.get(name)) for name in _TEXTS]
    if not any(texts):
        return ""
    return tuple(texts) if any(_SEP in t for t in texts) else _SEP.join(texts)


def _parts(texts: str | tuple) -> tuple | list:
    if not texts:
        return _NO_TEXTS
    return texts if isinstance(texts, tuple) else texts.split(_SEP)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else (str(value) if value else "")


def _fits(counters: list[int]) -> bool:
    """Whether per-minute counters fit the slot's cell (packets 32-bit, bytes 64-bit, none negative)."""
    sp, sb, dp, db = counters
    return 0 <= sp <= _LIMITS["I"] and 0 <= dp <= _LIMITS["I"] and 0 <= sb <= _LIMITS["Q"] and 0 <= db <= _LIMITS["Q"]


def _typed(code: str, values: list) -> array:
    """`values` as an array of type `code`, each clamped when the whole does not fit as it is."""
    try:
        return array(code, [v or 0 for v in values])
    except (OverflowError, TypeError):
        return array(code, [_clamp(code, v) for v in values])


def _clamp(code: str, value: Any) -> Any:
    """A value fit for an array of type `code` (None as 0; out-of-range integers saturate)."""
    if code == "d":
        return float(value or 0)
    v = int(value or 0)
    if code == "i":
        return v
    return v if 0 <= v <= _LIMITS[code] else (0 if v < 0 else _LIMITS[code])
