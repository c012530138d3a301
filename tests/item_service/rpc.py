"""Helpers of the item_service tests: expected failures with their status code and the field they name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from toefl.item.v1 import item_service_pb2_grpc

from tests.support.tokens import metadata
from toefl_core.auth import Role

Stub = item_service_pb2_grpc.ItemServiceStub
Metadata = tuple[tuple[str, str], ...]
STUDENT = metadata(Role.STUDENT)
# A staff role that reads the bank in the STUDENT view (students do not read the bank at all).
TEACHER = metadata(Role.TEACHER)
AUTHOR = metadata(Role.AUTHOR)
ADMIN = metadata(Role.ADMIN)
SERVICE = metadata(Role.SERVICE)


def violated_fields(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    fields: list[str] = []
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.extend(v.field for v in bad.field_violations)
    return fields


def fails(
    call: Callable[..., Any],
    request: Any,
    meta: Any,
    code: grpc.StatusCode,
    *words: str,
    field: str | None = None,
) -> grpc.RpcError:
    """Call, expect `code`, the words in the message and (for INVALID_ARGUMENT) the field named in the details."""
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request, metadata=meta)
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    error = caught.value
    details = error.details() or ""
    assert error.code() == code, details
    for word in words:
        assert word in details, details
    if field is not None:
        assert field in details, details
        assert violated_fields(error) == [field]
    return error
