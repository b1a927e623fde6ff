"""The directory's HTTP face, at the central node: the signed document and enrolment."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from tongban_identity.nodes import service
from tongban_identity.nodes.schemas import EnrolmentOut, NodeEnrolment, NodeOut
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.node_keys import CENTRAL_NODE, public_jwk
from tongban_kit.db import SessionDep
from tongban_kit.errors import NotFound

router = APIRouter(tags=["directory"])


def _central(request: Request) -> IdentitySettings:
    settings: IdentitySettings = request.app.state.settings
    if not service.keeps_directory(settings.node.node_code):
        raise NotFound(f"This node keeps no directory; the central node {CENTRAL_NODE} does.")
    return settings


@router.get(
    "/.well-known/tongban-directory.jwt",
    response_class=Response,
    responses={200: {"content": {"application/jwt": {}}}},
)
async def directory(request: Request, session: SessionDep) -> Response:
    """The directory of nodes, signed by the central node (a compact JWS).

    Access: public (every node fetches it; it holds public keys and URLs only). Central node
    only: elsewhere 404. Check it with the central node's key before trusting it.
    """
    settings = _central(request)
    key = service.own_key(settings)
    document = await service.directory_document(
        session,
        key=key,
        own=service.own_entry(settings, key),
        valid_s=settings.directory_valid_s,
    )
    return Response(document, media_type="application/jwt", headers={"cache-control": "no-cache"})


@router.post("/v1/nodes/enrolments", status_code=201, response_model=EnrolmentOut)
async def enrol_node(body: NodeEnrolment, request: Request, session: SessionDep) -> EnrolmentOut:
    """A regional node enrols (or re-enrols, to change its keys or URL) with a one-time token.

    Access: whoever holds a token from `tongban nodes issue-token` at the central node, for
    the node code it was issued for; 401 otherwise. Central node only: elsewhere 404. Answers
    with the entry and the key the directory is signed with, the enrolling node's trust anchor.
    """
    settings = _central(request)
    node = await service.enrol(session, enrolment=body, now=datetime.now(UTC))
    return EnrolmentOut(
        node=NodeOut.model_validate(node),
        directory_jwks={"keys": [public_jwk(service.own_key(settings))]},
    )
