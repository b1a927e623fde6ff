"""Departments: enrolment by operators, and the client-credentials grant they get tokens by.

Nothing here commits; the caller's transaction holds the client, its event and the used
assertion together.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import assertions, repository
from tongban_identity.departments.directory import ClientDirectory
from tongban_identity.departments.errors import InvalidScope, UnsupportedGrantType
from tongban_identity.departments.models import DepartmentClient
from tongban_identity.departments.own_tokens import token_endpoint
from tongban_identity.departments.schemas import SCOPE_TOKEN, DepartmentCreate, TokenResponse
from tongban_identity.keys import service as keys_service
from tongban_identity.keys.sealing import KeyVault
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.service import sign_access_token
from tongban_kit.errors import Conflict, NotFound
from tongban_kit.events import CloudEvent
from tongban_kit.outbox import add_event

DEPARTMENT_CREATED = "gov.tongban.identity.department.created.v1"
CLIENT_CREDENTIALS = "client_credentials"


def new_client_id(code: str) -> str:
    """``dept-<code>-<12 hex digits>``: readable in logs, not guessable from the code."""
    return f"dept-{code}-{secrets.token_hex(6)}"


async def create_department(
    session: AsyncSession,
    *,
    enrolment: DepartmentCreate,
    node: str,
    client_id: str | None = None,
) -> DepartmentClient:
    """Enrol a department as a client of this node; emits ``department.created``.

    One enabled client per department code: a second is a ``Conflict`` until the first is
    disabled. Its keys rotate inside its JWKS instead. ``client_id`` is drawn at random
    unless given (service accounts have fixed ids).
    """
    client = DepartmentClient(
        client_id=client_id or new_client_id(enrolment.code),
        code=enrolment.code,
        name=enrolment.name,
        node=node,
        scopes=enrolment.scopes,
        jwks=enrolment.jwks,
    )
    try:
        client = await repository.add(session, client)
    except repository.CodeTaken as exc:
        raise Conflict(
            f"department {enrolment.code!r} already has an enabled client; disable it first"
        ) from exc
    await add_event(
        session,
        CloudEvent.new(
            DEPARTMENT_CREATED,
            source=f"/nodes/{node}/identity",
            subject=client.client_id,
            data={
                "client_id": client.client_id,
                "code": client.code,
                "name": client.name,
                "node": client.node,
                "scopes": list(client.scopes),
                "created_at": client.created_at.isoformat(),
            },
        ),
    )
    return client


async def ensure_service_account(
    session: AsyncSession, *, enrolment: DepartmentCreate, node: str
) -> DepartmentClient:
    """The client of one of the node's own services, whose client id is its code
    (``svc-<service>``): created if missing, its name, scopes and keys brought up to date
    otherwise. ``tongban node up`` and the compose enrol job run this on every start, so a
    new key or scope takes effect at the next start. A disabled account stays disabled
    (an operator's decision): ``Conflict``."""
    current = await repository.get(session, enrolment.code)
    if current is None:
        return await create_department(
            session, enrolment=enrolment, node=node, client_id=enrolment.code
        )
    if current.disabled_at is not None:
        raise Conflict(f"service account {enrolment.code!r} was disabled by an operator")
    current.name, current.scopes, current.jwks = enrolment.name, enrolment.scopes, enrolment.jwks
    return current


async def list_departments(
    session: AsyncSession, *, include_disabled: bool = False
) -> Sequence[DepartmentClient]:
    return await repository.list_clients(session, include_disabled=include_disabled)


async def get_department(session: AsyncSession, *, client_id: str) -> DepartmentClient:
    client = await repository.get(session, client_id)
    if client is None:
        raise NotFound(f"no department client {client_id[:64]!r}")
    return client


async def disable_department(
    session: AsyncSession, *, client_id: str, now: datetime
) -> DepartmentClient:
    """Disable a client: it gets no token from now on (tokens it holds expire within
    ``access_token_ttl_s``). Disabling twice keeps the first time."""
    client = await get_department(session, client_id=client_id)
    await repository.disable(session, client_id, at=now)
    await session.refresh(client)
    return client


async def client_credentials_grant(
    session: AsyncSession,
    *,
    form: Mapping[str, str],
    vault: KeyVault,
    settings: IdentitySettings,
    now: datetime,
    directory: ClientDirectory | None = None,
) -> TokenResponse:
    """The client-credentials grant (RFC 6749 §4.4) for a department, authenticated by
    ``private_key_jwt`` (RFC 7523 §2.2; the rules are in ``departments.assertions``).

    ``form`` is the token request's parameters: ``client_assertion_type``,
    ``client_assertion``, optionally ``scope`` (space separated; default: every scope the
    client holds), ``client_id`` (must match) and ``grant_type`` (must be
    ``client_credentials`` if present). Other parameters are ignored (RFC 6749 §3.2).

    The access token's ``sub`` and ``client_id`` are the client id; ``department`` and
    ``department_name`` name the department; it has no ``acr``/``amr``/``auth_time``, since
    no person signed in. Raises the ``departments.errors`` for RFC 6749 §5.2 answers.

    Cost: with the client in ``directory`` and the active key unsealed, one statement (it
    records the assertion, checks the client's version and reads the active kid). It runs in
    autocommit if ``session`` has not touched the database yet: the statement is atomic by
    itself, so the BEGIN and COMMIT round trips buy nothing.
    """
    grant_type = form.get("grant_type", CLIENT_CREDENTIALS)
    if grant_type != CLIENT_CREDENTIALS:
        raise UnsupportedGrantType(f"this grant is {CLIENT_CREDENTIALS}, not {grant_type[:40]!r}")
    requested = form.get("scope")
    # The first use of the request's session: its connection comes in autocommit.
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    authenticated, consumed = await assertions.authenticate(
        session,
        form=form,
        audiences=[token_endpoint(settings), settings.issuer],
        now=now,
        directory=directory,
        accept=lambda client: granted_scopes(requested, allowed=client.scopes),
    )
    client = authenticated.client
    key = await keys_service.active_key(session, vault=vault, known_kid=consumed.active_kid)
    access_token = sign_access_token(
        key,
        issuer=settings.issuer,
        subject=client.client_id,
        audience=settings.token_audience,
        scope=(scopes := granted_scopes(requested, allowed=client.scopes)),
        acr=None,
        amr=(),
        auth_time=None,
        node=settings.node.node_code,
        lifetime_s=settings.access_token_ttl_s,
        extra_claims={
            "client_id": client.client_id,
            "department": client.code,
            "department_name": client.name,
        },
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=settings.access_token_ttl_s,
        scope=" ".join(scopes),
    )


def granted_scopes(requested: str | None, *, allowed: Sequence[str]) -> list[str]:
    """The scopes asked for, each one the client holds; all it holds when none are asked."""
    if requested is None or not requested.strip():
        return list(allowed)
    asked = list(dict.fromkeys(requested.split(" ")))
    if not all(SCOPE_TOKEN.match(scope) for scope in asked):
        raise InvalidScope("scope is a list of scope tokens separated by single spaces")
    beyond = [scope for scope in asked if scope not in allowed]
    if beyond:
        raise InvalidScope(f"the client may not ask for {' '.join(beyond)[:200]}")
    return asked
