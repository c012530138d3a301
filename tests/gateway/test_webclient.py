"""The built web client at /: hashed assets cached for good, the page revalidated, the API untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.webclient import IMMUTABLE, REVALIDATE
from tests.gateway.conftest import gateway_settings

PAGE = b"<!doctype html><title>client</title><script type=module src=/assets/app-1a2b.js></script>"
SCRIPT = b"console.log('exam');"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A web/dist as Vite leaves it: the page and content-hashed assets."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_bytes(PAGE)
    (tmp_path / "assets" / "app-1a2b.js").write_bytes(SCRIPT)
    return tmp_path


async def client_for(web_dir: Path | None) -> TestClient[Any, Any]:
    app = create_app(gateway_settings(web_dir=web_dir), backends=())
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_page_and_assets_with_their_cache_rules(built: Path) -> None:
    client = await client_for(built)
    try:
        page = await client.get("/")
        assert page.status == 200 and await page.read() == PAGE
        assert page.headers["Cache-Control"] == REVALIDATE
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        asset = await client.get("/assets/app-1a2b.js")
        assert asset.status == 200 and await asset.read() == SCRIPT
        assert asset.headers["Cache-Control"] == IMMUTABLE
        assert asset.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
        # Revalidation with the ETag costs no body.
        again = await client.get("/", headers={"If-None-Match": page.headers["ETag"]})
        assert again.status == 304 and await again.read() == b""
        # A reload of a client route gets the page (the client's router reads the path); a missing asset is a 404.
        deep = await client.get("/exam/ses-123", headers={"Accept": "text/html,application/xhtml+xml"})
        assert deep.status == 200 and await deep.read() == PAGE
        # A program that is not a browser gets the API's JSON 404 for a path that is neither a file nor /api/.
        stray = await client.get("/exam/ses-123", headers={"Accept": "application/json"})
        assert stray.status == 404 and (await stray.json())["code"] == 5
        assert (await client.get("/assets/gone-9f9f.js")).status == 404
        # The API keeps its JSON answers under /api, whatever the client serves.
        api = await client.get("/api/no-such-route")
        assert api.status == 404 and (await api.json())["code"] == 5
    finally:
        await client.close()


async def test_without_a_built_client_the_api_answers_as_before(tmp_path: Path) -> None:
    client = await client_for(tmp_path / "not-built")
    try:
        reply = await client.get("/")
        assert reply.status == 404 and (await reply.json())["code"] == 5
    finally:
        await client.close()
