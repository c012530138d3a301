"""The OpenAPI document and the /docs page, for the test-only proto and for the exam platform's own API."""

from __future__ import annotations

import html
import json
from types import ModuleType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import ServiceDescriptor
from openapi_spec_validator import validate

from gateway.app import create_app
from gateway.backends import ITEM_SERVICE, SESSION_SERVICE, Backend, toefl_backends
from gateway.openapi import build_openapi
from gateway.routes import build_routes
from tests.gateway.conftest import gateway_settings


def annotated_methods(service: ServiceDescriptor) -> set[str]:
    return {m.name for m in service.methods if m.GetOptions().HasExtension(annotations_pb2.http)}


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [operation for path in document["paths"].values() for operation in path.values()]


def document_for(*services: ServiceDescriptor, public: frozenset[str] = frozenset()) -> dict[str, Any]:
    return build_openapi(build_routes((("backend", service) for service in services), public))


def test_toefl_document_validates_and_covers_every_annotated_rpc() -> None:
    document = document_for(ITEM_SERVICE, SESSION_SERVICE)
    validate(document)
    summaries = {operation["summary"] for operation in operations(document)}
    expected = {f"ItemService.{name}" for name in annotated_methods(ITEM_SERVICE)}
    expected |= {f"SessionService.{name}" for name in annotated_methods(SESSION_SERVICE)}
    assert summaries == expected
    assert "ItemService.AssembleModule" not in summaries


def test_toefl_document_describes_parameters_schemas_errors_and_security() -> None:
    routes = build_routes(
        ((b.name, s) for b in toefl_backends(gateway_settings()) for s in b.services),
        frozenset().union(*(b.public_methods for b in toefl_backends(gateway_settings()))),
    )
    document = build_openapi(routes)
    get_item = document["paths"]["/api/items/{item_id}"]["get"]
    parameters = {p["name"]: p for p in get_item["parameters"]}
    assert parameters["item_id"]["in"] == "path" and parameters["item_id"]["required"] is True
    assert parameters["revision"]["schema"] == {"type": "string", "format": "int64"}
    assert parameters["view"]["schema"] == {"$ref": "#/components/schemas/toefl.item.v1.ItemView"}
    assert get_item["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/toefl.item.v1.Item"
    }
    assert get_item["responses"]["default"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.rpc.Status"
    }
    schemas = document["components"]["schemas"]
    assert schemas["toefl.item.v1.Item"]["properties"]["createTime"] == {"type": "string", "format": "date-time"}
    assert set(schemas["google.rpc.Status"]["required"]) == {"code", "message", "details"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/auth/token"]["post"]["security"] == []
    assert "security" not in get_item
    # UpdateItem's {item.item_id} shares the path of GetItem's {item_id}, as OpenAPI requires.
    patch = document["paths"]["/api/items/{item_id}"]["patch"]
    assert patch["parameters"][0]["description"] == "Binds the request field item.item_id."
    assert {p["name"] for p in patch["parameters"][1:]} == {"update_mask", "note"}
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/toefl.item.v1.Item"
    }
    export = document["paths"]["/api/items:export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/event-stream"}


def test_gwtest_document_validates_and_covers_every_annotated_rpc(gwtest_pb: ModuleType) -> None:
    service = gwtest_pb.DESCRIPTOR.services_by_name["GatewayTest"]
    document = document_for(service, public=frozenset({"gwtest.v1.GatewayTest.Login"}))
    validate(document)
    summaries = {operation["summary"] for operation in operations(document)}
    assert summaries == {f"GatewayTest.{name}" for name in annotated_methods(service)}
    assert "Hidden" not in json.dumps(document)
    # Three bindings of Echo: the operation ids stay unique.
    ids = [operation["operationId"] for operation in operations(document)]
    assert len(ids) == len(set(ids))
    echo_query = {p["name"] for p in document["paths"]["/v1/echo"]["get"]["parameters"]}
    assert {"inner.label", "inner.deeper.flag", "maybe_count", "words", "when", "mask"} <= echo_query
    assert "labels" not in echo_query and "inner" not in echo_query


@pytest.mark.asyncio
async def test_served_document_and_docs_page(gwtest_pb: ModuleType) -> None:
    service = gwtest_pb.DESCRIPTOR.services_by_name["GatewayTest"]
    backend = Backend("alpha", "127.0.0.1:1", (service,))
    async with TestClient(TestServer(create_app(gateway_settings(), [backend]))) as client:
        async with client.get("/openapi.json") as response:
            assert response.status == 200
            document = await response.json()
        validate(document)
        async with client.get("/docs") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
    for path in document["paths"]:
        assert f"<code>{html.escape(path)}</code>" in page
    # Self-contained: nothing fetched from elsewhere.
    assert "<script" not in page and "src=" not in page and "<link" not in page
