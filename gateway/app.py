"""The aiohttp application: generic JSON <-> gRPC transcoding over the route table, plus health, docs, metrics."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import aiohttp_cors
import grpc
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from multidict import CIMultiDict

from gateway.backends import Backend, toefl_backends
from gateway.config import GatewaySettings
from gateway.errors import (
    JSON_CONTENT_TYPE,
    GatewayError,
    body_refusal_status,
    code_for_http_status,
    error_response,
    gateway_error_response,
    retry_after,
    status_from_rpc_error,
    status_json,
)
from gateway.forwarding import Network, client_address
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.metrics import Metrics
from gateway.openapi import build_openapi, render_docs
from gateway.readiness import Readiness
from gateway.routes import HTTP_METHODS, Route, Router, build_routes
from gateway.transcoder import (
    RequestBuilder,
    dumps,
    http_body_field,
    http_body_of,
    http_body_request,
    http_body_request_field,
    response_json,
)
from gateway.webclient import WebClient
from toefl_core.auth import TokenCache
from toefl_core.channels import RECONNECT_OPTIONS
from toefl_core.errors import Unauthenticated

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
NDJSON_CONTENT_TYPE = "application/x-ndjson"
SSE_CONTENT_TYPE = "text/event-stream"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METADATA_KEY_RE = re.compile(r"[a-z0-9_.-]+")
# gRPC's own grammar for the header (PROTOCOL-HTTP2.md): 1 to 8 ASCII digits and a unit.
_TIMEOUT_RE = re.compile(r"([0-9]{1,8})([HMSmun])")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_METADATA_PREFIX = "grpc-metadata-"
# Hop-by-hop, or set by the gateway itself (a verified token, the request id, the client's address): never copied
# from a Grpc-Metadata-* header, so that no client can slip an unverified token, a second request id or someone
# else's address (which sign-in throttling counts by) past the gateway.
# Response metadata a service may set that becomes the HTTP header of the same name, as grpc-gateway's outgoing
# header matcher does; every other key is passed as Grpc-Metadata-<key>.
_OUTGOING_HEADERS = {"cache-control": "Cache-Control"}
_RESERVED_METADATA = frozenset(
    {"content-type", "user-agent", "te", "host", "connection", "authorization", "x-request-id", "x-forwarded-for"}
)


@dataclass
class Binding:
    """A route with everything its requests need, prepared once."""

    route: Route
    builder: RequestBuilder
    label: str
    call: Any = None
    # The RPC answers a google.api.HttpBody: its bytes are the response, not JSON.
    raw_body: bool = False
    # The most bytes a request body may have (larger for an HttpBody body, raw bytes rather than JSON).
    body_limit: int = 0


@dataclass
class GatewayState:
    settings: GatewaySettings
    backends: tuple[Backend, ...]
    router: Router
    bindings: dict[str, Binding]
    metrics: Metrics
    openapi: bytes
    docs: str
    tokens: TokenCache
    readiness: Readiness | None = None
    web: WebClient | None = None


STATE = web.AppKey("gateway_state", GatewayState)
# The web client's build of /docs (web/docs.html).
DOCS_PAGE = "/docs.html"
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE_LABEL = web.RequestKey("route_label", str)
# How long a unary call waited for its reply (the access log's `backend=`): the service's time, the gRPC hop both
# ways and this event loop taking the reply up. The rest of the request's time was the gateway's own work.
BACKEND_SECONDS = web.RequestKey("backend_seconds", float)
GRPC_CODE = web.ResponseKey("grpc_code", int)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_response(value: Any) -> web.Response:
    return web.Response(body=dumps(value), content_type=JSON_CONTENT_TYPE)


def _status_response(status: status_pb2.Status, http_status: int | None = None, **headers: str) -> web.Response:
    response = error_response(status, http_status=http_status, headers=headers or None)
    response[GRPC_CODE] = status.code
    return response


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    status = status_pb2.Status(code=code_for_http_status(exc.status), message=message or exc.reason)
    return _status_response(status, exc.status, **headers)


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request ids, Status bodies for every error (never a traceback), and per-route metrics."""
    started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id")
    request_id = incoming if incoming and _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    try:
        if incoming is not None and incoming != request_id:
            raise GatewayError(400, "X-Request-Id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        response = await handler(request)
    except GatewayError as exc:
        response = gateway_error_response(exc)
        response[GRPC_CODE] = exc.code
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_exception_response(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s (request id %s)", request.method, request.path, request_id)
        message = f"internal error; the gateway log has the details under request id {request_id}"
        response = _status_response(status_pb2.Status(code=code_pb2.INTERNAL, message=message), 500)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    state = request.app[STATE]
    label = request.get(ROUTE_LABEL) or _fixed_label(request)
    state.metrics.observe_request(label, request.method, response.status, time.perf_counter() - started)
    if response.status >= 400:
        state.metrics.observe_error(
            label, request.method, code_pb2.Code.Name(response.get(GRPC_CODE, code_pb2.UNKNOWN))
        )
    return response


def _fixed_label(request: web.Request) -> str:
    route = request.match_info.route
    return route.resource.canonical if route.resource is not None else "unmatched"


def _timeout(request: web.Request, default: float, cap: float) -> float:
    """The client's Grpc-Timeout, cut down to `cap`; `default` when the header is absent."""
    raw = request.headers.get("Grpc-Timeout")
    if raw is None:
        return default
    match = _TIMEOUT_RE.fullmatch(raw.strip())
    if match is None:
        raise GatewayError(
            400, f"Grpc-Timeout {raw[:40]!r} is not 1 to 8 digits and a unit (H, M, S, m, u or n), e.g. 5S or 100m"
        )
    return min(int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)], cap)


def _outgoing_metadata(
    request: web.Request, route: Route, tokens: TokenCache, trusted_proxies: Sequence[Network]
) -> list[tuple[str, str | bytes]]:
    metadata: list[tuple[str, str | bytes]] = [("x-request-id", request[REQUEST_ID])]
    if request.remote:
        # The backends see the gateway as their peer; this is the address the request came from (through the
        # trusted proxies, if any): one address, never a client's own X-Forwarded-For.
        forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
        metadata.append(("x-forwarded-for", client_address(request.remote, forwarded, trusted_proxies)))
    authorization = request.headers.get(hdrs.AUTHORIZATION)
    if not route.public:
        if authorization is None:
            raise GatewayError(401, "missing bearer token: send Authorization: Bearer <token>", headers=_CHALLENGE)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError(401, "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
        try:
            tokens.verify(token.strip())
        except Unauthenticated as exc:
            raise GatewayError(401, exc.message, headers=_CHALLENGE) from exc
    if authorization is not None:
        metadata.append(("authorization", authorization))
    for name, value in request.headers.items():
        lowered = name.lower()
        if not lowered.startswith(_METADATA_PREFIX):
            continue
        key = lowered[len(_METADATA_PREFIX) :]
        if not _METADATA_KEY_RE.fullmatch(key) or key.startswith("grpc-") or key in _RESERVED_METADATA:
            raise GatewayError(400, f"header {name} does not name forwardable metadata")
        if key.endswith("-bin"):
            try:
                metadata.append((key, base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError) as exc:
                raise GatewayError(400, f"header {name}: a -bin value must be base64") from exc
        else:
            metadata.append((key, value))
    return metadata


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _metadata_headers(*groups: Iterable[Any] | None) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for group in groups:
        for key, value in group or ():
            if key.startswith("grpc-") or key in _RESERVED_METADATA:
                continue
            if key in _OUTGOING_HEADERS and isinstance(value, str):
                # What only the service can know about its answer (how long it stays true), as HTTP says it.
                headers[_OUTGOING_HEADERS[key]] = value
                continue
            text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
            headers.add(f"Grpc-Metadata-{key}", text)
    return headers


async def _read_upto(request: web.Request, limit: int) -> bytes:
    """The body, at most `limit` bytes (413 past it), copied once out of the network's chunks: exactly the
    announced length when there is one, else chunk by chunk (chunked transfer) with the total checked as it
    grows."""
    if request.content_length is not None:
        return await request.content.readexactly(request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_body(request: web.Request, binding: Binding) -> bytes:
    route, limit = binding.route, binding.body_limit
    raw = binding.builder.raw_body
    if raw and hdrs.CONTENT_TYPE not in request.headers:
        # The service decides which types it takes; it cannot decide on none.
        raise GatewayError(415, "the request body needs a Content-Type (the media type of its bytes)")
    if not request.body_exists:
        return b""
    if request.content_length is not None and request.content_length > limit:
        raise GatewayError(
            413, f"request body of {request.content_length} bytes exceeds the limit of {limit} bytes"
        )
    try:
        body = await (_read_upto(request, limit) if raw else request.read())
    except web.HTTPRequestEntityTooLarge as exc:
        raise GatewayError(413, f"request body exceeds the limit of {limit} bytes") from exc
    except (HttpProcessingError, ConnectionResetError, asyncio.IncompleteReadError) as exc:
        # The client's doing (a broken chunked or compressed body, or gone before sending all it announced):
        # one line in the log, not an internal error's traceback.
        reason = str(exc).split("\n", 1)[0].strip()
        log.warning(
            "malformed or incomplete body on %s %s from %s (request id %s): %s",
            request.method,
            request.path,
            request.remote,
            request[REQUEST_ID],
            reason,
        )
        raise GatewayError(400, "the request body is malformed or incomplete") from exc
    if body and route.body and not raw:
        content_type = request.content_type
        if content_type != JSON_CONTENT_TYPE and not content_type.endswith("+json"):
            raise GatewayError(415, f"the request body must be {JSON_CONTENT_TYPE}, not {content_type}")
    return body


def _rpc_error_response(
    request: web.Request, state: GatewayState, route: Route, exc: grpc.aio.AioRpcError
) -> web.Response:
    status = status_from_rpc_error(exc, request[REQUEST_ID], route.grpc_path)
    state.metrics.observe_backend_error(route.backend, exc.code().name)
    headers = _metadata_headers(exc.initial_metadata(), exc.trailing_metadata())
    delay = retry_after(status)
    if delay is not None:
        headers["Retry-After"] = delay
    http_status = body_refusal_status(status, http_body_request_field(route)) if http_body_request(route) else None
    response = error_response(status, http_status=http_status, headers=headers)
    response[GRPC_CODE] = status.code
    return response


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every transcoded route: match, gate, authenticate, build the request, call the backend, shape JSON."""
    state = request.app[STATE]
    request[ROUTE_LABEL] = "unmatched"
    if state.web is not None and state.web.serves(request):
        request[ROUTE_LABEL] = "web client"
        return state.web.response(request)
    match = state.router.resolve(request.method, request.rel_url.raw_path)
    binding = state.bindings[match.route.operation_id]
    route = binding.route
    request[ROUTE_LABEL] = binding.label
    readiness = state.readiness
    if readiness is not None and readiness.verdict.miswired:
        raise GatewayError(503, f"refusing traffic: the backends are mis-wired: {readiness.verdict.miswired}")
    settings = state.settings
    metadata = _outgoing_metadata(request, route, state.tokens, settings.trusted_proxies)
    body = await _read_body(request, binding)
    message = binding.builder.build(
        match.path_params, request.query.items(), body, request.headers.get(hdrs.CONTENT_TYPE, "")
    )
    # A stream lasts as long as its content (a sitting's live view, an export), not as long as a reply is awaited:
    # without Grpc-Timeout it gets the longest deadline (a browser's EventSource cannot send the header).
    default = settings.max_timeout if route.server_streaming else settings.default_timeout
    timeout = _timeout(request, default, settings.max_timeout)
    if binding.call is None:
        raise GatewayError(503, f"{route.backend} is not configured; {route.method.full_name} is unavailable")
    if route.server_streaming:
        return await _stream(request, state, binding, message, metadata, timeout)
    called = time.perf_counter()
    call = binding.call(message, metadata=metadata, timeout=timeout)
    try:
        reply = await call
        headers = _metadata_headers(await call.initial_metadata(), await call.trailing_metadata())
    except grpc.aio.AioRpcError as exc:
        request[BACKEND_SECONDS] = time.perf_counter() - called
        return _rpc_error_response(request, state, route, exc)
    request[BACKEND_SECONDS] = time.perf_counter() - called
    if binding.raw_body:
        return _raw_body_response(request, *http_body_of(route, reply), headers)
    return web.Response(
        body=dumps(response_json(route, reply)), content_type=JSON_CONTENT_TYPE, headers=headers or None
    )


def _raw_body_response(
    request: web.Request, content_type: str, data: bytes, headers: CIMultiDict[str]
) -> web.Response:
    """An HttpBody's bytes as the response, with a strong ETag: a client that has them already gets a 304."""
    etag = f'"{hashlib.sha256(data).hexdigest()[:40]}"'
    headers["ETag"] = etag
    if etag in (value.strip() for value in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=data, headers=headers)


def _frame(value: Any, sse: bool, event: str = "") -> bytes:
    data = dumps(value)
    if not sse:
        return data + b"\n"
    prefix = f"event: {event}\n".encode() if event else b""
    return prefix + b"data: " + data + b"\n\n"


async def _stream(
    request: web.Request,
    state: GatewayState,
    binding: Binding,
    message: Message,
    metadata: Sequence[tuple[str, str | bytes]],
    deadline: float,
) -> web.StreamResponse:
    """NDJSON (`{"result": ...}` per line) or SSE; an error before the first message is a plain error reply."""
    route = binding.route
    call = binding.call(message, metadata=metadata, timeout=deadline)
    try:
        item = await call.read()
        initial = await call.initial_metadata()
    except grpc.aio.AioRpcError as exc:
        return _rpc_error_response(request, state, route, exc)
    if binding.raw_body:
        return await _raw_stream(request, state, route, call, item, _metadata_headers(initial))
    sse = SSE_CONTENT_TYPE in request.headers.get(hdrs.ACCEPT, "")
    response = web.StreamResponse(headers=_metadata_headers(initial))
    response.content_type = SSE_CONTENT_TYPE if sse else NDJSON_CONTENT_TYPE
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    if sse:
        response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    # Once the 200 is sent, every failure can only be told in the stream itself, as its last object.
    error: status_pb2.Status | None = None
    try:
        while item is not grpc.aio.EOF:  # type: ignore[attr-defined]
            await response.write(_frame({"result": response_json(route, item)}, sse))
            item = await call.read()
    except grpc.aio.AioRpcError as exc:
        state.metrics.observe_backend_error(route.backend, exc.code().name)
        error = status_from_rpc_error(exc, request[REQUEST_ID], route.grpc_path)
    except (ConnectionError, asyncio.CancelledError):
        call.cancel()
        raise
    except Exception:
        request_id = request[REQUEST_ID]
        log.exception("unhandled error in the stream of %s (request id %s)", request.path, request_id)
        text = f"internal error; the gateway log has the details under request id {request_id}"
        error = status_pb2.Status(code=code_pb2.INTERNAL, message=text)
    try:
        if error is not None:
            await response.write(_frame({"error": status_json(error)}, sse, "error"))
        await response.write_eof()
    finally:
        # The client went away mid-stream: stop the backend's work too.
        call.cancel()
    return response


async def _raw_stream(
    request: web.Request, state: GatewayState, route: Route, call: Any, item: Any, headers: CIMultiDict[str]
) -> web.StreamResponse:
    """A stream of HttpBody messages as one response body, in the first message's content type. A failure after
    the first bytes cannot be told in bytes of another format: the connection is cut before the chunked body's
    end, so that no client takes a truncated file for a whole one."""
    headers["Content-Type"] = http_body_of(route, item)[0]
    headers["X-Request-Id"] = request[REQUEST_ID]
    response = web.StreamResponse(headers=headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        while item is not grpc.aio.EOF:  # type: ignore[attr-defined]
            await response.write(http_body_of(route, item)[1])
            item = await call.read()
    except grpc.aio.AioRpcError as exc:
        state.metrics.observe_backend_error(route.backend, exc.code().name)
        log.warning(
            "the stream of %s broke off (request id %s): %s", request.path, request[REQUEST_ID], exc.code()
        )
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        call.cancel()
    await response.write_eof()
    return response


async def healthz(request: web.Request) -> web.Response:
    return _json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    readiness = request.app[STATE].readiness
    if readiness is None:
        raise GatewayError(503, "the gateway is starting")
    verdict = await readiness.check()
    if not verdict.ready:
        raise GatewayError(503, "not ready: " + "; ".join(verdict.problems))
    return _json_response({"status": "ready", "backends": verdict.reports})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE].metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE].openapi, content_type=JSON_CONTENT_TYPE)


async def docs(request: web.Request) -> web.Response:
    """The web client's interactive explorer (Swagger UI) when the client is built, else a plain HTML listing."""
    web_client = request.app[STATE].web
    if web_client is not None and web_client.has(DOCS_PAGE):
        return web_client.response(request, DOCS_PAGE)
    return web.Response(text=request.app[STATE].docs, content_type="text/html")


def _multicallable(channel: grpc.aio.Channel, route: Route) -> Any:
    factory = channel.unary_stream if route.server_streaming else channel.unary_unary
    return factory(
        route.grpc_path,
        request_serializer=route.request_class.SerializeToString,
        response_deserializer=route.response_class.FromString,
    )


async def _backends_ctx(app: web.Application) -> AsyncIterator[None]:
    """One channel per backend for the app's lifetime, the multicallables on it, and the readiness loop."""
    state = app[STATE]
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        *RECONNECT_OPTIONS,
    ]
    channels = {
        backend.name: grpc.aio.insecure_channel(backend.address, options=options)
        for backend in state.backends
        if backend.address
    }
    for binding in state.bindings.values():
        channel = channels.get(binding.route.backend)
        binding.call = _multicallable(channel, binding.route) if channel is not None else None
    readiness = Readiness(
        state.backends, channels, token_key=state.settings.token_key, interval=state.settings.ready_interval
    )
    verdict = await readiness.check()
    if not verdict.ready:
        log.warning("gateway starting while not ready: %s", "; ".join(verdict.problems))
    state.readiness = readiness
    task = asyncio.create_task(readiness.run())
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await asyncio.gather(*(channel.close(grace=None) for channel in channels.values()))


def fronted_routes(backends: Sequence[Backend]) -> list[Route]:
    """The route table of these backends' services, from their google.api.http annotations."""
    public = frozenset().union(*(backend.public_methods for backend in backends))
    return build_routes(((backend.name, service) for backend in backends for service in backend.services), public)


def openapi_document(backends: Sequence[Backend], routes: Sequence[Route] | None = None) -> dict[str, Any]:
    """The OpenAPI document the gateway in front of `backends` serves at /openapi.json."""
    return build_openapi(
        fronted_routes(backends) if routes is None else routes,
        page_size_limits={b.name: b.max_page_size for b in backends if b.max_page_size is not None},
        links=[link for backend in backends for link in backend.links],
    )


def create_app(settings: GatewaySettings, backends: Sequence[Backend] | None = None) -> web.Application:
    """The gateway in front of `backends` (default: the exam platform's item and session services)."""
    fronted = tuple(backends) if backends is not None else toefl_backends(settings)
    routes = fronted_routes(fronted)
    bindings = {
        route.operation_id: Binding(
            route,
            RequestBuilder(route),
            f"{route.http_method} {route.template.text}",
            raw_body=http_body_field(route),
            body_limit=settings.max_upload_bytes if http_body_request(route) else settings.max_body_bytes,
        )
        for route in routes
    }
    document = openapi_document(fronted, routes)
    # aiohttp's own limit only guards the JSON bodies it reads; an HttpBody body is read by _read_upto.
    app = web.Application(middlewares=[gateway_middleware], client_max_size=settings.max_body_bytes)
    app[STATE] = GatewayState(
        settings=settings,
        backends=fronted,
        router=Router(routes),
        bindings=bindings,
        metrics=Metrics(),
        openapi=json.dumps(document, indent=1).encode(),
        docs=render_docs(document),
        tokens=TokenCache(settings.token_key),
        web=WebClient.find(settings.web_dir) if settings.web_dir is not None else None,
    )
    app.cleanup_ctx.append(_backends_ctx)
    fixed = [
        app.router.add_get("/healthz", healthz, allow_head=False),
        app.router.add_get("/readyz", readyz, allow_head=False),
        app.router.add_get("/metrics", metrics, allow_head=False),
        app.router.add_get("/openapi.json", openapi_json, allow_head=False),
        app.router.add_get("/docs", docs, allow_head=False),
    ]
    catch_all = app.router.add_resource("/{tail:.*}")
    for method in HTTP_METHODS:
        catch_all.add_route(method, dispatch)
    cors = aiohttp_cors.setup(
        app,
        defaults={
            origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
                allow_credentials=True, expose_headers="*", allow_headers="*", allow_methods="*", max_age=600
            )
            for origin in settings.cors_origins
        },
    )
    for route in fixed:
        cors.add(route)
    cors.add(catch_all)
    return app
