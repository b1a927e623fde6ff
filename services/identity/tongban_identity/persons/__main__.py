"""``python -m tongban_identity.persons`` (``tongban persons``): officer scopes of persons.

    grant-scopes PERSON SCOPE...     e.g. grant-scopes 110105194912310021 registration:review
    revoke-scopes PERSON SCOPE...
    scopes PERSON                    the scopes granted now

PERSON is identity's person id or the person's resident ID number (found by its blind index,
never printed). Reads identity's settings from the environment like the service itself; the
same rules as ``POST /v1/admin/persons/{id}/scopes`` apply, and changes are audited with the
actor ``command-line``. Revocations take effect at the person's next refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person
from tongban_identity.persons import scopes
from tongban_identity.persons.protection import PersonalData
from tongban_identity.persons.scope_schemas import valid_person_scopes
from tongban_identity.settings import IdentitySettings
from tongban_kit.db import in_transaction
from tongban_kit.errors import NotFound, TongbanError
from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tongban persons",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for name, text in (("grant-scopes", "grant"), ("revoke-scopes", "revoke")):
        action = actions.add_parser(name, help=f"{text} a person scopes (roles)")
        action.add_argument("person", help="person id or resident ID number")
        action.add_argument("scopes", nargs="+", help="scopes, e.g. registration:review")
    listing = actions.add_parser("scopes", help="the scopes granted to a person")
    listing.add_argument("person", help="person id or resident ID number")
    return parser


async def _person_id(session: AsyncSession, person: str, personal_data: PersonalData) -> uuid.UUID:
    try:
        return uuid.UUID(person)
    except ValueError:
        pass
    try:
        resident_id = validate_resident_id(person)
    except InvalidIdentifier as exc:
        raise SystemExit(
            f"refused: PERSON is neither a person id nor a valid resident ID number ({exc.reason})"
        ) from None
    found = await session.scalar(
        select(Person.id).where(
            Person.resident_id_index == personal_data.resident_id_index(resident_id)
        )
    )
    if found is None:
        raise NotFound("no person is registered with this resident ID number")
    return found


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = IdentitySettings()
    personal_data = PersonalData.from_settings(settings.pii_keys, settings.blind_index_key)
    node = settings.node.node_code
    requested: list[str] = []
    if args.action != "scopes":
        try:
            requested = valid_person_scopes(args.scopes)
        except ValueError as exc:
            raise SystemExit(f"refused: {exc}") from None

    async def work(session: AsyncSession) -> tuple[uuid.UUID, list[str]]:
        person_id = await _person_id(session, args.person, personal_data)
        if args.action == "grant-scopes":
            change = scopes.grant
        elif args.action == "revoke-scopes":
            change = scopes.revoke
        else:
            await scopes.existing_person(session, person_id)
            return person_id, await scopes.granted(session, person_id)
        now = await change(
            session, person_id=person_id, scopes=requested, by=scopes.COMMAND_LINE, node=node
        )
        return person_id, now

    try:
        person_id, held = asyncio.run(in_transaction(settings.database_url, work))
    except TongbanError as exc:
        print(f"refused: {exc.detail}", file=sys.stderr)
        return 1
    print(f"{person_id}\t{' '.join(held) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
