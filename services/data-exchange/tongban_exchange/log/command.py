"""``tongban audit verify``: check the message log from the operator's shell."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import httpx

from tongban_exchange.log import chain, signatures
from tongban_exchange.log.signatures import PublicKey
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.db.engine import build_engine, build_sessionmaker


def _is_url(source: str | None) -> bool:
    return source is None or source.startswith(("http://", "https://"))


async def _keys(source: str | None, identity_url: str) -> dict[str, PublicKey] | None:
    """Document keys from a URL or (by default) the node's identity."""
    async with httpx.AsyncClient(timeout=10) as http:
        if source is not None:
            response = await http.get(source)
            response.raise_for_status()
            return signatures.keys_from_jwks(response.json())
        return await signatures.fetch_keys(http, identity_url)


async def _verify(database_url: str, keys: dict[str, PublicKey] | None) -> chain.Report:
    engine = build_engine(database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session:
            return await chain.verify(session, keys)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tongban audit", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="verify the message log's hash chain")
    verify.add_argument("--database-url", help="default: TONGBAN_EXCHANGE_DATABASE_URL")
    verify.add_argument(
        "--document-jwks",
        help="the node's document keys, a file or URL (default: identity's "
        "/.well-known/document-jwks.json at TONGBAN_IDENTITY_URL)",
    )
    args = parser.parse_args(argv)
    settings = ExchangeSettings()
    url = args.database_url or settings.database_url
    if _is_url(args.document_jwks):
        keys = asyncio.run(_keys(args.document_jwks, settings.node.identity_url))
    else:
        keys = signatures.keys_from_jwks(json.loads(Path(args.document_jwks).read_text()))
    report = asyncio.run(_verify(url, keys))
    for finding in report.findings:
        print(f"FAIL seq {finding.seq}: {finding.problem}")
    verdict = "ok" if report.ok else f"{len(report.findings)} problem(s)"
    checked = "signatures checked" if report.signatures_checked else "signatures NOT checked"
    print(
        f"message log: {report.rows} rows, head {report.head_seq}, "
        f"{report.checkpoints} checkpoints ({checked}): {verdict}"
    )
    return 0 if report.ok else 1
