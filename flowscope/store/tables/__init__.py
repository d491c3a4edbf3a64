"""Every domain's tables, each in its own module; importing this package registers them all.

Imported in this order (flows first: the lookups and rollups refer to it), which is also the
order `list_tables` shows them in.
"""

from flowscope.store.tables import flows  # noqa: I001
from flowscope.store.tables import audit, alerts, monitoring, timeseries, host_days, collector, hosts, snmp, packets

MODULES = (flows, audit, alerts, monitoring, timeseries, host_days, collector, hosts, snmp, packets)
