"""/docs in Chromium: Swagger UI, served by the gateway from the pinned npm package, explores /openapi.json."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import screenshot


def test_the_api_explorer_lists_the_operations(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(stack.gateway.url + "/docs")
    expect(page.get_by_role("heading", name="SessionService")).to_be_visible()
    expect(page.get_by_text("/api/sessions/{session_id}:advance")).to_be_visible()
    screenshot(page, "api-docs")
    # Everything from the gateway itself: no CDN, no other host; nothing the page's policy had to block.
    assert all(url.startswith(stack.gateway.url) for url in requests), requests
    assert errors == [], errors
