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

from gateway.app import create_app, openapi_document
from gateway.backends import ITEM_SERVICE, SESSION_SERVICE, Backend, toefl_backends
from gateway.openapi import ID_PATTERN, build_openapi
from gateway.routes import build_routes
from item_service import servicer as item_servicer
from session_service import config as session_config
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
    assert "ItemService.AssembleModule" not in summaries and "ItemService.AssembleModules" not in summaries


def test_toefl_document_describes_parameters_schemas_errors_and_security() -> None:
    document = toefl_document()
    get_item = document["paths"]["/api/items/{item_id}"]["get"]
    parameters = {p["name"]: p for p in get_item["parameters"]}
    assert parameters["item_id"]["in"] == "path" and parameters["item_id"]["required"] is True
    assert parameters["revision"]["schema"] == INT64
    assert parameters["view"]["schema"] == {"$ref": "#/components/schemas/toefl.item.v1.ItemView"}
    assert get_item["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/toefl.item.v1.Item"
    }
    status = {"$ref": "#/components/schemas/google.rpc.Status"}
    for code in ("400", "401", "403", "404", "409", "429", "500", "503", "504"):
        assert get_item["responses"][code]["content"]["application/json"]["schema"] == status, code
    assert "413" not in get_item["responses"] and "default" not in get_item["responses"]
    schemas = document["components"]["schemas"]
    create_time = schemas["toefl.item.v1.Item"]["properties"]["createTime"]
    assert create_time == {"type": "string", "format": "date-time", "nullable": True}
    assert set(schemas["google.rpc.Status"]["required"]) == {"code", "message", "details"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/auth/token"]["post"]["security"] == []
    assert "security" not in get_item
    # UpdateItem's {item.item_id} shares the path of GetItem's {item_id}, as OpenAPI requires.
    patch = document["paths"]["/api/items/{item_id}"]["patch"]
    assert patch["parameters"][0]["description"] == "Binds the request field item.item_id."
    assert {p["name"] for p in patch["parameters"][1:]} == {"update_mask", "note"}
    # The body's itemId is the path's: any string, never checked as an id; the rest is the Item schema.
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["itemId"]["description"] == "Ignored: the path sets it."
    assert body["properties"]["section"] == schemas["toefl.item.v1.Item"]["properties"]["section"]
    export = document["paths"]["/api/items:export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/event-stream"}


INT64 = {
    "anyOf": [
        {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
        {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1},
    ]
}


def toefl_document() -> dict[str, Any]:
    document = openapi_document(toefl_backends(gateway_settings()))
    validate(document)
    return document


def test_request_messages_refuse_unknown_fields_and_take_null() -> None:
    schemas = toefl_document()["components"]["schemas"]
    messages = {name: s for name, s in schemas.items() if name.startswith("toefl.") and "properties" in s}
    assert len(messages) > 40
    for name, schema in messages.items():
        assert schema["additionalProperties"] is False, name
        # proto3 JSON reads null as the field's default, for every field.
        assert all(p.get("nullable") is True for p in schema["properties"].values()), name


def test_a_oneof_is_at_most_one_of_its_members() -> None:
    answer = toefl_document()["components"]["schemas"]["toefl.session.v1.Answer"]
    members = ["choiceIndex", "completions", "wordSequence", "text", "speech"]
    alone = [{"required": [member]} for member in members]
    assert answer["oneOf"] == [*alone, {"not": {"anyOf": alone}}]
    # A proto3 `optional` field's synthetic oneof is no constraint.
    result = toefl_document()["components"]["schemas"]["toefl.session.v1.RatingResult"]
    assert "finalScore" in result["properties"] and "oneOf" not in result and "allOf" not in result


def test_integers_ids_enums_and_page_sizes_are_described_as_the_server_takes_them() -> None:
    document = toefl_document()
    schemas = document["components"]["schemas"]
    assert schemas["toefl.item.v1.Item"]["properties"]["revision"] == {**INT64, "nullable": True}
    role = schemas["toefl.session.v1.Role"]["anyOf"]
    assert role[0]["enum"][:2] == ["ROLE_UNSPECIFIED", "ROLE_STUDENT"]
    assert role[1]["enum"] == ["0", "1", "2", "3", "4", "5"] and role[2]["enum"] == [0, 1, 2, 3, 4, 5]
    session_id = schemas["toefl.session.v1.Session"]["properties"]["sessionId"]
    assert session_id == {"type": "string", "pattern": ID_PATTERN, "nullable": True}
    limits = {"/api/items": item_servicer.MAX_PAGE_SIZE, "/api/sessions": session_config.MAX_PAGE_SIZE}
    for path, limit in limits.items():
        page_size = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "page_size")
        assert page_size["schema"]["minimum"] == 0 and page_size["schema"]["maximum"] == limit
    create = document["paths"]["/api/sessions"]["post"]
    assert create["requestBody"]["required"] is False
    assert create["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
    assert {"413", "415"} <= set(create["responses"])


def test_links_let_a_client_sit_an_exam() -> None:
    paths = toefl_document()["paths"]
    links = paths["/api/sessions"]["post"]["responses"]["200"]["links"]
    assert links["SubmitResponse"] == {
        "operationId": "SessionService_SubmitResponse",
        "parameters": {
            "session_id": "$response.body#/sessionId",
            "item_id": "$response.body#/currentModule/items/0/itemId",
        },
    }
    assert {"GetSession", "AdvanceModule", "FinishSession", "GetScoreReport"} <= set(links)
    finish = paths["/api/sessions/{session_id}:finish"]["post"]["responses"]["200"]["links"]
    assert finish["GetScoreReport"]["parameters"] == {"session_id": "$response.body#/sessionId"}
    next_page = paths["/api/items/{item_id}/revisions"]["get"]["responses"]["200"]["links"]["ListItemRevisions"]
    assert next_page["parameters"] == {
        "page_token": "$response.body#/nextPageToken",
        "item_id": "$request.path.item_id",
    }


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
