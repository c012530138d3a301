"""Domain errors: what a rule or a storage function raises on purpose, named after the gRPC status it becomes."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every error a servicer or storage function may raise on purpose.

    `message` is for people; `reason` (UPPER_SNAKE, stable, listed in the README) is for programs that must act on
    the refusal, with `metadata` to go with it; `retry_after_seconds` says when the same request may succeed.
    """

    # The gRPC status code's name: toefl_core.grpc_errors maps it, so rules need no gRPC to refuse.
    code: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrent change won (stale etag); the client should re-read and retry."""

    code = "ABORTED"


class OutOfRange(DomainError):
    code = "OUT_OF_RANGE"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    code = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"


__all__ = [
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "DomainError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]
