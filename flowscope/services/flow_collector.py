"""Component `collector` (app.components["collector"]): runs flowscope/collector, NetFlow v5/v9,
IPFIX and sFlow collection (off unless listen URLs are given).

`flowscope serve --collect udp://0.0.0.0:2055` (repeatable) or, in the config file::

    [collector]
    listen = ["udp://0.0.0.0:2055", "udp://[::]:6343"]
"""

from __future__ import annotations

from flowscope.collector.runtime import FlowCollector

COMPONENT = "collector"


class _LazySnmp:
    """Finds the SNMP component when asked (it may attach after us)."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):
        comp = self.app.components.get("snmp")
        if comp is None:
            raise AttributeError(name)
        return getattr(comp, name)


def attach(app):
    urls = list(getattr(app.config, "collect", None) or [])
    if not urls:
        urls = list(app.config.section("collector").get("listen", []) or [])
    urls = list(dict.fromkeys(urls))      # the same URL twice would fail to bind
    if not urls:
        return None
    section = app.config.section("collector")
    return FlowCollector(
        app.store, urls,
        hooks=getattr(app, "flow_hooks", None),
        batch_rows=int(section.get("batch_rows", getattr(app.config, "batch_rows", 50_000))),
        batch_seconds=float(section.get("batch_seconds", getattr(app.config, "batch_seconds", 1.0))),
        snmp=_LazySnmp(app),
        live=app.live,
        flow_writer=app.writer,  # one writer for every source: same enrichment, same hooks
    )
