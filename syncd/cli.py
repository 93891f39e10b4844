"""The `syncd` command line. Exit codes: 0 done, 1 finished with errors, 2 bad config or usage.

Every error a person can act on is one line on stderr saying what is wrong and what to do;
nothing here prints a traceback or a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

from syncd import __version__
from syncd.errors import ConfigError, SyncdError
from syncd.logs import configure
from syncd.settings import Settings, load_settings, mask_url, masked

EXIT_OK, EXIT_ERRORS, EXIT_CONFIG = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> Any:
        raise ConfigError(f"{message} (see 'syncd --help')")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", help="the TOML config file (default: $SYNCD_CONFIG)"
    )
    common.add_argument(
        "--log-format",
        choices=["auto", "json", "plain"],
        default="auto",
        help="log lines as JSON or plain text (auto: JSON unless on a terminal)",
    )
    parser = _Parser(
        prog="syncd", description="Keep loyalty points equal between Wix and your POS."
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = commands.add_parser(
        "check-config",
        parents=[common],
        help="validate the config file and show it, secrets masked",
    )
    check.add_argument(
        "--connect", action="store_true", help="also call Wix and report the loyalty program"
    )
    check.set_defaults(handler=check_config)

    sandbox = commands.add_parser(
        "sandbox", parents=[common], help="serve the bundled emulators of the vendor APIs"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument(
        "--port", type=int, default=9000, help="Wix emulator port; Square's is the next one"
    )
    sandbox.add_argument("--accounts", type=int, default=25, help="customers to seed (default 25)")
    sandbox.add_argument("--seed", type=int, default=0, help="random seed for data and faults")
    sandbox.add_argument("--webhook-url", help="where the emulator delivers its webhooks")
    sandbox.set_defaults(handler=run_sandbox)

    run = commands.add_parser(
        "run", parents=[common], help="the daemon: webhooks, polling and workers, until SIGTERM"
    )
    run.set_defaults(handler=run_daemon)

    connectors_command = commands.add_parser(
        "connectors", parents=[common], help="the installed connector types and what they can do"
    )
    connectors_command.set_defaults(handler=list_connectors)

    status_command = commands.add_parser(
        "status", parents=[common], help="links, backlog, outbox and conflicts, from the store"
    )
    status_command.add_argument("--json", action="store_true", help="print JSON")
    status_command.set_defaults(handler=show_status)

    conflicts = commands.add_parser(
        "conflicts", parents=[common], help="what waits for a person: `syncd conflicts list`"
    )
    conflicts.add_argument(
        "action", choices=["list", "resolve"], help="list the open ones, or resolve one"
    )
    conflicts.add_argument("id", nargs="?", type=int, help="with resolve: the conflict's #id")
    conflicts.add_argument(
        "--take", nargs="+", metavar="SIDE", help="with resolve: wix | external | value N"
    )
    conflicts.add_argument("--json", action="store_true", help="print JSON")
    conflicts.set_defaults(handler=conflicts_command)

    reconcile = commands.add_parser(
        "reconcile",
        parents=[common],
        help="one-shot backfill: match every customer on both sides, carry differences, report",
        description="Same as `syncd --reconcile`.",
    )
    reconcile.add_argument(
        "--dry-run", action="store_true", help="plan and report, write nothing anywhere"
    )
    reconcile.add_argument(
        "--plan", metavar="FILE", help="with --dry-run: write the per-account plan (.csv/.json)"
    )
    reconcile.add_argument(
        "--force", action="store_true", help="apply even past sync.max_changed_fraction"
    )
    reconcile.set_defaults(handler=run_reconcile)

    demo = commands.add_parser(
        "demo", parents=[common], help="see syncd work against the sandbox, no accounts needed"
    )
    demo.add_argument("--accounts", type=int, default=250, help="customers to seed (default 250)")
    demo.add_argument(
        "--duration",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long customers act while syncd runs (default 20; Ctrl-C stops early)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed for data and faults")
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if "--reconcile" in words:  # `syncd --reconcile ...` is `syncd reconcile ...`
        words = ["reconcile", *(w for w in words if w != "--reconcile")]
    try:
        args = parser.parse_args(words)
        if args.command is None:
            parser.print_help()
            return EXIT_CONFIG
        configure(json_lines={"auto": None, "json": True, "plain": False}[args.log_format])
        return int(args.handler(args))
    except ConfigError as error:
        for problem in error.problems:
            print(f"syncd: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except SyncdError as error:
        print(f"syncd: {error}", file=sys.stderr)
        return EXIT_ERRORS
    except KeyboardInterrupt:
        print("syncd: interrupted", file=sys.stderr)
        return 130


def check_config(args: argparse.Namespace) -> int:
    import connectors

    settings = load_settings(args.config)
    connectors.typed_settings(settings)
    print(f"config: {args.config or 'from the environment'}")
    for key, value in _flatten(masked(settings)):
        print(f"  {key} = {value}")
    print(
        f"ok: {len(settings.connectors)} connector(s), Wix auth by "
        f"{'OAuth app' if settings.wix.uses_oauth else 'API key'}"
    )
    if args.connect:
        _probe_database(settings)
        return asyncio.run(_probe_wix(settings))
    return EXIT_OK


def _probe_database(settings: Settings) -> None:
    from syncd.store.db import open_store

    open_store(settings.database.url).dispose()
    print(f"database: reachable, schema up to date ({mask_url(settings.database.url)})")


async def _probe_wix(settings: Settings) -> int:
    from syncd.retry import RetryPolicy
    from syncd.wix.client import WixClient

    started = time.monotonic()
    async with WixClient(settings.wix, retry=RetryPolicy(attempts=3, max_seconds=20)) as wix:
        program = await wix.get_program()
    elapsed_ms = (time.monotonic() - started) * 1000
    print(
        f"wix: reachable at {settings.wix.base_url} in {elapsed_ms:.0f} ms; "
        f"program {program.name!r} is {program.status}"
    )
    if not program.active:
        print(
            "wix: points can only move while the program is ACTIVE: activate it in the "
            "site's dashboard (Loyalty Program)"
        )
        return EXIT_ERRORS
    return EXIT_OK


def list_connectors(args: argparse.Namespace) -> int:
    import connectors

    found = connectors.connector_types()
    if not found:
        print("no connector types installed (entry-point group syncd.connectors)")
        return EXIT_ERRORS
    for name, kind in sorted(found.items()):
        can = kind.capabilities
        writes = "delta writes" if can.delta_writes else "absolute writes"
        extras = [
            writes,
            "idempotency keys" if can.idempotency_keys else "",
            "webhooks" if can.webhooks else "",
            "change feed" if can.change_feed else "",
            "creates accounts" if can.create_accounts else "",
            f"finds by {', '.join(sorted(can.find_by))}" if can.find_by else "",
        ]
        module = kind.__module__.split(".")[0]
        print(f"{name:<10} {', '.join(e for e in extras if e)}  ({module})")
    return EXIT_OK


def show_status(args: argparse.Namespace) -> int:
    import json

    from syncd.runtime.overview import overview
    from syncd.store.db import open_store

    engine = open_store(load_settings(args.config).database.url)
    try:
        data = overview(engine)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"links           {_pairs_text(data['links']) or 'none yet (run syncd --reconcile)'}")
    print(
        f"waiting         {data['dirty_links']} links"
        + (f", oldest change since {data['oldest_unsynced']}" if data["oldest_unsynced"] else "")
    )
    print(
        f"operations      {_pairs_text(data['operations']) or 'none'}"
        f" ({data['unresolved_operations']} unresolved)"
    )
    print(f"conflicts open  {_pairs_text(data['conflicts_open']) or 'none'}")
    return EXIT_OK


def conflicts_command(args: argparse.Namespace) -> int:
    if args.action == "list":
        return list_conflicts(args)
    take = args.take or []
    if args.id is None or not take or take[0] not in ("wix", "external", "value"):
        raise ConfigError("usage: syncd conflicts resolve ID --take wix|external|value N")
    if (take[0] == "value") != (len(take) == 2) or len(take) > 2:
        raise ConfigError("--take value needs exactly one number (--take value 120)")
    if take[0] == "value" and not take[1].lstrip("-").isdigit():
        raise ConfigError(f"--take value {take[1]}: not a whole number of points")
    return asyncio.run(_resolve(args, take[0], int(take[1]) if len(take) == 2 else 0))


async def _resolve(args: argparse.Namespace, take: str, value: int) -> int:
    import connectors
    from syncd.engine.resolve import Take, conflict_link, resolve
    from syncd.reconcile.run import policy_for
    from syncd.store.db import open_store
    from syncd.wix.client import WixClient

    settings = load_settings(args.config)
    engine = open_store(settings.database.url)
    try:
        link = conflict_link(engine, args.id)
        typed = {t.name: t for t in connectors.typed_settings(settings)}
        if link.connector not in typed:
            raise ConfigError(
                f"conflict #{args.id} is on connector {link.connector!r}, which is not configured"
            )
        async with (
            WixClient(settings.wix) as wix,
            connectors.create(typed[link.connector]) as connector,
        ):
            done = await resolve(
                engine,
                wix,
                connector,
                policy_for(settings, connector.settings),
                args.id,
                cast("Take", take),
                value,
            )
    finally:
        engine.dispose()
    result = done.result
    print(
        f"conflict #{done.conflict_id} resolved: link {done.link_id} to {done.target} points "
        f"(wix was {done.wix_before}, {link.connector} was {done.ext_before}); wrote "
        f"{result.wix_points:+d} to wix, {result.ext_points:+d} to {link.connector}"
    )
    for error in result.errors:
        print(f"syncd: {error}", file=sys.stderr)
    return EXIT_OK if not result.errors else EXIT_ERRORS


def list_conflicts(args: argparse.Namespace) -> int:
    import json

    from syncd.runtime.overview import open_conflicts
    from syncd.store.db import open_store

    engine = open_store(load_settings(args.config).database.url)
    try:
        rows = open_conflicts(engine)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no open conflicts")
    for row in [] if args.json else rows:
        print(
            f"#{row['id']:<5} {row['connector'] or '-':<10} {row['kind']:<17} "
            f"held {row['amount'] if row['amount'] is not None else '-':>7} "
            f"on {row['side'] or '-':<8}  {row['detail']}"
        )
    return EXIT_OK if not rows else EXIT_ERRORS


def _pairs_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def run_daemon(args: argparse.Namespace) -> int:
    from syncd.runtime.daemon import run_daemon as daemon

    settings = load_settings(args.config)
    if not settings.connectors:
        raise ConfigError("no [[connectors]] configured: nothing to keep in step with Wix")
    return asyncio.run(daemon(settings))


def run_reconcile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from syncd.reconcile.run import Options, reconcile_all

    if args.plan and not args.dry_run:
        raise ConfigError("--plan goes with --dry-run (a real run reports as it applies)")
    settings = load_settings(args.config)
    if not settings.connectors:
        raise ConfigError("no [[connectors]] configured: nothing to reconcile with Wix")
    options = Options(
        dry_run=args.dry_run, plan_file=Path(args.plan) if args.plan else None, force=args.force
    )
    reports = asyncio.run(reconcile_all(settings, options))
    for report in reports:
        print(report.render())
    if options.plan_file:
        print(f"plan written to {options.plan_file}")
    return EXIT_OK if all(r.clean for r in reports) else EXIT_ERRORS


def run_sandbox(args: argparse.Namespace) -> int:
    from syncd.sandbox.run import serve_sandbox

    serve_sandbox(
        host=args.host,
        port=args.port,
        accounts=args.accounts,
        seed=args.seed,
        webhook_url=args.webhook_url,
    )
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.accounts <= 5_000:
        raise ConfigError(f"--accounts must be between 1 and 5000 (got {args.accounts})")
    if not 0 <= args.duration <= 3_600:
        raise ConfigError(f"--duration must be between 0 and 3600 seconds (got {args.duration:g})")
    from syncd.sandbox.demo import demo

    return demo(accounts=args.accounts, duration=args.duration, seed=args.seed)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [
            item for i, v in enumerate(value) for item in _flatten(v, f"{prefix.rstrip('.')}[{i}].")
        ]
    shown = value
    if isinstance(value, str) and "\n" in value:
        shown = value.strip().splitlines()[0] + " ..."
    return [(prefix.rstrip("."), shown)]
