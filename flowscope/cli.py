"""The `flowscope` command: a thin layer over the App."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from flowscope.config import Config, default_data_dir, parse_listen
from flowscope.store.backend import StoreUnavailable


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="data directory (default: $FLOWSCOPE_DATA_DIR or ~/.local/share/flowscope)")
    p.add_argument("--config", default=None, help="TOML config file (default: <data-dir>/flowscope.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowscope", description="Network intelligence for AI agents over MCP.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="meter captures/interfaces and serve MCP over HTTP")
    _common(serve)
    serve.add_argument("--pcap", action="append", default=[], metavar="FILE", help="capture file to ingest (repeatable)")
    serve.add_argument("--interface", action="append", default=[], metavar="IFACE", help="live interface (repeatable)")
    serve.add_argument("--collect", action="append", default=[], metavar="URL",
                       help="flow collector listener, e.g. udp://0.0.0.0:2055 (repeatable)")
    serve.add_argument("--listen", default=None, help="HOST:PORT to serve on (default 127.0.0.1:3000)")
    serve.add_argument("--clickhouse", default=None, metavar="URL",
                       help="ClickHouse server URL (default: embedded chDB in the data dir)")
    serve.add_argument("--local-networks", default=None, metavar="CIDRS", help="comma-separated local networks")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                       help="extra Host header accepted besides localhost (repeatable)")
    serve.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                       help="extra Origin accepted (repeatable)")

    ingest = sub.add_parser("ingest", help="import capture files offline")
    _common(ingest)
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    ingest.add_argument("--clickhouse", default=None, metavar="URL")
    ingest.add_argument("--idle-timeout", type=int, default=None, help="seconds (default 3600 for files)")
    ingest.add_argument("--active-timeout", type=int, default=None, help="seconds (default 86400 for files)")

    user = sub.add_parser("user", help="manage users")
    usub = user.add_subparsers(dest="action", metavar="ACTION")
    uadd = usub.add_parser("add", help="add a user")
    _common(uadd)
    uadd.add_argument("name")
    uadd.add_argument("--role", choices=["admin", "user"], required=True)
    uadd.add_argument("--allowed-networks", default="", metavar="CIDR[,CIDR...]",
                      help="only these networks are visible to the user (default: all)")
    ulist = usub.add_parser("list", help="list users")
    _common(ulist)

    token = sub.add_parser("token", help="manage API tokens")
    tsub = token.add_subparsers(dest="action", metavar="ACTION")
    tcreate = tsub.add_parser("create", help="create a token (printed once, on the last line)")
    _common(tcreate)
    tcreate.add_argument("user")
    tcreate.add_argument("--read-only", action="store_true", help="refuse every write tool")
    tlist = tsub.add_parser("list", help="list tokens (ids, never the tokens)")
    _common(tlist)
    trevoke = tsub.add_parser("revoke", help="revoke a token by id")
    _common(trevoke)
    trevoke.add_argument("id")

    stdio = sub.add_parser("stdio", help="serve MCP over stdio for local clients")
    _common(stdio)
    stdio.add_argument("--user", required=True)
    stdio.add_argument("--pcap", action="append", default=[], metavar="FILE")
    stdio.add_argument("--clickhouse", default=None, metavar="URL")

    try:
        from flowscope.services.snmp.cli import add_cli

        add_cli(sub)
    except ImportError:
        pass
    return parser


def _config(args, **overrides) -> Config:
    data_dir = args.data_dir or default_data_dir()
    return Config(data_dir=data_dir, config_file=args.config, **{k: v for k, v in overrides.items() if v})


def fail(message: str) -> int:
    print(f"flowscope: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("FLOWSCOPE_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "ingest":
            return cmd_ingest(args)
        if args.command == "user":
            return cmd_user(args, parser)
        if args.command == "token":
            return cmd_token(args, parser)
        if args.command == "stdio":
            return cmd_stdio(args)
        if args.command == "snmp" and hasattr(args, "func"):
            return args.func(args)
    except (ValueError, StoreUnavailable) as exc:
        return fail(str(exc))
    parser.print_help()
    return 2


def cmd_user(args, parser) -> int:
    from flowscope.auth import Auth, AuthError

    if args.action not in ("add", "list"):
        parser.parse_args(["user", "--help"])
    auth = Auth(_config(args).data_dir)
    try:
        if args.action == "add":
            u = auth.add_user(args.name, args.role, args.allowed_networks)
            nets = ",".join(u["allowed_networks"]) or "all"
            print(f"user {u['name']} added (role {u['role']}, networks {nets})")
        else:
            for u in auth.list_users():
                print(f"{u['name']}\t{u['role']}\t{','.join(u['allowed_networks']) or 'all'}")
    except AuthError as exc:
        return fail(str(exc))
    return 0


def cmd_token(args, parser) -> int:
    from flowscope.auth import Auth, AuthError

    if args.action not in ("create", "list", "revoke"):
        parser.parse_args(["token", "--help"])
    auth = Auth(_config(args).data_dir)
    try:
        if args.action == "create":
            token_id, token = auth.create_token(args.user, read_only=args.read_only)
            mode = "read-only" if args.read_only else "read-write"
            print(f"token {token_id} for {args.user} ({mode}); it is shown once, store it now:")
            print(token)
        elif args.action == "list":
            for t in auth.list_tokens():
                state = "revoked" if t["revoked"] else ("read-only" if t["read_only"] else "read-write")
                print(f"{t['id']}\t{t['user']}\t{state}")
        else:
            auth.revoke_token(args.id)
            print(f"token {args.id} revoked")
    except AuthError as exc:
        return fail(str(exc))
    return 0


def cmd_ingest(args) -> int:
    from flowscope.capture.ingest import IngestError, check_readable, ingest_files
    from flowscope.services.hosts import geo
    from flowscope.store import Store

    for path in args.files:
        try:
            check_readable(path)
        except IngestError as exc:
            return fail(str(exc))
    cfg = _config(args, clickhouse_url=args.clickhouse)
    store = Store(cfg.data_dir, cfg.clickhouse_url)
    store.migrate()
    hosts = cfg.section("hosts")
    geo.configure(hosts.get("geoip_db"), hosts.get("asn_db"))  # countries, as `serve` stores them
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(args.files), unit="file", desc="ingest", file=sys.stderr)
    current: list[str] = []

    def progress(path, summary):
        if bar is None:
            return
        if current and current[-1] != path:
            bar.update(1)  # the previous file is done
        if not current or current[-1] != path:
            current.append(path)
        bar.set_postfix(flows=summary.flows, packets=summary.packets)

    _stop_on_signals()  # the embedded ClickHouse replaces Python's SIGINT handler
    summary = ingest_files(store, args.files, workers=args.workers,
                           idle_timeout=args.idle_timeout or cfg.file_idle_timeout,
                           active_timeout=args.active_timeout or cfg.file_active_timeout,
                           enrich=geo.enrich_flow_rows, progress=progress)
    if bar is not None:
        bar.update(bar.total - bar.n)
        bar.close()
    store.close()
    print(summary.line())
    for note in summary.notes:
        print(f"flowscope: {note}", file=sys.stderr)
    if summary.interrupted:
        print("flowscope: interrupted; the flows metered so far are stored", file=sys.stderr)
        return 130
    if summary.errors:
        for err in summary.errors:
            print(f"flowscope: {err}", file=sys.stderr)
        return 1
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop an ingest between batches: what was metered is stored."""
    import signal

    from flowscope.capture.ingest import STOP

    def stop(signum, frame):
        STOP.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def cmd_serve(args) -> int:
    import uvicorn

    from flowscope.app import App
    from flowscope.mcp.server import build_http_app

    overrides = dict(listen=args.listen, clickhouse_url=args.clickhouse, pcaps=args.pcap,
                     interfaces=args.interface, collect=args.collect,
                     allowed_hosts=args.allowed_host, allowed_origins=args.allowed_origin)
    if args.local_networks:
        overrides["local_networks"] = args.local_networks.split(",")
    cfg = _config(args, **overrides)
    host, port = parse_listen(cfg.listen)
    from flowscope.capture.ingest import IngestError, check_readable

    for path in cfg.pcaps:
        try:
            check_readable(path)
        except IngestError as exc:
            return fail(str(exc))
    app = App(cfg)
    http_app = build_http_app(app)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}/mcp"
    print(f"flowscope serving MCP on {url} (data in {cfg.data_dir})", flush=True)
    uvicorn.run(http_app, host=host, port=port, log_level="warning", lifespan="on")
    print("flowscope stopped", flush=True)
    return 0


def cmd_stdio(args) -> int:
    import anyio

    from flowscope.app import App
    from flowscope.auth import AuthError
    from flowscope.mcp import toolkit
    from flowscope.mcp.server import build_mcp

    cfg = _config(args, clickhouse_url=args.clickhouse, pcaps=args.pcap)
    app = App(cfg)
    try:
        principal = app.auth.principal_for_user(args.user)
    except AuthError as exc:
        return fail(str(exc))
    toolkit.current_principal.set(principal)
    server = build_mcp(app)

    async def run():
        await app.start()
        try:
            await server.run_stdio_async()
        finally:
            await app.stop()

    anyio.run(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
