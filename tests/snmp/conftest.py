"""SNMP fixtures; the helpers live in snmp_harness.py."""

from snmp_harness import app, service, snmpd, snmpsim  # noqa: F401
