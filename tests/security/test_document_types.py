"""Uploads whose declared type lies: a document's type is told by its first bytes (PDF, PNG or
JPEG), never by the ``Content-Type`` its uploader sends.

Markup, scripts, executables and archives labelled as a PDF or an image are refused with 415
problem+json and nothing is stored; an accepted kind under another kind's label is stored, and
served, as what it is.
"""

from __future__ import annotations

import pytest
from security_world import World, assert_problem, sample

pytestmark = pytest.mark.node

DISGUISED = [
    ("application/pdf", b"<html><script>alert(1)</script></html>"),
    ("image/png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("image/jpeg", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xffPE\x00\x00"),
    ("application/pdf", b"PK\x03\x04\x14\x00\x00\x00\x08\x00evil.exe"),
    ("image/png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
    ("application/pdf", b" %PDF-1.7\n"),  # the signature, but not where it belongs
    ("image/jpeg", b"#!/bin/sh\nrm -rf /\n"),
]


@pytest.mark.parametrize(("declared", "content"), sample(DISGUISED), ids=lambda v: str(v)[:12])
def test_a_file_that_is_not_what_its_label_says_is_a_415_and_nothing_is_stored(
    world: World, declared: str, content: bytes
) -> None:
    n = DISGUISED.index((declared, content))
    draft = world.draft(world.bob, name=f"深圳市鲍勃伪装文件{n}科技有限公司")
    path = f"/registration/v1/applications/{draft['id']}/documents"
    bob = world.headers(world.bob)
    before = world.writes.snapshot()

    answer = world.api.post(
        path,
        params={"filename": "章程.pdf"},
        content=content,
        headers={**bob, "content-type": declared},
    )

    assert_problem(answer, 415)
    assert world.writes.snapshot() == before
    assert world.api.get(path, headers=bob).json()["items"] == []


def test_an_image_labelled_a_pdf_is_kept_and_served_as_an_image(world: World) -> None:
    draft = world.draft(world.bob, name="深圳市鲍勃标签文件科技有限公司")
    path = f"/registration/v1/applications/{draft['id']}/documents"
    bob = world.headers(world.bob)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    uploaded = world.api.post(
        path,
        params={"filename": "章程.pdf"},
        content=png,
        headers={**bob, "content-type": "application/pdf"},
    )
    assert uploaded.status_code == 201, uploaded.text
    served = world.api.get(f"{path}/{uploaded.json()['id']}", headers=bob)

    assert uploaded.json()["content_type"] == "image/png"
    assert served.content == png
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == "attachment"
