"""The browser client's built files (web/dist) at `/`: hashed assets cached for good, the page revalidated."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

# Vite names every built asset after a hash of its content: a changed file is a new URL, so a browser may keep one
# for a year without asking again.
IMMUTABLE = "public, max-age=31536000, immutable"
# The page names the current assets: a browser must ask (cheaply, with its ETag) each time, or it could run last
# week's client against today's API.
REVALIDATE = "no-cache"
API_PREFIX = "/api/"
# Nothing but the gateway serves the page's scripts, styles, media and API calls (the issue forbids other hosts).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str
    cache_control: str


class WebClient:
    """The files of a built client, read once at start-up (a few hundred KB), each with a strong ETag."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, StaticFile] = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = "/" + path.relative_to(root).as_posix()
            body = path.read_bytes()
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            cache = IMMUTABLE if relative.startswith("/assets/") else REVALIDATE
            self._files[relative] = StaticFile(
                body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"', cache
            )
        if "/index.html" not in self._files:
            raise FileNotFoundError(f"{root} holds no index.html: build the web client (make web)")
        self._files["/"] = self._files["/index.html"]

    @classmethod
    def find(cls, root: Path) -> WebClient | None:
        """The client built in `root`, or None when it has not been built (the API works without it)."""
        return cls(root) if (root / "index.html").is_file() else None

    def serves(self, request: web.Request) -> bool:
        """A file of the build, or a page a browser navigates to (it asks for HTML); anything else is the API's
        to answer, as JSON (an API client that strays outside /api/ gets the API's 404, not a page)."""
        if request.method not in ("GET", "HEAD") or request.raw_path.startswith(API_PREFIX):
            return False
        return request.path in self._files or "text/html" in request.headers.get("Accept", "")

    def has(self, path: str) -> bool:
        return path in self._files

    def response(self, request: web.Request, path: str | None = None) -> web.Response:
        """A file of the build (`path`, else the request's), or the page itself for any other path a browser
        navigates to: the client's own router reads the path (a reload of /exam/ses-1 must land in the exam)."""
        found = self._files.get(path or request.path)
        if found is None:
            found = self._files["/index.html"]
        headers = {"ETag": found.etag, "Cache-Control": found.cache_control}
        if found.content_type == "text/html":
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        if found.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=found.body, content_type=found.content_type, headers=headers)
