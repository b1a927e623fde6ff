"""The ``tongban`` command line: run a node, migrate databases, replay the outbox."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

__all__ = ["main"]


def _service_settings(name: str):  # type: ignore[no-untyped-def]
    from importlib import import_module

    from tongban_kit.node.specs import load_specs

    for spec in load_specs():
        if spec.name == name:
            module, _, attr = spec.settings.partition(":")
            return spec, getattr(import_module(module), attr)()
    raise SystemExit(f"tongban: no service named {name!r}")


def _node_up(_: argparse.Namespace) -> int:
    from tongban_kit.node.launcher import main as launch

    return launch()


def _nodes_up(_: argparse.Namespace) -> int:
    from tongban_kit.node.nodes import main as launch

    return launch()


def _db_upgrade(args: argparse.Namespace) -> int:
    from tongban_kit.db.migrations import ensure_database, upgrade
    from tongban_kit.node.specs import load_specs

    names = [args.service] if args.service else [s.name for s in load_specs() if s.migrations]
    for name in names:
        spec, settings = _service_settings(name)
        if not spec.migrations:
            print(f"tongban: {name} has no database")
            continue
        if args.create:
            asyncio.run(ensure_database(settings.database_url))
        upgrade(spec.migrations, settings.database_url, args.revision)
        print(f"tongban: {name} migrated to {args.revision}")
    return 0


def _outbox_replay(args: argparse.Namespace) -> int:
    from tongban_kit.db.engine import build_engine
    from tongban_kit.outbox.relay import replay_from

    _, settings = _service_settings(args.service)

    async def run() -> int:
        engine = build_engine(settings.database_url, pool_size=1)
        try:
            return await replay_from(engine, args.from_seq)
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    print(f"tongban: {count} {args.service} outbox rows queued again from seq {args.from_seq}")
    return 0


def _settings(_: argparse.Namespace) -> int:
    from tongban_kit.node.settings_doc import settings_markdown

    print(settings_markdown(), end="")
    return 0


def _service_command(target: str) -> Callable[[argparse.Namespace], int]:
    """A command a service contributes (ServiceSpec.commands), run with the remaining args."""

    def run(args: argparse.Namespace) -> int:
        from importlib import import_module

        module, _, attr = target.partition(":")
        result: int = getattr(import_module(module), attr)(args.rest)
        return result

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tongban", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    node = commands.add_parser("node", help="run a node").add_subparsers(
        dest="action", required=True
    )
    up = node.add_parser(
        "up", help="start a whole node here (embedded PostgreSQL and broker by default)"
    )
    up.set_defaults(run=_node_up)

    nodes = commands.add_parser("nodes", help="several nodes together").add_subparsers(
        dest="action", required=True
    )
    nodes_up = nodes.add_parser(
        "up", help="central 100000 and regional 440300 and 310000 on this machine, enrolled"
    )
    nodes_up.set_defaults(run=_nodes_up)

    db = commands.add_parser("db", help="databases").add_subparsers(dest="action", required=True)
    upgrade = db.add_parser("upgrade", help="apply migrations (production: run before deploying)")
    upgrade.add_argument("--service", help="one service (default: all with a database)")
    upgrade.add_argument("--revision", default="heads")
    upgrade.add_argument("--create", action="store_true", help="create the database if missing")
    upgrade.set_defaults(run=_db_upgrade)

    outbox = commands.add_parser("outbox", help="the transactional outbox")
    outbox_actions = outbox.add_subparsers(dest="action", required=True)
    replay = outbox_actions.add_parser("replay", help="publish retained events again from a seq")
    replay.add_argument("--service", required=True)
    replay.add_argument("--from-seq", type=int, required=True)
    replay.set_defaults(run=_outbox_replay)

    settings = commands.add_parser("settings", help="print every setting as a Markdown table")
    settings.set_defaults(run=_settings)

    from tongban_kit.node.specs import load_specs

    for spec in load_specs():
        for name, target in spec.commands.items():
            contributed = commands.add_parser(
                name, help=f"{spec.name}: `tongban {name} --help` for its actions", add_help=False
            )
            contributed.add_argument("rest", nargs=argparse.REMAINDER)
            contributed.set_defaults(run=_service_command(target))

    args, unknown = parser.parse_known_args(argv)
    if hasattr(args, "rest"):  # a service's command parses its own arguments
        args.rest = unknown + args.rest
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
