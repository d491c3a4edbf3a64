"""Imported once by the meters' fork server (see `capture.ingest`): nfstream, the row code and the
nDPI catalogue load there, while the parent opens the store, so every worker forks ready to meter."""

from flowscope.capture.nfstream_source import import_nfstream, instrument
from flowscope.flows import record  # noqa: F401
from flowscope.flows.ndpi_catalog import catalog

import_nfstream()
instrument()
try:
    catalog()
except Exception:  # the workers report it (as ids without names) when they meet a flow
    pass
