"""``tongban audit verify``: check the message log from the operator's shell."""

from __future__ import annotations

import argparse
import asyncio

from tongban_exchange.log import chain
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.db.engine import build_engine, build_sessionmaker


async def _verify(database_url: str) -> chain.Report:
    engine = build_engine(database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session:
            return await chain.verify(session)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tongban audit", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="verify the message log's hash chain")
    verify.add_argument("--database-url", help="default: TONGBAN_EXCHANGE_DATABASE_URL")
    args = parser.parse_args(argv)
    url = args.database_url or ExchangeSettings().database_url
    report = asyncio.run(_verify(url))
    for finding in report.findings:
        print(f"FAIL seq {finding.seq}: {finding.problem}")
    verdict = "ok" if report.ok else f"{len(report.findings)} problem(s)"
    print(
        f"message log: {report.rows} rows, head {report.head_seq}, "
        f"{report.checkpoints} checkpoints: {verdict}"
    )
    return 0 if report.ok else 1
