"""``tongban directory``: the central directory of nodes.

At the central node (100000), the operator:
    issue-token --code 440300 [--ttl-hours 24]   prints a one-time enrolment token
    list                                         one line per enrolled node
    suspend CODE                                 keep the node listed, but suspended

At a regional node, its operator:
    enrol --central https://central.example/ --token tbe_… [--anchor-file central.jwks.json]
        lists this node (code, name, gateway URL, token issuer, node key) in the directory;
        writes the key the directory is signed with to --anchor-file, for the gateway's
        TONGBAN_GATEWAY_DIRECTORY_ANCHOR_FILE. Run again with a new token to change the
        URL or keys; --next-key-file NEW.pem lists a second key while rotating.

Reads identity's settings from the environment, like the service itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tongban_identity.nodes import repository, service
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.node_keys import NodeKeyError, load_node_key, public_jwk
from tongban_kit.db import in_transaction
from tongban_kit.errors import TongbanError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tongban directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue-token", help="central: a one-time enrolment token")
    issue.add_argument("--code", required=True, help="the regional node's division code")
    issue.add_argument("--ttl-hours", type=float, default=24.0, help="valid for (default 24)")
    actions.add_parser("list", help="central: the enrolled nodes")
    suspend = actions.add_parser("suspend", help="central: suspend a node")
    suspend.add_argument("code")
    enrol = actions.add_parser("enrol", help="regional: enrol this node with a token")
    enrol.add_argument("--central", required=True, help="the central node's gateway URL")
    enrol.add_argument("--token", required=True, help="from the central operator")
    enrol.add_argument("--anchor-file", type=Path, help="where to write the directory's key")
    enrol.add_argument(
        "--next-key-file",
        type=Path,
        help="key rotation: also list the public half of this P-256 key (PEM) for the node",
    )
    return parser


def _enrol(args: argparse.Namespace, settings: IdentitySettings) -> int:
    try:
        entry = service.own_entry(settings, service.own_key(settings))
        if args.next_key_file is not None:
            production = settings.node.environment == "production"
            following = load_node_key(
                args.next_key_file, node_code="", production=production, setting="--next-key-file"
            )
            entry["jwks"]["keys"].append(public_jwk(following))
    except NodeKeyError as exc:
        raise SystemExit(f"tongban: {exc}") from None
    entry.pop("status")
    url = args.central.rstrip("/") + "/api/identity/v1/nodes/enrolments"
    try:
        response = httpx.post(url, json={**entry, "token": args.token}, timeout=15)
    except httpx.HTTPError as exc:
        raise SystemExit(f"tongban: {url}: {exc}") from None
    if response.status_code != 201:
        detail = response.text[:300]
        raise SystemExit(f"tongban: enrolment refused ({response.status_code}): {detail}")
    body = response.json()
    if args.anchor_file is not None:
        args.anchor_file.write_text(json.dumps(body["directory_jwks"], indent=2))
    node = body["node"]
    print(f"enrolled {node['code']} {node['name']} at {node['gateway_url']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = IdentitySettings()
    if args.action == "enrol":
        return _enrol(args, settings)
    url = settings.database_url
    now = datetime.now(UTC)
    try:
        if args.action == "issue-token":
            ttl = timedelta(hours=args.ttl_hours)
            token = asyncio.run(
                in_transaction(
                    url, lambda s: service.issue_token(s, code=args.code, ttl=ttl, now=now)
                )
            )
            print(token)
        elif args.action == "list":
            for node in asyncio.run(in_transaction(url, repository.list_nodes)):
                print(f"{node.code}\t{node.status}\t{node.gateway_url}\t{node.name}")
        else:
            asyncio.run(in_transaction(url, lambda s: service.suspend(s, code=args.code, now=now)))
            print(f"suspended {args.code}")
    except TongbanError as exc:
        print(f"tongban: {exc.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
