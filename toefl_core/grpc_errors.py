"""The one place domain errors become gRPC status codes: the server interceptor and google.rpc.Status."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from toefl_core.errors import DomainError

log = logging.getLogger(__name__)


def status_code(error: DomainError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code]


# ErrorInfo.domain: whose list of reasons a reason belongs to (the README's table).
ERROR_DOMAIN = "toefl"


def status_proto(error: DomainError) -> status_pb2.Status:
    """A google.rpc.Status for the error, with details a program can act on: BadRequest naming the field of an
    invalid argument, ErrorInfo when the error has a reason, RetryInfo when it says when to retry."""
    code = status_code(error)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if error.field is not None and code == grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    if error.reason is not None:
        metadata = {"field": error.field} if error.field is not None else {}
        metadata.update(error.metadata)
        status.details.add().Pack(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        # Never a negative delay: a lockout that ends as the reply leaves means "now".
        delay.FromNanoseconds(round(max(0.0, error.retry_after_seconds) * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of another service's refusal, if it gave one (the inverse of status_proto)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError carries the same trailers
    return status_error_info(status) if status is not None else None


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def status_code_name(status: status_pb2.Status) -> str:
    """The name of a google.rpc.Status's code (NOT_FOUND), as a refused call's log line names it; the number for
    a code gRPC does not know."""
    return _CODE_NAMES.get(status.code, str(status.code))


def status_error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a google.rpc.Status (a batch's entry, say), if it has one."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def to_rpc_status(error: DomainError) -> grpc.Status:
    return rpc_status.to_status(status_proto(error))


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: DomainError) -> None:
    status = to_rpc_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)


async def _abort_internal(context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
    # The traceback goes to the log, never to the client; the gateway's request id ties the two together.
    request_id = next((str(v) for k, v in context.invocation_metadata() or () if k == "x-request-id"), "-")
    log.exception("unexpected error in %s (request_id=%s)", method, request_id)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        f"internal error in {method.rsplit('/', 1)[-1]} (request {request_id}); see server log",
    )


def _wrap_unary(method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except DomainError as error:
            await _abort(context, error)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except NotImplementedError:
            # The generated base servicer raises this for an RPC no servicer implements.
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
        except Exception:
            await _abort_internal(context, method)
        return None  # pragma: no cover - abort always raises

    return wrapped


def _wrap_stream(method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for message in behavior(request, context):
                yield message
        except DomainError as error:
            await _abort(context, error)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except NotImplementedError:
            # The generated base servicer raises this for an RPC no servicer implements.
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
        except Exception:
            await _abort_internal(context, method)

    return wrapped


def wrapped_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    unary: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]],
    stream: Callable[[Callable[..., AsyncIterator[Any]]], Callable[..., AsyncIterator[Any]]],
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with its unary or server-streaming behaviour wrapped; other kinds as they are (this
    project's RPCs are only those two kinds)."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),  # type: ignore[arg-type]
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Maps DomainError to its status code (with details) and any other exception to a bare INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return wrapped_handler(
            handler, functools.partial(_wrap_unary, method), functools.partial(_wrap_stream, method)
        )
