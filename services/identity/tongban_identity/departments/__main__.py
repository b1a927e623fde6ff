"""``python -m tongban_identity.departments``: enrol, list and disable departments.

    create --code tax --name 国家税务总局深圳市税务局 \\
           --scopes "exchange:subscribe exchange:query" --jwks-file tax-jwks.json
                                    prints the new client_id
    service-account --service registration --scopes identity:sign --key-file reg.pem
                                    enrol one of the node's own services as client
                                    `svc-<service>` (or bring it up to date), with the P-256
                                    key in --key-file (made if missing); prints the client_id
    list [--all]                    one line per department client
    disable CLIENT_ID

Reads identity's settings from the environment (``TONGBAN_IDENTITY_DATABASE_URL``, ...),
like the service itself; the same rules as ``POST /v1/admin/departments`` apply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from tongban_identity.departments import service
from tongban_identity.departments.schemas import DepartmentCreate
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.client import generate_service_key, load_service_key, service_key_jwks
from tongban_kit.db import in_transaction
from tongban_kit.errors import TongbanError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tongban_identity.departments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="enrol a department; prints its client_id")
    create.add_argument("--code", required=True, help="department code, e.g. tax")
    create.add_argument("--name", required=True, help="the department's official name")
    create.add_argument("--scopes", required=True, help="space-separated scopes")
    create.add_argument(
        "--jwks-file", required=True, type=Path, help="JSON file with the public keys (a JWKS)"
    )
    account = actions.add_parser(
        "service-account", help="enrol or update a node service's own client; prints its id"
    )
    account.add_argument("--service", required=True, help="the service's name, e.g. registration")
    account.add_argument("--scopes", required=True, help="space-separated scopes")
    account.add_argument(
        "--key-file", required=True, type=Path, help="PEM file of its P-256 key (made if missing)"
    )
    listing = actions.add_parser("list", help="list enrolled departments")
    listing.add_argument("--all", action="store_true", help="include disabled clients")
    disable = actions.add_parser("disable", help="disable a department client")
    disable.add_argument("client_id")
    return parser


def _enrolment(args: argparse.Namespace) -> DepartmentCreate:
    try:
        jwks = json.loads(args.jwks_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemExit(f"cannot read {args.jwks_file}: {exc.strerror}") from None
    except ValueError:
        raise SystemExit(f"{args.jwks_file} is not JSON") from None
    try:
        return DepartmentCreate(
            code=args.code, name=args.name, scopes=args.scopes.split(), jwks=jwks
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise SystemExit(f"refused: {problems}") from None


def _service_account(args: argparse.Namespace) -> DepartmentCreate:
    key_file: Path = args.key_file
    try:
        key = load_service_key(key_file) if key_file.exists() else generate_service_key(key_file)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot use {key_file}: {exc}") from None
    try:
        return DepartmentCreate(
            code=f"svc-{args.service}",
            name=f"Tongban {args.service} service",
            scopes=args.scopes.split(),
            jwks=service_key_jwks(key),
        )
    except ValidationError as exc:
        raise SystemExit(f"refused: {exc.errors()[0]['msg']}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = IdentitySettings()
    url = settings.database_url
    try:
        if args.action == "create":
            enrolment = _enrolment(args)
            node = settings.node.node_code
            client = asyncio.run(
                in_transaction(
                    url,
                    lambda s: service.create_department(s, enrolment=enrolment, node=node),
                )
            )
            print(client.client_id)
        elif args.action == "service-account":
            enrolment = _service_account(args)
            node = settings.node.node_code
            client = asyncio.run(
                in_transaction(
                    url,
                    lambda s: service.ensure_service_account(s, enrolment=enrolment, node=node),
                )
            )
            print(client.client_id)
        elif args.action == "list":
            clients = asyncio.run(
                in_transaction(
                    url, lambda s: service.list_departments(s, include_disabled=args.all)
                )
            )
            for c in clients:
                state = f"disabled {c.disabled_at:%Y-%m-%d}" if c.disabled_at else "enabled"
                print(f"{c.client_id}\t{c.code}\t{state}\t{' '.join(c.scopes)}\t{c.name}")
        else:
            now = datetime.now(UTC)
            client = asyncio.run(
                in_transaction(
                    url,
                    lambda s: service.disable_department(s, client_id=args.client_id, now=now),
                )
            )
            print(f"{client.client_id} disabled")
    except TongbanError as exc:
        print(f"refused: {exc.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
