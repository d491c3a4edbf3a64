"""`flowscope snmp add|edit|list|remove|test`: manage the SNMP device registry from the shell.

Works while a server runs (the registry is SQLite; the server re-reads it every second).
Secrets are never printed. Pass them as `-` to be prompted, or through the environment
variables FLOWSCOPE_SNMP_COMMUNITY, FLOWSCOPE_SNMP_AUTH_PASS and FLOWSCOPE_SNMP_PRIV_PASS,
which keeps them out of the process list and shell history.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any, Optional

from flowscope.services.snmp.registry import (AUTH_PROTOCOLS, PRIV_PROTOCOLS, SECURITY_LEVELS, Registry,
                                              RegistryError, canonical_version, make_device)

ENV = {"community": "FLOWSCOPE_SNMP_COMMUNITY", "auth_pass": "FLOWSCOPE_SNMP_AUTH_PASS",
       "priv_pass": "FLOWSCOPE_SNMP_PRIV_PASS"}


def _data_dir(args) -> str:
    from flowscope.config import default_data_dir

    return getattr(args, "data_dir", None) or default_data_dir()


def _device_options(p: argparse.ArgumentParser, editing: bool) -> None:
    d = (lambda v: None) if editing else (lambda v: v)
    p.add_argument("--port", type=int, default=d(161), help="UDP port (default 161)")
    p.add_argument("--version", dest="snmp_version", choices=["v1", "v2c", "v3"], default=d("v2c"),
                   type=canonical_version, help="v1, v2c or v3 (also 1, 2c, 2, 3)")
    p.add_argument("--community", default=None, help="v1/v2c read community ('-' to be prompted)")
    p.add_argument("--user", default=None, help="v3 user name")
    p.add_argument("--level", dest="security_level", choices=SECURITY_LEVELS, default=None)
    p.add_argument("--auth-protocol", choices=AUTH_PROTOCOLS, default=None)
    p.add_argument("--auth-pass", default=None, help="v3 auth passphrase ('-' to be prompted)")
    p.add_argument("--priv-protocol", choices=PRIV_PROTOCOLS, default=None)
    p.add_argument("--priv-pass", default=None, help="v3 privacy passphrase ('-' to be prompted)")
    p.add_argument("--context", default=None, help="v3 context name")
    p.add_argument("--interval", dest="interval_s", type=int, default=d(60), help="seconds between polls")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=d(2.0), help="seconds per request")
    p.add_argument("--retries", type=int, default=d(1))


def _dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=argparse.SUPPRESS,
                   help="data directory (default: $FLOWSCOPE_DATA_DIR or ~/.local/share/flowscope)")


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register `snmp` on an argparse subparsers object; sets `func(args)` on each action."""
    snmp = subparsers.add_parser("snmp", help="manage SNMP-polled devices")
    snmp.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    snmp.add_argument("--config", default=None, help=argparse.SUPPRESS)
    acts = snmp.add_subparsers(dest="snmp_action", metavar="ACTION")

    add = acts.add_parser("add", help="register a device (checks it answers first)")
    add.add_argument("host")
    add.add_argument("--name", default=None, help="name to register it under (default: the address)")
    _device_options(add, editing=False)
    add.add_argument("--no-check", action="store_true", help="register without polling it first")
    _dir_option(add)
    add.set_defaults(func=lambda a: cmd_add(a, _data_dir(a)))

    edit = acts.add_parser("edit", help="change a device's settings or credentials")
    edit.add_argument("name")
    edit.add_argument("--host", default=None)
    _device_options(edit, editing=True)
    edit.add_argument("--enable", dest="enabled", action="store_true", default=None)
    edit.add_argument("--disable", dest="enabled", action="store_false")
    _dir_option(edit)
    edit.set_defaults(func=lambda a: cmd_edit(a, _data_dir(a)))

    ls = acts.add_parser("list", help="list devices (secrets masked)")
    ls.add_argument("--json", action="store_true")
    _dir_option(ls)
    ls.set_defaults(func=lambda a: cmd_list(a, _data_dir(a)))

    rm = acts.add_parser("remove", help="stop polling a device and forget its credentials")
    rm.add_argument("name")
    _dir_option(rm)
    rm.set_defaults(func=lambda a: cmd_remove(a, _data_dir(a)))

    test = acts.add_parser("test", help="poll a registered device once and print what it answers")
    test.add_argument("name")
    _dir_option(test)
    test.set_defaults(func=lambda a: cmd_test(a, _data_dir(a)))

    snmp.set_defaults(func=lambda a: (snmp.print_help(), 2)[1])
    return snmp


def _secret(value: Optional[str], field: str) -> Optional[str]:
    if value == "-":
        return getpass.getpass(f"{field.replace('_', ' ')}: ")
    if value:
        return value
    return os.environ.get(ENV[field]) or None


def _fields(args) -> dict[str, Any]:
    return {
        "port": args.port, "version": args.snmp_version,
        "community": _secret(args.community, "community"), "user": args.user,
        "security_level": args.security_level, "auth_protocol": args.auth_protocol,
        "auth_pass": _secret(args.auth_pass, "auth_pass"), "priv_protocol": args.priv_protocol,
        "priv_pass": _secret(args.priv_pass, "priv_pass"), "interval_s": args.interval_s,
        "timeout_s": args.timeout_s, "retries": args.retries,
    }


def _err(msg: str) -> int:
    print(f"flowscope snmp: {msg}", file=sys.stderr)
    return 2


def _summary(dev) -> str:
    from flowscope.services.snmp.poller import PollError, poll_with_budget
    from flowscope.services.snmp.service import SnmpService

    try:
        r = asyncio.run(poll_with_budget(dev, SnmpService.budget(dev)))
    except PollError as exc:
        raise RegistryError(exc.message) from None
    lldp = sum(1 for n in r.neighbors if n.protocol == "lldp")
    cdp = len(r.neighbors) - lldp
    return (f"sysName={r.system.get('sys_name')!r} interfaces={len(r.interfaces)} "
            f"lldp_neighbors={lldp} cdp_neighbors={cdp} macs={len(r.fdb)} ({r.duration_s:.2f}s)")


def cmd_add(args, data_dir: str) -> int:
    try:
        reg = Registry(data_dir)
        f = _fields(args)
        dev = make_device(args.name, args.host, context=args.context or "", created_by="cli",
                          **{k: v for k, v in f.items() if v is not None})
        if reg.get(dev.name):
            return _err(f"a device named {dev.name!r} already exists (edit or remove it)")
        found = "" if args.no_check else _summary(dev)
        reg.add(dev)
    except RegistryError as exc:
        return _err(f"not added: {exc}")
    print(f"added {dev.name} ({dev.host}:{dev.port} {dev.version})" + (f": {found}" if found else ""))
    return 0


def cmd_edit(args, data_dir: str) -> int:
    try:
        reg = Registry(data_dir)
        changes = {k: v for k, v in _fields(args).items() if v is not None}
        if args.host:
            changes["host"] = args.host
        if args.context is not None:
            changes["context"] = args.context
        if args.enabled is not None:
            changes["enabled"] = args.enabled
        dev = reg.update(args.name, **changes)
    except RegistryError as exc:
        return _err(str(exc))
    print(f"updated {dev.name}")
    return 0


def cmd_list(args, data_dir: str) -> int:
    devices = [d.public() for d in Registry(data_dir).list()]
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    for d in devices:
        cred = f"user={d['user']} {d['security_level']}" if d["version"] == "v3" else "community=****"
        print("\t".join([d["name"], f"{d['host']}:{d['port']}", d["version"], cred,
                         f"every {d['interval_s']}s", "enabled" if d["enabled"] else "disabled"]))
    return 0


def cmd_remove(args, data_dir: str) -> int:
    if not Registry(data_dir).remove(args.name):
        return _err(f"no SNMP device named {args.name!r}")
    print(f"removed {args.name}")
    return 0


def cmd_test(args, data_dir: str) -> int:
    dev = Registry(data_dir).get(args.name)
    if dev is None:
        return _err(f"no SNMP device named {args.name!r}")
    try:
        print(f"{dev.name}: {_summary(dev)}")
    except RegistryError as exc:
        return _err(str(exc))
    return 0
