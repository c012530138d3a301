"""schemathesis on the gateway's OpenAPI document, a real stack behind: every operation, no 5xx, as documented."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.backends import toefl_backends
from gateway.openapi import build_openapi
from gateway.routes import build_routes
from tests.gateway.conftest import gateway_settings

# Cases per operation; over every operation of the document this is well above 1,000 cases in all.
EXAMPLES_PER_OPERATION = 40
MINIMUM_CASES = 1000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def served_document() -> dict[str, Any]:
    """The document the gateway serves, built as create_app builds it, so that the cases are known at collection.

    (schemathesis's fixture-based lazy loading does not work with pytest 9; a test below checks that the running
    gateway's /openapi.json is this very document.)
    """
    backends = toefl_backends(gateway_settings())
    public = frozenset().union(*(backend.public_methods for backend in backends))
    routes = build_routes(((b.name, service) for b in backends for service in b.services), public)
    document: dict[str, Any] = json.loads(json.dumps(build_openapi(routes)))
    return document


DOCUMENT = served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
cases: Counter[str] = Counter()


def test_the_gateway_serves_this_document(gateway_url: str) -> None:
    with urllib.request.urlopen(f"{gateway_url}/openapi.json", timeout=10) as reply:
        assert json.loads(reply.read()) == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_operation(case: schemathesis.Case[Any], gateway_url: str, admin_headers: dict[str, str]) -> None:
    cases[f"{case.operation.method.upper()} {case.operation.path}"] += 1
    case.call_and_validate(base_url=gateway_url, headers=admin_headers, checks=CHECKS, timeout=30)


def test_every_operation_and_enough_cases() -> None:
    if not cases:
        pytest.skip("counts the cases of test_operation: run it together with them")
    documented = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item}
    assert set(cases) == documented
    assert sum(cases.values()) >= MINIMUM_CASES, cases
    print(f"schemathesis: {sum(cases.values())} cases over {len(cases)} operations")
