"""National data: the central node takes in other nodes' national events; operators see
the queue of the link to central."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from tongban_exchange.national import repository, service
from tongban_exchange.national.link import AssertionRefused, CentralLink, NationalOff
from tongban_exchange.national.schemas import (
    ForwardOut,
    ForwardsOut,
    NationalAccepted,
    NationalEventIn,
    NationalFeed,
)
from tongban_exchange.routing.service import kept_context
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.auth.node_trust import ASSERTION_HEADER
from tongban_kit.db import SessionDep
from tongban_kit.errors import PayloadTooLarge, TongbanError

router = APIRouter(prefix="/v1/national", tags=["national data"])

_MAX_BODY = 1 << 20


def _link(request: Request) -> CentralLink | None:
    link: CentralLink | None = request.app.state.exchange.link
    return link


@router.post(
    "/events",
    status_code=202,
    response_model=NationalAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/cloudevents+json": {
                    "schema": NationalEventIn.model_json_schema(ref_template="#/$defs/{model}")
                }
            },
        }
    },
)
async def receive(request: Request, session: SessionDep) -> NationalAccepted:
    """Take in a national event forwarded by another node (the central node only).

    Access: nodes of the directory, by a node assertion (RFC 7523, header
    `Tongban-Node-Assertion`, audience this node, claim `tongban_event` the event's id) signed
    with a key the directory lists for the sending node; the event's `source` must be that
    node's. 404 where national exchange
    is not configured or this is not the central node; 401 for a missing, forged, expired,
    replayed or unknown node's assertion; 422 for an event that is not of a national dataset
    or does not validate; 503 while the replay check cannot be made (Redis unreachable). A
    second arrival of the same event id is a `duplicate` and changes nothing.
    """
    link = _link(request)
    if link is None or not link.is_central:
        raise NationalOff("National events are taken in by the central node only.")
    assertion = request.headers.get(ASSERTION_HEADER)
    if not assertion:
        raise AssertionRefused("A node assertion (Tongban-Node-Assertion) is required.")
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise PayloadTooLarge("A national event is at most 1 MiB.")
    try:
        body = NationalEventIn.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise service.InvalidNationalEvent(f"Not a CloudEvent: {problems}") from None
    from_node = await link.verify(assertion, body.id)
    exchange = request.app.state.exchange
    new = await service.accept(session, exchange, body=body, from_node=from_node)
    exchange.metrics.national_received.labels(from_node, "accepted" if new else "duplicate").inc()
    return NationalAccepted(event_id=body.id, status="accepted" if new else "duplicate")


#: Events younger than this are not in the feed yet: a transaction with a lower sequence
#: number may still be open.
FEED_SETTLE_S = 2.0


@router.get("/feed", response_model=NationalFeed)
async def feed(
    request: Request,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="The `next` of the last page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NationalFeed:
    """The national events this (central) node took in, its own and other nodes', in order,
    for regional nodes to route to their departments; the reading node's own events are left
    out. Events appear 2 s after they were taken in.

    Access: nodes of the directory, by a node assertion (header `Tongban-Node-Assertion`,
    audience this node, claim `tongban_national_feed: true`). 404 where national exchange is
    not configured or this is not the central node; 401 for an assertion that does not hold.
    """
    link = _link(request)
    if link is None or not link.is_central:
        raise NationalOff("The national feed is served by the central node only.")
    assertion = request.headers.get(ASSERTION_HEADER)
    if not assertion:
        raise AssertionRefused("A node assertion (Tongban-Node-Assertion) is required.")
    reader = await link.verify_feed(assertion)
    exchange = request.app.state.exchange
    rows = await repository.feed(session, after=after, limit=limit, settle_s=FEED_SETTLE_S)
    own = f"/nodes/{reader}/"
    events = []
    for row in rows:
        event = exchange.unseal(row.sealed, context=kept_context(row.event_id))
        if not str(event.get("source", "")).startswith(own):
            events.append(event)
    return NationalFeed(events=events, next=rows[-1].seq if rows else after)


@router.get("/forwards", response_model=ForwardsOut)
async def forwards(
    request: Request,
    session: SessionDep,
    caller: Annotated[AccessClaims, Depends(require(OPERATOR_SCOPE))],
    status: Annotated[Literal["pending", "forwarded", "refused"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ForwardsOut:
    """The queue of national events to the central node: counts per status, the oldest
    pending one, the link's directory state, and the newest forwards (filter by `status`).

    Access: operators (`tongban:admin`).
    """
    link = _link(request)
    summary = await repository.summary(session)
    rows = await repository.recent(session, status=status, limit=limit)
    central = None
    if link is not None and not link.is_central:
        try:
            central = link.central_url()
        except TongbanError:
            central = None
    return ForwardsOut(
        enabled=link is not None,
        central_url=central,
        counts=summary["counts"],
        oldest_pending_at=summary["oldest_pending_at"],
        link=link.details() if link is not None else {},
        feed_cursor=await repository.cursor(session) if link and not link.is_central else None,
        forwards=[ForwardOut.model_validate(row, from_attributes=True) for row in rows],
    )
