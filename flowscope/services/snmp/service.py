"""The SNMP component: schedules polls, computes rates, stores results, raises alerts, and
answers the questions the MCP tools ask."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from flowscope.addresses import AddressError, allowed_special, is_ip
from flowscope.auth import TargetRefused, check_target
from flowscope.services.snmp import mibs
from flowscope.services.snmp.poller import Interface, PollError, PollResult, poll_with_budget
from flowscope.services.snmp.rates import CounterSample, agent_restarted, compute_rates
from flowscope.services.snmp.registry import Device, Registry, RegistryError, make_device

log = logging.getLogger(__name__)

UP = 1
#: devices registered by these "owners" belong to the server (the shell CLI), not to a user
SERVER_OWNERS = ("", "cli")
DOWN_STATES = {2, 7}   # down, lowerLayerDown


def fmt_ts(t: float) -> str:
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"


def status_name(v: int) -> str:
    return mibs.IF_STATUS.get(v, str(v) if v else "")


@dataclass
class DeviceState:
    """What the poller remembers about one device between polls (in memory)."""
    last_attempt: float = 0.0
    last_success: float = 0.0
    reachable: Optional[bool] = None
    error: str = ""
    error_kind: str = ""
    uptime_ticks: Optional[int] = None
    samples: dict[int, CounterSample] = field(default_factory=dict)
    oper: dict[int, int] = field(default_factory=dict)
    interface_count: int = 0
    in_flight: bool = False
    polls: int = 0
    failures: int = 0


@dataclass
class PollOutcome:
    device: str
    ok: bool
    error_kind: str = ""
    error: str = ""
    duration_s: float = 0.0
    result: Optional[PollResult] = None
    rates: dict[int, dict] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        if not self.ok or self.result is None:
            return {"ok": False, "error_kind": self.error_kind, "error": self.error,
                    "duration_s": round(self.duration_s, 3)}
        r = self.result
        return {
            "ok": True, "duration_s": round(self.duration_s, 3),
            "sys_name": r.system.get("sys_name", ""), "sys_descr": r.system.get("sys_descr", ""),
            "sys_object_id": r.system.get("sys_object_id", ""),
            "uptime_s": (r.uptime_ticks or 0) / 100.0,
            "interfaces": len(r.interfaces),
            "interfaces_up": sum(1 for i in r.interfaces if i.oper_status == UP),
            "lldp_neighbors": sum(1 for n in r.neighbors if n.protocol == "lldp"),
            "cdp_neighbors": sum(1 for n in r.neighbors if n.protocol == "cdp"),
            "fdb_macs": len(r.fdb), "ip_addresses": [a for _, a in r.ip_addresses],
            "warnings": r.warnings,
        }


class SnmpService:
    def __init__(self, app: Any):
        self.app = app
        self.store = app.store
        cfg = {}
        try:
            cfg = app.config.section("snmp")
        except Exception:
            pass
        self.registry = Registry(app.config.data_dir)
        self.max_concurrency = int(cfg.get("max_concurrency", 32))
        self.fdb_max = int(cfg.get("fdb_max", 8192))
        self.tick_s = float(cfg.get("tick_s", 1.0))
        self.enabled = bool(cfg.get("enabled", True))
        try:
            self.allow_special = allowed_special(app.config.section("targets").get("allow_special"))
        except AttributeError:
            self.allow_special = frozenset()
        self.state: dict[str, DeviceState] = {}
        self._sem: Optional[asyncio.Semaphore] = None
        self._task: Optional[asyncio.Task] = None
        self._polls: set[asyncio.Task] = set()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._stopping = False
        self._sem = asyncio.Semaphore(self.max_concurrency)
        if self.enabled:
            self._task = asyncio.create_task(self._loop(), name="snmp-poller")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in [self._task, *self._polls] if t]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._polls.clear()

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_concurrency)
        return self._sem

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                devices = await asyncio.to_thread(self.registry.list)
                now = time.time()
                for dev in devices:
                    st = self.state.setdefault(dev.name, DeviceState())
                    if not dev.enabled or st.in_flight or now - st.last_attempt < dev.interval_s:
                        continue
                    st.in_flight = True
                    st.last_attempt = now
                    task = asyncio.create_task(self.poll_device(dev), name=f"snmp-poll-{dev.name}")
                    self._polls.add(task)
                    task.add_done_callback(self._polls.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("snmp scheduler tick failed")
            await asyncio.sleep(self.tick_s)

    @staticmethod
    def budget(dev: Device) -> float:
        """Time allowed for one whole poll of dev: at least one full request timeout cycle."""
        per_request = dev.timeout_s * (dev.retries + 1)
        return max(per_request + 1.0, min(float(dev.interval_s), 120.0))

    # ------------------------------------------------------------------ polling
    async def run_poll(self, dev: Device) -> PollOutcome:
        """Poll once under the concurrency bound and the device's budget; store nothing."""
        t0 = time.perf_counter()
        async with self._semaphore():
            try:
                res = await poll_with_budget(dev, self.budget(dev), self.fdb_max)
            except PollError as exc:
                return PollOutcome(dev.name, False, exc.kind, exc.message, time.perf_counter() - t0)
            except Exception as exc:  # a bug or an agent sending garbage: keep the poller alive
                log.warning("snmp poll of %s failed: %s", dev.name, type(exc).__name__)
                return PollOutcome(dev.name, False, "error", f"Polling failed: {type(exc).__name__}: {exc}",
                                   time.perf_counter() - t0)
        return PollOutcome(dev.name, True, duration_s=time.perf_counter() - t0, result=res)

    async def poll_device(self, dev: Device) -> PollOutcome:
        """Poll a registered device, then record rates, snapshot and events."""
        st = self.state.setdefault(dev.name, DeviceState())
        st.in_flight = True
        st.last_attempt = time.time()
        try:
            target, refused = await asyncio.to_thread(self._owner_check, dev)
            out = refused or await self.run_poll(target)
            alerts = await asyncio.to_thread(self._record, dev, st, out)
            await self._raise_alerts(alerts)
            return out
        finally:
            st.in_flight = False

    def _owner_check(self, dev: Device) -> tuple[Device, Optional[PollOutcome]]:
        """Before each poll, with the owner's current rights: (the device with its checked address,
        None), or (dev, an outcome saying why it is not polled). An owner who no longer exists
        disables the device."""
        auth = getattr(self.app, "auth", None)
        if dev.created_by in SERVER_OWNERS or auth is None:
            return dev, None
        owner = auth.current_principal(dev.created_by)
        if owner is None:
            self.registry.update(dev.name, enabled=False)
            return dev, PollOutcome(dev.name, False, "refused", f"not polled: its owner {dev.created_by!r} no "
                                    "longer exists; the device is disabled")
        try:
            return replace(dev, host=self.check_host(dev.host, owner)[0]), None
        except (TargetRefused, AddressError) as exc:
            return dev, PollOutcome(dev.name, False, "refused", f"not polled: {exc}")

    def check_host(self, host: str, principal: Any) -> list[str]:
        return check_target(principal, host, self.allow_special)

    # ------------------------------------------------------------------ ownership
    @staticmethod
    def visible(dev: Device, principal: Any) -> bool:
        """Admins and the owner see a device; a user without network limits sees every device; a user
        with allowed networks also sees others' devices registered by an address inside them."""
        if principal is None or principal.owns(dev.created_by) or not principal.restricted:
            return True
        return is_ip(dev.host) and principal.can_see(dev.host)

    def device_for(self, principal: Any, name: str) -> Device:
        dev = self.registry.get(name)
        if dev is None or not self.visible(dev, principal):
            raise RegistryError(f"no SNMP device named {name!r}; list_snmp_devices shows the registered ones")
        return dev

    async def poll_all(self) -> list[PollOutcome]:
        """Poll every enabled device now, concurrently (bounded)."""
        devices = [d for d in self.registry.list() if d.enabled]
        return list(await asyncio.gather(*(self.poll_device(d) for d in devices)))

    # ------------------------------------------------------------------ recording
    def _record(self, dev: Device, st: DeviceState, out: PollOutcome) -> list[tuple]:
        """Store one poll's outcome; returns the alerts to raise (on the event loop)."""
        pending: list[tuple] = []
        st.polls += 1
        if not out.ok or out.result is None:
            st.failures += 1
            was = st.reachable
            st.reachable, st.error, st.error_kind = False, out.error, out.error_kind
            self.store.insert_dicts("snmp_devices", [{
                "time": fmt_ts(st.last_attempt), "device": dev.name, "host": dev.host, "port": dev.port,
                "version": dev.version, "reachable": 0, "error_kind": out.error_kind, "error": out.error,
                "poll_ms": int(out.duration_s * 1000)}])
            if was is not False:
                self._event(pending, dev, st.last_attempt, 0, "", "device_unreachable", "error",
                            f"SNMP device {dev.name} ({dev.host}) is unreachable: {out.error}",
                            {"error_kind": out.error_kind, "error": out.error, "host": dev.host, "port": dev.port})
            return pending
        r = out.result
        t = r.time
        was = st.reachable
        st.reachable, st.error, st.error_kind, st.last_success = True, "", "", t
        if was is False:
            self._event(pending, dev, t, 0, "", "device_reachable", "info",
                        f"SNMP device {dev.name} ({dev.host}) answers again", {"host": dev.host})
        uptime = r.uptime_ticks
        if st.uptime_ticks is not None and uptime is not None and st.samples:
            elapsed = t - max(s.time for s in st.samples.values())
            if agent_restarted(st.uptime_ticks, uptime, elapsed):
                self._event(pending, dev, t, 0, "", "agent_restart", "warning",
                            f"SNMP agent on {dev.name} restarted (sysUpTime went from "
                            f"{st.uptime_ticks / 100:.0f}s to {uptime / 100:.0f}s): no rates for this interval",
                            {"previous_uptime_ticks": st.uptime_ticks, "uptime_ticks": uptime})
        st.uptime_ticks = uptime
        ts = fmt_ts(t)
        base = {"time": ts, "device": dev.name, "host": dev.host}
        if_rows, ts_rows = [], []
        new_samples: dict[int, CounterSample] = {}
        for itf in r.interfaces:
            sample = CounterSample(
                time=t, uptime_ticks=uptime, speed_bps=itf.speed_bps,
                octet_bits=64 if itf.counters_64 else 32, in_octets=itf.in_octets, out_octets=itf.out_octets,
                in_errors=itf.in_errors, out_errors=itf.out_errors, in_discards=itf.in_discards,
                out_discards=itf.out_discards, discontinuity=itf.discontinuity,
                in_pkts=itf.in_ucast_pkts, out_pkts=itf.out_ucast_pkts)
            prev = st.samples.get(itf.if_index)
            rates = compute_rates(prev, sample)
            new_samples[itf.if_index] = sample
            if_rows.append({**base, **_interface_row(itf)})
            if rates is not None:
                rd = rates.as_dict()
                counts = {}
                for name in ("in_errors", "out_errors", "in_discards", "out_discards"):
                    v = rd.get(name + "_ps")
                    counts[name] = None if v is None else int(round(v * rates.interval_s))
                ts_rows.append({**base, "if_index": itf.if_index, "if_name": itf.display_name,
                                "interval_s": rates.interval_s, "speed_bps": itf.speed_bps,
                                "admin_status": status_name(itf.admin_status),
                                "oper_status": status_name(itf.oper_status), **rd, **counts})
                out.rates[itf.if_index] = rd
            # interface status transitions
            old = st.oper.get(itf.if_index)
            if old is not None and old != itf.oper_status:
                if old == UP and itf.oper_status in DOWN_STATES:
                    self._event(pending, dev, t, itf.if_index, itf.display_name, "interface_down",
                                "warning" if itf.admin_status == UP else "info",
                                f"Interface {itf.display_name} (ifIndex {itf.if_index}) on {dev.name} went "
                                f"{status_name(itf.oper_status)} (admin {status_name(itf.admin_status)})",
                                {"if_index": itf.if_index, "if_name": itf.display_name, "alias": itf.alias,
                                 "admin_status": status_name(itf.admin_status),
                                 "oper_status": status_name(itf.oper_status),
                                 "previous_oper_status": status_name(old)})
                elif itf.oper_status == UP and old in DOWN_STATES:
                    self._event(pending, dev, t, itf.if_index, itf.display_name, "interface_up", "info",
                                f"Interface {itf.display_name} (ifIndex {itf.if_index}) on {dev.name} is up again",
                                {"if_index": itf.if_index, "if_name": itf.display_name,
                                 "previous_oper_status": status_name(old)})
            st.oper[itf.if_index] = itf.oper_status
        for gone in set(st.oper) - {i.if_index for i in r.interfaces}:
            st.oper.pop(gone, None)
        st.samples = new_samples
        st.interface_count = len(r.interfaces)
        by_index = {i.if_index: i for i in r.interfaces}
        self.store.insert_dicts("snmp_devices", [{
            **base, "port": dev.port, "version": dev.version, "reachable": 1, "error_kind": "", "error": "",
            "sys_descr": r.system.get("sys_descr", ""), "sys_object_id": r.system.get("sys_object_id", ""),
            "sys_name": r.system.get("sys_name", ""), "sys_location": r.system.get("sys_location", ""),
            "sys_contact": r.system.get("sys_contact", ""), "sys_uptime_ticks": uptime or 0,
            "interface_count": len(r.interfaces), "neighbor_count": len(r.neighbors), "fdb_count": len(r.fdb),
            "ip_addresses": [a for _, a in r.ip_addresses], "poll_ms": int(r.duration_s * 1000),
            "warnings": r.warnings}])
        if if_rows:
            self.store.insert_dicts("snmp_interfaces", if_rows)
        if ts_rows:
            self.store.insert_dicts("snmp_interface_ts", ts_rows)
        if r.neighbors:
            self.store.insert_dicts("snmp_neighbors", [{**base, **n.__dict__} for n in r.neighbors])
        if r.fdb:
            self.store.insert_dicts("snmp_fdb", [{
                **base, "mac": e.mac, "bridge_port": e.bridge_port, "if_index": e.if_index,
                "if_name": by_index[e.if_index].display_name if e.if_index in by_index else ""} for e in r.fdb])
        return pending

    def _event(self, pending: list, dev: Device, t: float, if_index: int, if_name: str, event: str, severity: str,
               description: str, evidence: dict) -> None:
        evidence = {"device": dev.name, **evidence}
        try:
            self.store.insert_dicts("snmp_events", [{
                "time": fmt_ts(t), "device": dev.name, "host": dev.host, "if_index": if_index, "if_name": if_name,
                "event": event, "severity": severity, "description": description,
                "evidence": json.dumps(evidence, default=str)}])
        except Exception:
            log.exception("could not store snmp event")
        if event in ("interface_down", "device_unreachable"):
            entity_type = "snmp_interface" if if_index else "snmp_device"
            entity_value = f"{dev.name}:{if_name or if_index}" if if_index else dev.name
            alert_type = "snmp_interface_down" if if_index else "snmp_device_unreachable"
            pending.append((entity_type, entity_value, alert_type, severity, description, evidence))

    async def _raise_alerts(self, pending: list[tuple]) -> None:
        if not pending:
            return
        components = getattr(self.app, "components", None) or {}
        fn = getattr(components.get("alerts"), "raise_alert", None)
        if fn is None:
            return  # no alerts component: snmp_events holds the record
        for args in pending:
            try:
                res = fn(*args)
                if inspect.isawaitable(res):
                    await res
            except Exception:
                log.exception("alerts component refused an SNMP alert")

    # ------------------------------------------------------------------ registry operations
    async def add_device(self, *, created_by: str = "", require_answer: bool = True, principal: Any = None,
                         **fields: Any) -> tuple[Device, PollOutcome]:
        """Validate, poll once, and register. A device that fails its first poll is not stored
        (unless require_answer=False and the failure is a timeout). With a principal, the device is
        theirs and its host must pass `check_target` (resolved, allowed networks, special addresses)."""
        if principal is not None:
            created_by = principal.name
        dev = make_device(created_by=created_by, **fields)
        if self.registry.get(dev.name) is not None:
            raise RegistryError(f"a device named {dev.name!r} already exists (remove it first)")
        target = dev
        if principal is not None:
            try:
                target = replace(dev, host=(await asyncio.to_thread(self.check_host, dev.host, principal))[0])
            except (TargetRefused, AddressError) as exc:
                raise RegistryError(str(exc)) from None
        out = await self.run_poll(target)
        if not out.ok and (require_answer or out.error_kind != "timeout"):
            return dev, out
        await asyncio.to_thread(self.registry.add, dev)
        st = self.state.setdefault(dev.name, DeviceState())
        st.last_attempt = time.time()
        alerts = await asyncio.to_thread(self._record, dev, st, out)
        await self._raise_alerts(alerts)
        return dev, out

    def remove_device(self, name: str, principal: Any = None) -> bool:
        """Remove a device: its owner or an admin (no principal: the server itself)."""
        dev = self.device_for(principal, name)
        if principal is not None and not principal.owns(dev.created_by):
            raise RegistryError(f"SNMP device {name!r} belongs to {dev.created_by or 'the server'}; only they or "
                                "an admin can remove it")
        ok = self.registry.remove(name)
        self.state.pop(name, None)
        return ok

    # ------------------------------------------------------------------ reading
    def _latest_devices(self) -> dict[str, dict]:
        res = self.store.query(
            "SELECT device AS d, argMax(reachable, time) AS r, max(time) AS lp, maxIf(time, reachable = 1) AS ls, "
            "argMax(error, time) AS e, argMaxIf(interface_count, time, reachable = 1) AS ic, "
            "argMaxIf(sys_name, time, reachable = 1) AS sn, countIf(reachable = 1) AS okp "
            "FROM snmp_devices GROUP BY device")
        names = {"r": "reachable", "lp": "last_poll", "ls": "last_success", "e": "error", "ic": "interface_count",
                 "sn": "sys_name", "okp": "ok_polls"}
        return {r["d"]: {names[k]: v for k, v in r.items() if k in names} for r in res.dicts()}

    def list_devices(self, principal: Any = None) -> list[dict]:
        latest = self._latest_devices()
        out = []
        for dev in (d for d in self.registry.list() if self.visible(d, principal)):
            row = latest.get(dev.name, {})
            st = self.state.get(dev.name)
            reachable = bool(row.get("reachable")) if row else None
            out.append({
                "name": dev.name, "host": dev.host, "port": dev.port, "version": dev.version,
                "enabled": dev.enabled, "interval_s": dev.interval_s,
                "reachable": reachable, "last_poll": row.get("last_poll"),
                "last_success": row.get("last_success") if row.get("ok_polls") else None,
                "interface_count": int(row.get("interface_count") or 0), "created_by": dev.created_by,
                "sys_name": row.get("sys_name", ""),
                "error": row.get("error", "") if row and not reachable else "",
                "polling_now": bool(st and st.in_flight),
            })
        return out

    def _last_ok_time(self, name: str) -> Optional[str]:
        return self.store.query(
            "SELECT max(time) FROM snmp_devices WHERE device = {d:String} AND reachable = 1 HAVING count() > 0",
            {"d": name}).scalar()

    def device_info(self, name: str, offset: int = 0, limit: int = 100, neighbor_limit: int = 200) -> dict:
        dev = self.registry.get(name)
        if dev is None:
            raise RegistryError(f"no SNMP device named {name!r}; list_snmp_devices shows the registered ones")
        last = self.store.query(
            "SELECT * FROM snmp_devices WHERE device = {d:String} ORDER BY time DESC LIMIT 1", {"d": name}).dicts()
        snap = self.store.query(
            "SELECT * FROM snmp_devices WHERE device = {d:String} AND reachable = 1 ORDER BY time DESC LIMIT 1",
            {"d": name}).dicts()
        info: dict[str, Any] = {"name": dev.name, "host": dev.host, "port": dev.port, "version": dev.version,
                                "reachable": bool(last[0]["reachable"]) if last else None,
                                "last_poll": last[0]["time"] if last else None,
                                "error": last[0]["error"] if last and not last[0]["reachable"] else "",
                                "system": None, "interfaces": [], "interface_count": 0,
                                "neighbors": [], "neighbors_truncated": False, "truncated": False,
                                "fdb_count": 0}
        if not snap:
            return info
        s = snap[0]
        t = s["time"]
        info["last_success"] = t
        info["system"] = {k: s[k] for k in ("sys_descr", "sys_object_id", "sys_name", "sys_location", "sys_contact")}
        info["system"]["sys_uptime_ticks"] = s["sys_uptime_ticks"]
        info["system"]["uptime_s"] = s["sys_uptime_ticks"] / 100.0
        info["ip_addresses"] = s["ip_addresses"]
        info["fdb_count"] = s["fdb_count"]
        info["warnings"] = s["warnings"]
        info["interface_count"] = s["interface_count"]
        rows = self.store.query(
            "SELECT if_index, if_name, if_descr, if_alias, if_type, mtu, speed_bps, phys_address, admin_status, "
            "oper_status, counters_64bit, in_octets, out_octets, in_errors, out_errors, in_discards, out_discards, "
            "ip_addresses FROM snmp_interfaces WHERE device = {d:String} AND time = {t:DateTime64(3, 'UTC')} "
            "ORDER BY if_index LIMIT 1 BY if_index LIMIT {lim:UInt32} OFFSET {off:UInt32}",
            {"d": name, "t": t, "lim": limit + 1, "off": offset}).dicts()
        info["truncated"] = len(rows) > limit
        rows = rows[:limit]
        rates = self._latest_rates(name, [r["if_index"] for r in rows])
        for r in rows:
            r["rates"] = rates.get(r["if_index"])
        info["interfaces"] = rows
        info["offset"] = offset
        nb = self.store.query(
            "SELECT protocol, local_if_index, local_port, remote_name, remote_chassis_id, remote_port_id, "
            "remote_port_descr, remote_sys_descr, remote_address, remote_platform FROM snmp_neighbors "
            "WHERE device = {d:String} AND time = {t:DateTime64(3, 'UTC')} "
            "ORDER BY protocol DESC, local_if_index, remote_name LIMIT {lim:UInt32}",
            {"d": name, "t": t, "lim": neighbor_limit + 1}).dicts()
        info["neighbors_truncated"] = len(nb) > neighbor_limit
        info["neighbors"] = nb[:neighbor_limit]
        return info

    def _latest_rates(self, name: str, if_indexes: list[int]) -> dict[int, dict]:
        if not if_indexes:
            return {}
        res = self.store.query(
            "SELECT if_index, time, interval_s, in_bps, out_bps, in_util, out_util, in_pps, out_pps, "
            "in_errors_ps, out_errors_ps, in_discards_ps, out_discards_ps FROM snmp_interface_ts "
            "WHERE device = {d:String} AND if_index IN {ix:Array(UInt32)} "
            "ORDER BY if_index, time DESC LIMIT 1 BY if_index",
            {"d": name, "ix": if_indexes})
        return {r["if_index"]: {k: v for k, v in r.items() if k != "if_index"} for r in res.dicts()}

    def interface_details(self, name: str, if_index: Optional[int] = None, if_name: Optional[str] = None,
                          history: int = 60, changes: int = 50) -> dict:
        dev = self.registry.get(name)
        if dev is None:
            raise RegistryError(f"no SNMP device named {name!r}; list_snmp_devices shows the registered ones")
        if if_index is None and not if_name:
            raise RegistryError("give if_index or if_name")
        cond = "if_index = {ix:UInt32}" if if_index is not None else "(if_name = {nm:String} OR if_descr = {nm:String})"
        params = {"d": name, "ix": if_index or 0, "nm": if_name or ""}
        cur = self.store.query(
            f"SELECT * FROM snmp_interfaces WHERE device = {{d:String}} AND {cond} ORDER BY time DESC LIMIT 1",
            params).dicts()
        if not cur:
            raise RegistryError(f"no interface {if_index if if_index is not None else if_name!r} seen on {name}; "
                                "get_snmp_device_info lists its interfaces")
        itf = cur[0]
        ix = itf["if_index"]
        hist = self.store.query(
            "SELECT time, interval_s, in_bps, out_bps, in_util, out_util, in_pps, out_pps, in_errors_ps, "
            "out_errors_ps, in_discards_ps, out_discards_ps, admin_status, oper_status FROM snmp_interface_ts "
            "WHERE device = {d:String} AND if_index = {ix:UInt32} ORDER BY time DESC LIMIT {lim:UInt32}",
            {"d": name, "ix": ix, "lim": history}).dicts()
        ev = self.store.query(
            "SELECT time, event, severity, description FROM snmp_events WHERE device = {d:String} "
            "AND if_index = {ix:UInt32} ORDER BY time DESC LIMIT {lim:UInt32}",
            {"d": name, "ix": ix, "lim": changes}).dicts()
        return {"device": name, "interface": itf, "current_rates": hist[0] if hist else None,
                "history": list(reversed(hist)), "status_changes": ev}

    def device_config(self, name: str) -> dict:
        dev = self.registry.get(name)
        if dev is None:
            raise RegistryError(f"no SNMP device named {name!r}; list_snmp_devices shows the registered ones")
        cfg = dev.public()
        st = self.state.get(name)
        cfg["poll_budget_s"] = self.budget(dev)
        cfg["next_poll_in_s"] = (max(0.0, st.last_attempt + dev.interval_s - time.time())
                                 if st and st.last_attempt else 0.0)
        cfg["poller"] = {"max_concurrency": self.max_concurrency, "fdb_max": self.fdb_max}
        return cfg


def _interface_row(itf: Interface) -> dict[str, Any]:
    return {
        "if_index": itf.if_index, "if_name": itf.display_name, "if_descr": itf.descr, "if_alias": itf.alias,
        "if_type": itf.type, "mtu": itf.mtu, "speed_bps": itf.speed_bps, "phys_address": itf.phys_address,
        "admin_status": status_name(itf.admin_status), "oper_status": status_name(itf.oper_status),
        "last_change_ticks": itf.last_change, "counters_64bit": int(itf.counters_64),
        "in_octets": itf.in_octets or 0, "out_octets": itf.out_octets or 0,
        "in_ucast_pkts": itf.in_ucast_pkts or 0, "out_ucast_pkts": itf.out_ucast_pkts or 0,
        "in_errors": itf.in_errors or 0, "out_errors": itf.out_errors or 0,
        "in_discards": itf.in_discards or 0, "out_discards": itf.out_discards or 0,
        "ip_addresses": itf.ip_addresses,
    }
