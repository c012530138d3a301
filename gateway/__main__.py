"""`python -m gateway [--port-file F]`: serve the JSON gateway on GATEWAY_ADDR until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from aiohttp.web_protocol import RequestHandler
from google.rpc import status_pb2

from gateway.app import BACKEND_SECONDS, create_app, openapi_document
from gateway.backends import toefl_backends
from gateway.config import GatewaySettings, load_settings
from gateway.errors import code_for_http_status, error_response
from gateway.routes import RouteError
from toefl_core.config import ConfigError
from toefl_core.process import settle_after_start
from toefl_core.server import configure_logging, limit_malloc_arenas, run_event_loop

log = logging.getLogger("gateway")
SHUTDOWN_GRACE_SECONDS = 5.0


class AccessLogger(AbstractAccessLogger):
    """One line per request, with the request id so that it can be followed into the services' logs, and for a
    call forwarded to a service, how much of the request's time was the wait for that service's reply
    (`backend=`): a slow request whose time was mostly the gateway's own waited for the gateway.

    Query parameters appear by name only: a value can carry what a client should never have put in a URL (a
    password, a token), and a log is no place for it.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        names = "&".join(dict.fromkeys(request.query))
        target = f"{request.path}?{names}" if names else request.path
        backend = request.get(BACKEND_SECONDS)
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6fs request_id=%s%s',
            request.remote,
            request.method,
            target,
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
            response.headers.get("X-Request-Id", "-"),
            "" if backend is None else f" backend={backend:.6f}s",
        )


def _parser_message(message: str | None) -> str:
    """aiohttp's parser message up to its first blank line (the lines after it echo the client's bytes)."""
    lines: list[str] = []
    for line in (message or "").splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return " ".join(lines).rstrip(":")[:200]


class StatusRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering a request it cannot parse (a bad header, request line or body
    framing) with a google.rpc.Status JSON body like every other gateway error, not aiohttp's text/plain page."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> StreamResponse:
        # Not the parent's: it logs a client's malformed request at ERROR with the parser's traceback, as if the
        # gateway were at fault. One WARNING line says all there is to say; a 5xx is ours and keeps its traceback.
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            text = "internal error"
        else:
            reason = _parser_message(message)
            log.warning("malformed HTTP request from %s: %s", request.remote, reason or "unparsable")
            text = "the request is not valid HTTP" + (f": {reason}" if reason else "")
        if request.writer.output_size > 0:
            # Part of a response is on the wire already: no error reply can follow it, as in the parent.
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        response = error_response(
            status_pb2.Status(code=code_for_http_status(status), message=text), http_status=status
        )
        response.force_close()
        return response


class StatusServer(web.Server):
    def __call__(self) -> RequestHandler:
        return StatusRequestHandler(self, loop=self._loop, **self._kwargs)


class StatusAppRunner(web.AppRunner):
    """AppRunner whose connections use StatusRequestHandler (aiohttp has no public hook for these errors)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same state, one overridden method: the class swap keeps every setting the app gave its server.
        server.__class__ = StatusServer
        return server


async def serve(settings: GatewaySettings, port_file: Path | None) -> None:
    runner = StatusAppRunner(
        create_app(settings), shutdown_timeout=SHUTDOWN_GRACE_SECONDS, access_log_class=AccessLogger
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = int(runner.addresses[0][1])
    if port_file is not None:
        # Written atomically, so a test waiting for the file never reads half a number.
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(port_file)
    settle_after_start()
    log.info("gateway serving on http://%s:%d", settings.host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway shutting down")
    await runner.cleanup()
    log.info("gateway stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--port-file", type=Path, help="write the bound port here (GATEWAY_ADDR may use port 0)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--write-openapi",
        type=Path,
        metavar="FILE",
        help="write the OpenAPI document it would serve to FILE and exit",
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    limit_malloc_arenas()
    try:
        settings = load_settings()
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    if args.write_openapi is not None:
        args.write_openapi.write_text(json.dumps(openapi_document(toefl_backends(settings)), indent=1) + "\n")
        return 0
    try:
        run_event_loop(serve(settings, args.port_file))
    except RouteError as exc:
        log.error("cannot build the routes: %s", exc)
        return 2
    except OSError as exc:
        log.error("cannot serve on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
