"""Host labels set by users (`host_labels`): the latest label of an address wins."""

from __future__ import annotations

import time

from flowscope.auth import Scope, parse_ip
from flowscope.services.errors import ServiceError
from flowscope.services.flows import iso


def label_of(app, ip: str) -> str:
    try:
        return app.store.query("SELECT argMax(label, updated_at) FROM host_labels WHERE ip = {ip:String}",
                               {"ip": ip}).scalar() or ""
    except Exception:
        return ""


def set_label(app, scope: Scope, ip: str, label: str, by: str) -> dict:
    addr = parse_ip(ip)
    if addr is None:
        raise ServiceError(f"not an IP address: {ip!r} (e.g. 192.168.1.10)")
    ip = str(addr)
    scope.require(ip)
    now = time.time()
    app.store.insert_dicts("host_labels", [{"ip": ip, "label": label, "set_by": by, "updated_at": now}])
    return {"ip": ip, "label": label, "updated_at": iso(now)}
