"""Documents on an application: streamed into PostgreSQL in chunks with their SHA-256, type
told by content (415 otherwise), size-limited (413), readable by the applicant and officers
only, and their digests part of what the applicant signs."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tongban_kit.testing import running_app
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow, Tokens

PDF = b"%PDF-1.7\n" + os.urandom(600 * 1024)  # three chunks of 256 KiB
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)


def _path(application_id: str) -> str:
    return f"/v1/applications/{application_id}/documents"


async def _upload(
    flow: Flow, application_id: str, content: Any, *, filename: str = "章程.pdf", **headers: str
) -> httpx.Response:
    return await flow.client.post(
        _path(application_id),
        params={"filename": filename},
        content=content,
        headers={**flow.applicant, "content-type": "application/pdf", **headers},
    )


async def test_a_document_is_stored_in_chunks_with_its_digest_and_read_back_whole(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    draft = await flow.draft(new_application())

    uploaded = await _upload(flow, draft["id"], PDF)
    listed = await flow.client.get(_path(draft["id"]), headers=flow.officer)
    by_applicant = await flow.client.get(
        f"{_path(draft['id'])}/{uploaded.json()['id']}", headers=flow.applicant
    )
    by_officer = await flow.client.get(
        f"{_path(draft['id'])}/{uploaded.json()['id']}", headers=flow.officer
    )

    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (uploaded.json()["content_type"], uploaded.json()["size"]) == (
        "application/pdf",
        len(PDF),
    )
    assert await sql("SELECT count(*) FROM document_chunks") == [(3,)]
    assert [d["id"] for d in listed.json()["items"]] == [uploaded.json()["id"]]
    assert by_applicant.content == PDF
    assert by_applicant.headers["content-type"] == "application/pdf"
    assert by_officer.content == PDF


async def test_the_type_is_told_by_content_and_anything_else_is_415(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    draft = await flow.draft(new_application())

    disguised = await _upload(flow, draft["id"], b"<html><script>alert(1)</script></html>")
    png = await _upload(flow, draft["id"], PNG, filename="营业场所.png")
    empty = await _upload(flow, draft["id"], b"")

    assert disguised.status_code == 415
    assert disguised.headers["content-type"] == "application/problem+json"
    assert png.status_code == 201
    assert png.json()["content_type"] == "image/png"
    assert empty.status_code == 400
    assert await sql("SELECT count(*) FROM application_documents") == [(1,)]


async def test_a_document_over_the_limit_is_413_and_leaves_nothing_behind(
    database: str,
    registration_settings: RegistrationSettings,
    tokens: Tokens,
    sql: Any,
    new_application: Callable[..., dict[str, Any]],
) -> None:
    settings = RegistrationSettings(
        database_url=database,
        node=registration_settings.node,
        run_workers=False,
        document_max_bytes=64 * 1024,
    )

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b"%PDF-1.7\n"
        for _ in range(20):
            yield os.urandom(16 * 1024)

    async with running_app(create_app(settings)) as client:
        flow = Flow(client, tokens.person(), tokens.officer())
        draft = await flow.draft(new_application())
        declared = await _upload(flow, draft["id"], b"%PDF-" + os.urandom(100 * 1024))
        chunked = await _upload(flow, draft["id"], streamed())
        fits = await _upload(flow, draft["id"], b"%PDF-" + os.urandom(1024))

    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert chunked.status_code == 413
    assert fits.status_code == 201
    assert await sql("SELECT count(*) FROM application_documents") == [(1,)]
    assert await sql("SELECT count(*) FROM document_chunks") == [(1,)]


async def test_an_upload_is_streamed_not_held_whole_in_memory(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    piece = os.urandom(64 * 1024)
    total = 8 * 1024 * 1024

    async def streamed() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(total // len(piece)):
            yield piece

    tracemalloc.start()
    try:
        uploaded = await _upload(flow, draft["id"], streamed())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == total + 9
    assert peak < total / 4, f"peak {peak} bytes for an upload of {total}"


async def test_only_the_applicant_and_officers_read_or_add_documents(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    document = (await _upload(flow, draft["id"], PNG)).json()
    stranger = tokens.person()
    officer_elsewhere = tokens.officer(node="110000")

    listed = await flow.client.get(_path(draft["id"]), headers=stranger)
    read = await flow.client.get(f"{_path(draft['id'])}/{document['id']}", headers=stranger)
    elsewhere = await flow.client.get(
        f"{_path(draft['id'])}/{document['id']}", headers=officer_elsewhere
    )
    added = await _upload(flow, draft["id"], PNG, **stranger)

    assert (listed.status_code, read.status_code, elsewhere.status_code) == (404, 404, 404)
    assert added.status_code == 404


async def test_the_documents_digests_are_part_of_what_the_applicant_submits(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    await _upload(flow, draft["id"], PDF)
    with_document = (
        await flow.client.get(f"/v1/applications/{draft['id']}", headers=flow.applicant)
    ).json()

    submitted = await flow.submit(draft["id"])
    too_late = await _upload(flow, draft["id"], PNG)

    assert with_document["document_sha256"] != draft["document_sha256"]
    assert submitted["document_sha256"] == with_document["document_sha256"]
    assert too_late.status_code == 409
