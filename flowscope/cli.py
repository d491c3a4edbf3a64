"""The `flowscope` command: a thin layer over the App."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import flowscope
from flowscope.modules import StartupError
from flowscope.services.snmp.cli import add_cli as add_snmp_cli
from flowscope.store.backend import StoreUnavailable


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="data directory (default: $FLOWSCOPE_DATA_DIR or ~/.local/share/flowscope)")
    p.add_argument("--config", default=None, help="TOML config file (default: <data-dir>/flowscope.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowscope", description="Network intelligence for AI agents over MCP.")
    parser.add_argument("--version", action="version", version=f"flowscope {flowscope.__version__}")
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
    serve.add_argument("--retain-packets", default=None, metavar="SIZE",
                       help="keep packets of --interface sources in a ring of capture files under the data dir, "
                            "at most SIZE on disk (e.g. 2GiB)")
    serve.add_argument("--retain-packets-for", default=None, metavar="AGE",
                       help="and for at most AGE (e.g. 24h); alone, the ring holds at most 1GiB")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                       help="extra Host header accepted besides localhost (repeatable)")
    serve.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                       help="extra Origin accepted (repeatable)")
    serve.add_argument("--tls-cert", default=None, metavar="FILE", help="serve HTTPS with this PEM certificate")
    serve.add_argument("--tls-key", default=None, metavar="FILE", help="private key (PEM) of --tls-cert")
    serve.add_argument("--metrics-listen", default=None, metavar="HOST:PORT",
                       help="serve Prometheus /metrics here without a token (on --listen it needs an admin token)")

    serve.add_argument("--toolsets", default=None, metavar="A,B",
                       help="MCP toolsets served on /mcp by default (all, default, flows, hosts, timeseries, "
                            "alerts, sql, snmp, collector, monitoring, policies, assets)")
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
    uedit = usub.add_parser("edit", help="change a user's role or allowed networks (tokens follow at once)")
    _common(uedit)
    uedit.add_argument("name")
    uedit.add_argument("--role", choices=["admin", "user"], default=None)
    uedit.add_argument("--allowed-networks", default=None, metavar="CIDR[,CIDR...]",
                       help="replace the user's networks ('' = all networks)")
    uremove = usub.add_parser("remove", help="delete a user and revoke their tokens (their policies pause)")
    _common(uremove)
    uremove.add_argument("name")

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

    add_snmp_cli(sub)
    return parser


def _config(args, **overrides):
    """Settings with what was given on the command line on top (flags left out do not count).
    (`flowscope.config` is imported here: pydantic-settings is a tenth of a second, and the meters'
    fork server imports this module too.)"""
    from flowscope.config import Config

    given = dict(data_dir=args.data_dir, config_file=args.config, **overrides)
    return Config(**{k: v for k, v in given.items() if v not in (None, [], "")})


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
    except (ValueError, StoreUnavailable, StartupError) as exc:
        return fail(str(exc))
    parser.print_help()
    return 2


def cmd_user(args, parser) -> int:
    from flowscope.auth import Auth, AuthError

    if args.action not in ("add", "list", "edit", "remove"):
        parser.parse_args(["user", "--help"])
    auth = Auth(_config(args).data_dir)
    try:
        if args.action in ("add", "edit"):
            if args.action == "add":
                u = auth.add_user(args.name, args.role, args.allowed_networks)
            else:
                u = auth.edit_user(args.name, args.role, args.allowed_networks)
            nets = ",".join(u["allowed_networks"]) or "all"
            print(f"user {u['name']} {args.action}ed (role {u['role']}, networks {nets})")
        elif args.action == "remove":
            u = auth.remove_user(args.name)
            print(f"user {u['name']} removed; {u['tokens_revoked']} token(s) revoked")
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
    """Import capture files; while `serve` holds the data directory, it does the import."""
    from flowscope.capture.ingest import IngestError, check_readable, start_meters

    start_meters()  # first: the meters' fork server starts (and imports nfstream) while this one goes on
    from flowscope import runtime

    for path in args.files:
        try:
            check_readable(path)
        except IngestError as exc:
            return fail(str(exc))
    cfg = _config(args, clickhouse_url=args.clickhouse, file_idle_timeout=args.idle_timeout,
                  file_active_timeout=args.active_timeout)
    bar = _IngestBar(len(args.files))
    meter = dict(workers=args.workers, idle_timeout=cfg.file_idle_timeout, active_timeout=cfg.file_active_timeout)
    running = runtime.find(cfg.data_dir)
    try:
        if running is None:
            try:
                summary = _ingest_here(cfg, args.files, bar.progress, **meter)
            except StoreUnavailable:
                running = runtime.wait_for(cfg.data_dir, 30)  # a server holds it: it may be starting
                if running is None:
                    raise
        if running is not None:
            from flowscope.capture.handoff import hand_off

            if not runtime.wait_ready(running):
                return fail(f"the server holding {cfg.data_dir} does not answer at {running.url}")
            summary = hand_off(running, args.files, progress=bar.progress, **meter)
    except IngestError as exc:
        return fail(str(exc))
    finally:
        bar.close()
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


class _IngestBar:
    """Files done, flows and packets so far, on stderr when it is a terminal."""

    def __init__(self, total: int):
        self.bar = None
        self.current: list[str] = []
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="ingest", file=sys.stderr)

    def progress(self, path, summary) -> None:
        if self.bar is None:
            return
        if self.current and self.current[-1] != path:
            self.bar.update(1)  # the previous file is done
        if not self.current or self.current[-1] != path:
            self.current.append(path)
        self.bar.set_postfix(flows=summary.flows, packets=summary.packets)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()


def _ingest_here(cfg, files, progress, *, workers, idle_timeout, active_timeout):
    """Import in this process (no server holds the data directory). Metering does not wait for the
    store: it opens on a thread once the workers are started (importing chDB holds the GIL for
    most of a second), and rows wait for it (see `_OpeningStore`)."""
    import os
    import threading

    from flowscope.capture.ingest import ingest_files
    from flowscope.services.hosts import geo
    from flowscope.services.packets import ingest_recorder

    files = [os.path.abspath(f) for f in files]  # importing chDB changes the working directory a while
    hosts = cfg.section("hosts")
    places = geo.configure(hosts.get("geoip_db"), hosts.get("asn_db"))  # countries, as `serve` stores them
    # a first lookup loads the address database (~0.3 s) before the first rows need it
    threading.Thread(target=places.lookup, args=("1.1.1.1",), name="geo-load", daemon=True).start()
    store = _OpeningStore(cfg)
    try:
        interface_ids, remember_files = ingest_recorder(store, files)  # where each flow's packets are
        _stop_on_signals()
        return ingest_files(store, files, workers=workers, idle_timeout=idle_timeout or cfg.file_idle_timeout,
                            active_timeout=active_timeout or cfg.file_active_timeout,
                            interface_ids=interface_ids, enrich=geo.enrich_flow_rows, on_rows=remember_files,
                            progress=progress, on_started=store.open)
    finally:
        store.close()


class _OpeningStore:
    """A Store opened and migrated on a thread once `open()` is called; using it waits for the
    opening (and opens it, if nobody did), and raises what the opening raised (e.g. StoreUnavailable)."""

    def __init__(self, cfg):
        import threading

        self._cfg = cfg
        self._out: list = []
        self._thread = threading.Thread(target=self._open, name="store-open", daemon=True)
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            if self._thread.ident is None:
                self._thread.start()

    def _open(self) -> None:
        from flowscope.store import Store

        try:
            store = Store(self._cfg.data_dir, self._cfg.clickhouse_url)
            try:
                store.migrate()
            except BaseException:
                store.close()
                raise
            self._out.append(store)
        except BaseException as exc:
            self._out.append(exc)

    def _store(self):
        self.open()
        self._thread.join()
        if isinstance(self._out[0], BaseException):
            raise self._out[0]
        return self._out[0]

    def __getattr__(self, name: str):
        return getattr(self._store(), name)

    def close(self) -> None:
        self.open()
        self._thread.join()
        if not isinstance(self._out[0], BaseException):
            self._out[0].close()


def cmd_serve(args) -> int:
    import uvicorn

    from flowscope.app import App
    from flowscope.mcp.server import build_http_app

    cfg = _config(args, listen=args.listen, clickhouse_url=args.clickhouse, pcaps=args.pcap,
                  interfaces=args.interface, collect=args.collect, local_networks=args.local_networks,
                  allowed_hosts=args.allowed_host, allowed_origins=args.allowed_origin,
                  metrics_listen=args.metrics_listen, tls_cert=args.tls_cert, tls_key=args.tls_key,
                  toolsets=args.toolsets, retain_packets=args.retain_packets,
                  retain_packets_for=args.retain_packets_for)
    from flowscope.config import parse_listen

    host, port = parse_listen(cfg.listen)
    from flowscope.services.packets.settings import PacketSettings

    packets = PacketSettings.of(cfg)  # a bad size or age stops here, with its reason
    if packets.retaining:
        packets.ring_plan()
    from flowscope.capture.ingest import IngestError, check_readable

    for path in cfg.pcaps:
        try:
            check_readable(path)
        except IngestError as exc:
            return fail(str(exc))
    problem = tls_problem(cfg.tls_cert, cfg.tls_key)
    if problem:
        return fail(problem)
    if not cfg.tls_cert and not is_loopback(host):
        print(f"flowscope: warning: serving {host} without TLS: tokens cross the network in clear text; "
              "add --tls-cert FILE --tls-key FILE, or listen on 127.0.0.1", file=sys.stderr, flush=True)
    from flowscope import runtime

    app = App(cfg)
    http_app = build_http_app(app, local_url=runtime.local_url(host, port, bool(cfg.tls_cert)))
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if cfg.tls_cert else "http"
    url = f"{scheme}://{shown if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}/mcp"
    print(f"flowscope serving MCP on {url} (data in {cfg.data_dir})", flush=True)
    uvicorn.run(http_app, host=host, port=port, log_level="warning", lifespan="on",
                ssl_certfile=cfg.tls_cert, ssl_keyfile=cfg.tls_key)
    print("flowscope stopped", flush=True)
    return 0


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_problem(cert: str | None, key: str | None) -> str | None:
    """Why the TLS settings cannot serve (None when they can, or when there are none)."""
    import ssl

    if not cert and not key:
        return None
    if not (cert and key):
        return "--tls-cert and --tls-key go together (a PEM certificate and its private key)"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot use TLS certificate {cert} with key {key}: {exc.strerror or exc}"
    return None


def cmd_stdio(args) -> int:
    """MCP over stdio; while `serve` holds the data directory, a relay to it as the same user."""
    from flowscope import runtime
    from flowscope.app import App
    from flowscope.auth import Auth, AuthError

    cfg = _config(args, clickhouse_url=args.clickhouse, pcaps=args.pcap)
    try:
        principal = Auth(cfg.data_dir).principal_for_user(args.user)
    except AuthError as exc:
        return fail(str(exc))
    running = runtime.find(cfg.data_dir)
    if running is None:
        try:
            app = App(cfg)
        except StoreUnavailable:
            running = runtime.wait_for(cfg.data_dir, 30)  # a server holds it: it may be starting
            if running is None:
                raise
        else:
            return _stdio_here(app, principal)
    return _stdio_bridge(cfg, running, args.user)


def _stdio_here(app, principal) -> int:
    import anyio

    from flowscope.mcp import toolkit
    from flowscope.mcp.protocol import run_stdio
    from flowscope.mcp.server import build_mcp

    toolkit.current_principal.set(principal)
    server = build_mcp(app)

    async def run():
        await app.start()
        try:
            await run_stdio(server)
        finally:
            await app.stop()

    anyio.run(run)
    return 0


def _stdio_bridge(cfg, running, user: str) -> int:
    """Relay to the running server; `--pcap` files are handed to it, as `flowscope ingest` does."""
    import threading

    import anyio

    from flowscope import runtime
    from flowscope.mcp.bridge import relay

    if not runtime.wait_ready(running):
        return fail(f"the server holding {cfg.data_dir} does not answer at {running.url}")
    if cfg.pcaps:
        threading.Thread(target=_hand_off_quietly, args=(running, cfg.pcaps), daemon=True).start()
    anyio.run(relay, running, user)
    return 0


def _hand_off_quietly(running, files) -> None:
    from flowscope.capture.handoff import hand_off

    try:
        summary = hand_off(running, files)
        print(f"flowscope: {summary.line()}", file=sys.stderr)
        for err in summary.errors:
            print(f"flowscope: {err}", file=sys.stderr)
    except Exception as exc:  # stdout is the protocol: report on stderr, keep serving
        print(f"flowscope: could not hand {', '.join(files)} to the server: {exc}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
