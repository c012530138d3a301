"""Prompt audio through the gateway: a student's signed link from their own module, staff with a token."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from tests.support.tokens import TEST_TOKEN_KEY, token
from toefl_core.auth import Role
from toefl_core.media import MEDIA_CACHE_CONTROL, media_signing_key, signed_media_url

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEACHER = {"Authorization": f"Bearer {token(Role.TEACHER, 'usr-media-teacher')}"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def listening_links(client: TestClient[Any, Any]) -> list[str]:
    """The audio links of a new student's Listening module, as the student receives them."""
    admin = {"Authorization": f"Bearer {token(Role.ADMIN, 'usr-media-admin')}"}
    user = {"username": f"media-{uuid.uuid4().hex[:8]}", "role": "ROLE_STUDENT", "password": "listen carefully"}
    async with client.post("/api/users", json=user, headers=admin) as reply:
        created = await reply.json()
        assert reply.status == 200, created
    student = {"Authorization": f"Bearer {token(Role.STUDENT, created['userId'])}"}
    body = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_LISTENING", "requestId": uuid.uuid4().hex}
    async with client.post("/api/sessions", json=body, headers=student) as reply:
        session = await reply.json()
        assert reply.status == 200, session
    module = session["currentModule"]
    links = [p["audioUrl"] for p in module.get("passages", []) if p.get("audioUrl")]
    links += [i["content"]["audioUrl"] for i in module["items"] if i.get("content", {}).get("audioUrl")]
    assert links, module
    return links


async def test_a_student_plays_the_prompt_audio_of_their_module(
    client: TestClient[Any, Any], listening_links: list[str]
) -> None:
    link = listening_links[0]
    assert link.startswith("/api/media/") and "signature=" in link, link
    digest = urlsplit(link).path.rsplit("/", 1)[-1]
    # No token: an <audio> element sends none; the signature is the permission.
    async with client.get(link) as reply:
        played = await reply.read()
        assert reply.status == 200, played[:200]
        assert reply.headers["Content-Type"] == "audio/mpeg"
        assert reply.headers["Cache-Control"] == MEDIA_CACHE_CONTROL
        etag = reply.headers["ETag"]
    # The very bytes of the bank (staff read them with a token and no signature).
    async with client.get(f"/api/media/{digest}", headers=TEACHER) as reply:
        assert reply.status == 200 and await reply.read() == played
    async with client.get(link, headers={"If-None-Match": etag}) as reply:
        assert reply.status == 304 and await reply.read() == b""


async def test_a_link_cannot_be_forged_extended_or_moved(
    client: TestClient[Any, Any], listening_links: list[str]
) -> None:
    link = urlsplit(listening_links[0])
    digest = link.path.rsplit("/", 1)[-1]
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    other = urlsplit(listening_links[-1]).path.rsplit("/", 1)[-1]
    key = media_signing_key(TEST_TOKEN_KEY)
    refused = [
        f"/api/media/{digest}?expires={query['expires']}&signature=AAAA{query['signature'][4:]}",
        # A later expiry with the old signature.
        f"/api/media/{digest}?expires={int(query['expires']) + 3600}&signature={query['signature']}",
        # Expired, though signed with the right key.
        signed_media_url(key, digest, int(time.time()) - 1),
        # No signature, and no staff token.
        f"/api/media/{digest}",
        f"/api/media/{digest}?expires={query['expires']}",
    ]
    if other != digest:
        # Another blob under this blob's signature.
        refused.append(f"/api/media/{other}?expires={query['expires']}&signature={query['signature']}")
    student = {"Authorization": f"Bearer {token(Role.STUDENT, 'usr-media-nosy')}"}
    for url in refused:
        async with client.get(url, headers=student) as reply:
            body = await reply.json()
            assert reply.status in (401, 403), (url, reply.status, body)
            assert "audio" not in reply.headers.get("Content-Type", ""), url


async def test_the_document_describes_the_media_route(client: TestClient[Any, Any]) -> None:
    async with client.get("/openapi.json") as reply:
        document = await reply.json()
    operation = document["paths"]["/api/media/{sha256}"]["get"]
    assert operation["security"] == []
    assert operation["responses"]["200"]["content"] == {"*/*": {"schema": {"type": "string", "format": "binary"}}}
