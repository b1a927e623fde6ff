"""The applicant's side of an application: draft, correct, submit, withdraw.

Name rule: the proposed name is reserved when the draft is created (so the applicant knows at
once whether it is free), renewed at every submission, made permanent on approval and released
on rejection or withdrawal. A reservation not renewed within `name_reservation_days` lapses and
the next applicant for that name takes it over.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import BadRequest, Conflict, NotFound
from tongban_kit.identifiers import InvalidIdentifier, contains, validate_division_code
from tongban_registration import events
from tongban_registration.applications import repository
from tongban_registration.applications.names import name_key
from tongban_registration.applications.schemas import ApplicationCreate, ApplicationPatch
from tongban_registration.applications.states import Action, Status, move
from tongban_registration.documents import repository as documents
from tongban_registration.documents.entries import signed_entries
from tongban_registration.identity_client import IdentityClient
from tongban_registration.models import Application, NameReservation, Transition
from tongban_registration.review.clock import add_working_days, office_date
from tongban_registration.settings import RegistrationSettings

#: AES-GCM associated data: a sealed ID copied into another column no longer decrypts.
LEGAL_REP_CONTEXT = "registration.legal_representative_id"
SUBMITTED_DOCUMENT_CONTEXT = "registration.submitted_document"


def _now() -> datetime:
    return datetime.now(UTC)


def check_division(division_code: str, node: str) -> str:
    try:
        division_code = validate_division_code(division_code, allow_central=False)
    except InvalidIdentifier as exc:
        raise BadRequest(f"address.division_code: {exc.reason}") from exc
    if not contains(node, division_code):
        raise BadRequest(
            f"address.division_code {division_code} is outside this node ({node})",
            field="address.division_code",
        )
    return division_code


def _apply(
    application: Application, fields: ApplicationCreate | ApplicationPatch, cipher: FieldCipher
) -> None:
    """Copy the client's fields onto the row; only these fields, so nothing else is settable."""
    given = fields.model_fields_set
    if "name" in given and fields.name is not None:
        application.name = fields.name
    if "entity_type" in given and fields.entity_type is not None:
        application.entity_type = fields.entity_type.value
    if "registered_capital" in given and fields.registered_capital is not None:
        application.registered_capital = fields.registered_capital.amount
    if "address" in given and fields.address is not None:
        application.address = fields.address.line
        application.division_code = fields.address.division_code
    if "business_scope" in given and fields.business_scope is not None:
        application.business_scope = fields.business_scope
    if "legal_representative" in given and fields.legal_representative is not None:
        application.legal_representative_name = fields.legal_representative.name
        application.legal_representative_id = cipher.encrypt(
            fields.legal_representative.resident_id, context=LEGAL_REP_CONTEXT
        )
    if "investors" in given and fields.investors is not None:
        application.investors = [
            {"name": i.name, "kind": i.kind, "share": str(i.share)} for i in fields.investors
        ]


async def reserve_name(
    session: AsyncSession, *, application_id: uuid.UUID, name: str, days: int
) -> NameReservation:
    """Reserve ``name`` for ``days``; 409 naming the holder when it is held (a lapsed hold
    gives way once; the partial unique index decides every race)."""
    key = name_key(name)
    if not key:
        raise BadRequest("name: a name needs more than an organisational suffix", field="name")
    now = _now()
    for _ in range(2):
        reservation = NameReservation(
            application_id=application_id,
            name=name,
            name_key=key,
            expires_at=now + timedelta(days=days),
        )
        try:
            await repository.reserve(session, reservation)
            return reservation
        except repository.NameHeld:
            if not await repository.release_lapsed(session, key, now):
                break
    held = await repository.holder(session, key)
    raise Conflict(
        f"the name {name!r} is taken", conflicting_name=held.name if held is not None else name
    )


async def _reserve(
    session: AsyncSession, application: Application, *, days: int
) -> NameReservation:
    return await reserve_name(
        session, application_id=application.id, name=application.name, days=days
    )


async def record_transition(
    session: AsyncSession,
    application: Application,
    *,
    action: Action,
    before: Status | None,
    actor: str,
    role: str,
    reason: str | None = None,
    problems: list[dict[str, str]] | None = None,
) -> None:
    application.updated_at = _now()
    await repository.record(
        session,
        Transition(
            application_id=application.id,
            action=action.value,
            from_status=before.value if before else None,
            to_status=application.status,
            actor=actor,
            actor_role=role,
            reason=reason,
            problems=problems,
        ),
    )


async def create(
    session: AsyncSession,
    *,
    applicant: str,
    body: ApplicationCreate,
    settings: RegistrationSettings,
    cipher: FieldCipher,
) -> Application:
    check_division(body.address.division_code, settings.node.node_code)
    application = Application(id=uuid.uuid4(), applicant=applicant, status=Status.DRAFT.value)
    _apply(application, body, cipher)
    await repository.add(session, application)
    await _reserve(session, application, days=settings.name_reservation_days)
    await record_transition(
        session, application, action=Action.CREATE, before=None, actor=applicant, role="applicant"
    )
    return application


async def mine(
    session: AsyncSession, *, applicant: str, application_id: uuid.UUID, for_update: bool = False
) -> Application:
    """The caller's application; someone else's is as absent as one that does not exist."""
    application = await repository.get(session, application_id, for_update=for_update)
    if application is None or application.applicant != applicant:
        raise NotFound(f"no application {application_id}")
    return application


async def of_applicant(session: AsyncSession, *, applicant: str) -> Sequence[Application]:
    return await repository.of_applicant(session, applicant)


async def update(
    session: AsyncSession,
    *,
    applicant: str,
    application_id: uuid.UUID,
    patch: ApplicationPatch,
    settings: RegistrationSettings,
    cipher: FieldCipher,
) -> Application:
    application = await mine(
        session, applicant=applicant, application_id=application_id, for_update=True
    )
    status = Status(application.status)
    move(status, Action.UPDATE)
    if patch.address is not None:
        check_division(patch.address.division_code, settings.node.node_code)
    renamed = patch.name is not None and name_key(patch.name) != name_key(application.name)
    _apply(application, patch, cipher)
    if renamed:
        await repository.release(session, application.id, _now())
        await _reserve(session, application, days=settings.name_reservation_days)
    elif patch.name is not None:
        # The same name written differently (有限公司 → 有限责任公司): the reservation follows.
        reservation = await repository.live_reservation(session, application.id)
        if reservation is not None:
            reservation.name = application.name
    await record_transition(
        session, application, action=Action.UPDATE, before=status, actor=applicant, role="applicant"
    )
    return application


def document_of(
    application: Application,
    cipher: FieldCipher,
    documents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What the applicant submits and may sign: the application's content, canonical, with
    the digest of each uploaded document (``documents``, when there are any)."""
    content = {
        "application_id": str(application.id),
        "name": application.name,
        "entity_type": application.entity_type,
        "registered_capital": {"amount": str(application.registered_capital), "currency": "CNY"},
        "address": {"line": application.address, "division_code": application.division_code},
        "business_scope": application.business_scope,
        "legal_representative": {
            "name": application.legal_representative_name,
            "resident_id": cipher.decrypt(
                application.legal_representative_id, context=LEGAL_REP_CONTEXT
            ),
        },
        "investors": application.investors,
    }
    if documents:
        content["documents"] = documents
    return content


async def signed_content(
    session: AsyncSession, application: Application, cipher: FieldCipher
) -> dict[str, Any]:
    """The content as it is now, uploaded documents' digests included."""
    uploaded = await documents.of_application(session, application.id)
    return document_of(application, cipher, signed_entries(uploaded))


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: sorted keys, no blanks, UTF-8."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def digest_of(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


async def submit(
    session: AsyncSession,
    *,
    applicant: str,
    application_id: uuid.UUID,
    signature: str | None,
    settings: RegistrationSettings,
    cipher: FieldCipher,
    identity: IdentityClient | None,
) -> Application:
    """Submit, or resubmit after a return. A signature is checked with identity when the
    node has an identity client (a bad one refuses the submission) and kept either way."""
    application = await mine(
        session, applicant=applicant, application_id=application_id, for_update=True
    )
    status = Status(application.status)
    target = move(status, Action.SUBMIT)
    now = _now()
    reservation = await repository.live_reservation(session, application.id)
    if reservation is None:
        raise Conflict(
            f"the reservation of {application.name!r} lapsed and the name was taken; "
            "choose another name",
            conflicting_name=application.name,
        )
    reservation.expires_at = now + timedelta(days=settings.name_reservation_days)
    application.status = target.value
    submitted = canonical_bytes(await signed_content(session, application, cipher))
    application.document_sha256 = hashlib.sha256(submitted).hexdigest()
    application.submitted_document = cipher.encrypt(
        submitted.decode(), context=SUBMITTED_DOCUMENT_CONTEXT
    )
    application.signature = signature
    application.signature_kid = (
        await _check_signature(identity, applicant, application.document_sha256, signature)
        if signature is not None and identity is not None
        else None
    )
    application.submitted_at = now
    application.due_on = add_working_days(
        office_date(now), settings.review_working_days, settings.holidays
    )
    application.problems = None
    await record_transition(
        session, application, action=Action.SUBMIT, before=status, actor=applicant, role="applicant"
    )
    await events.emit(
        session,
        events.APPLICATION_SUBMITTED,
        node=settings.node.node_code,
        subject=str(application.id),
        data={
            "application_id": str(application.id),
            "name": application.name,
            "entity_type": application.entity_type,
            "division_code": application.division_code,
            "resubmission": status is Status.RETURNED,
            "submitted_at": now.isoformat(),
            "due_on": application.due_on.isoformat(),
            "signed": signature is not None,
        },
    )
    return application


async def _check_signature(
    identity: IdentityClient, applicant: str, sha256: str, signature: str
) -> str:
    try:
        person_id = uuid.UUID(applicant)
    except ValueError:
        raise BadRequest("signature: only a person known to identity can sign") from None
    checked = await identity.verify_person(person_id=person_id, sha256=sha256, jws=signature)
    if not checked.valid or checked.kid is None:
        raise BadRequest(
            f"signature: not your signature of document_sha256 {sha256} ({checked.reason})",
            field="signature",
            document_sha256=sha256,
        )
    return checked.kid


async def withdraw(
    session: AsyncSession, *, applicant: str, application_id: uuid.UUID, reason: str | None
) -> Application:
    application = await mine(
        session, applicant=applicant, application_id=application_id, for_update=True
    )
    status = Status(application.status)
    application.status = move(status, Action.WITHDRAW).value
    await repository.release(session, application.id, _now())
    await record_transition(
        session,
        application,
        action=Action.WITHDRAW,
        before=status,
        actor=applicant,
        role="applicant",
        reason=reason,
    )
    return application
