"""An OpenAPI 3.0.3 document and a self-contained HTML page generated from the gateway's route table."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, OneofDescriptor
from toefl.common.v1 import http_body_pb2

from gateway.routes import Route, resolve_field_path
from gateway.transcoder import (
    WRAPPER_TYPES,
    has_query_fields,
    http_body_field,
    http_body_request,
    is_map,
    is_query_leaf,
)
from toefl_core.ids import is_id_field
from toefl_core.media import SHA256_HEX

Schema = dict[str, Any]
STATUS_SCHEMA = "google.rpc.Status"
_MAX_QUERY_DEPTH = 3
_VARIABLE_RE = re.compile(r"\{([^}=]+)(=[^}]*)?\}")

_INT32: Schema = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32: Schema = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
# 64-bit integers are strings in proto3 JSON (a JavaScript number would lose precision); the gateway's parser
# takes a JSON number too, so both are described, each within the type's range.
_INT64: Schema = {
    "anyOf": [
        {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
        {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1},
    ]
}
_UINT64: Schema = {
    "anyOf": [
        {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
        {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**64 - 1},
    ]
}
# Exactly the characters toefl_core.ids refuses in ids (Unicode category Cc), as an ECMA-262 pattern.
ID_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "example": "1.5s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated lowerCamelCase field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """Proto3 JSON takes null for any field as its default value (answers never carry one)."""
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def _real_oneofs(descriptor: Descriptor) -> list[OneofDescriptor]:
    """The message's oneofs, without the synthetic one protoc makes for each proto3 `optional` field."""
    return [
        oneof
        for oneof in descriptor.oneofs
        if not (len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}")
    ]


def _at_most_one(oneof: OneofDescriptor) -> Schema:
    """Proto3 JSON sets at most one member of a oneof: exactly one of "this member alone" or "none of them"."""
    members = [{"required": [member.json_name]} for member in oneof.fields]
    return {"oneOf": [*members, {"not": {"anyOf": members}}]}


class SchemaBuilder:
    """JSON schemas of messages and enums, registered once each under components/schemas by full name."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {
            STATUS_SCHEMA: {
                "type": "object",
                "description": "The error body of every non-2xx answer.",
                "properties": {
                    "code": {"type": "integer", "format": "int32", "description": "gRPC status code"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
                },
                "required": ["code", "message", "details"],
            }
        }

    def message(self, descriptor: Descriptor) -> Schema:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # registered first, so that recursive messages terminate
            properties = {field.json_name: _nullable(self.field(field)) for field in descriptor.fields}
            # The gateway's JSON parser refuses a field the message does not have (a 400 naming it).
            schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
            oneofs = [_at_most_one(oneof) for oneof in _real_oneofs(descriptor)]
            if len(oneofs) == 1:
                schema.update(oneofs[0])
            elif oneofs:
                schema["allOf"] = oneofs
            self.components[name] = schema
        return _ref(name)

    def enum(self, descriptor: EnumDescriptor) -> Schema:
        """Names, which answers always use; a request may give a defined number instead (JSON number or string)."""
        name = descriptor.full_name
        if name not in self.components:
            numbers = sorted({value.number for value in descriptor.values})
            self.components[name] = {
                "anyOf": [
                    {"type": "string", "enum": [value.name for value in descriptor.values]},
                    {"type": "string", "enum": [str(number) for number in numbers]},
                    {"type": "integer", "format": "int32", "enum": numbers},
                ],
                "description": "By name; in a request, a number the enum defines is taken too.",
            }
        return _ref(name)

    def single(self, field: FieldDescriptor) -> Schema:
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        if field.message_type is not None:
            full_name = field.message_type.full_name
            if full_name in WRAPPER_TYPES:
                return {**self.single(field.message_type.fields_by_name["value"]), "nullable": True}
            return self.message(field.message_type)
        if is_id_field(field):
            # Both services refuse an id holding a control character (toefl_core.ids).
            return {"type": "string", "pattern": ID_PATTERN}
        if field.name == "sha256" and field.type == FieldDescriptor.TYPE_STRING:
            # A content address (toefl_core.media): item_service refuses anything but 64 lowercase hex digits.
            return {"type": "string", "pattern": f"^{SHA256_HEX.pattern}$"}
        return dict(_SCALARS[field.type])

    def set_by_path(self, body: Schema, fields: Sequence[FieldDescriptor]) -> Schema:
        """The body's schema with the fields a path variable binds taken as any value of their type: the path's
        value replaces the body's (as in grpc-gateway), so the body's is never checked as an id."""
        if not fields or "$ref" not in body:
            return body
        component = self.components[body["$ref"].rsplit("/", 1)[-1]]
        properties = dict(component["properties"])
        for field in fields:
            plain = self.enum(field.enum_type) if field.enum_type is not None else dict(_SCALARS[field.type])
            ignored = {"allOf": [plain], "description": "Ignored: the path sets it."}
            properties[field.json_name] = _nullable(ignored)
        return {**component, "properties": properties}

    def field(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None and is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value_field)}
        if field.is_repeated:
            return {"type": "array", "items": self.single(field)}
        return self.single(field)


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: what a 200 of `source` gives `target`, so a client (or a stateful tester) can go on."""

    source: str
    target: str
    # Request field path of the target (`session_id`) -> runtime expression (`$response.body#/sessionId`).
    parameters: Mapping[str, str]
    description: str = ""


_RETRY_AFTER: Schema = {
    "Retry-After": {
        "description": "Seconds to wait before the same request can succeed (a RetryInfo's delay, rounded up).",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_CHALLENGE: Schema = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
# The statuses the gateway answers (errors.py maps each gRPC code as grpc-gateway does), each a google.rpc.Status.
_ERRORS: tuple[tuple[str, str, Schema], ...] = (
    ("400", "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE; or a request the gateway cannot read", {}),
    ("401", "UNAUTHENTICATED: no bearer token, or one that is malformed, expired or wrongly signed", _CHALLENGE),
    ("403", "PERMISSION_DENIED: the caller's role or ownership does not allow it", {}),
    ("404", "NOT_FOUND", {}),
    ("409", "ALREADY_EXISTS or ABORTED (a stale etag, a concurrent change)", _RETRY_AFTER),
    ("413", "the request body exceeds the gateway's limit", {}),
    ("415", "a request body that is not application/json", {}),
    ("429", "RESOURCE_EXHAUSTED: a limit or a throttle", _RETRY_AFTER),
    ("500", "INTERNAL, UNKNOWN or DATA_LOSS: a defect; the log has it under the X-Request-Id", {}),
    ("503", "UNAVAILABLE: a backend is down, not configured or not ready", _RETRY_AFTER),
    ("504", "DEADLINE_EXCEEDED: no answer within the request's deadline (Grpc-Timeout)", {}),
)
_BODY_ONLY = frozenset({"413", "415"})


def _media_types(route: Route) -> list[str]:
    """The media types a route's HttpBody body takes, from the field's toefl.common.v1.media_types option."""
    if route.body == "*":
        return ["*/*"]
    options = route.request_descriptor.fields_by_name[route.body].GetOptions()
    return list(options.Extensions[http_body_pb2.media_types]) or ["*/*"]


def _error_responses(has_body: bool) -> Schema:
    responses: Schema = {}
    for status, description, headers in _ERRORS:
        if status in _BODY_ONLY and not has_body:
            continue
        response: Schema = {
            "description": description,
            "content": {"application/json": {"schema": _ref(STATUS_SCHEMA)}},
        }
        if headers:
            response["headers"] = headers
        responses[status] = response
    return responses


def _query_parameters(
    builder: SchemaBuilder,
    descriptor: Descriptor,
    bound: set[tuple[str, ...]],
    max_page_size: int | None,
    prefix: tuple[str, ...] = (),
) -> list[Schema]:
    parameters: list[Schema] = []
    for field in descriptor.fields:
        path = (*prefix, field.name)
        if any(path[: len(b)] == b for b in bound) or is_map(field):
            continue
        target = field.message_type
        if is_query_leaf(field):
            schema = builder.field(field)
            parameter: Schema = {"name": ".".join(path), "in": "query", "required": False, "schema": schema}
            if field.is_repeated:
                parameter.update(style="form", explode=True)
            if path == ("page_size",) and max_page_size is not None:
                # toefl_core.paging: 0 (or absent) is the service's default, more than its maximum a 400.
                parameter["schema"] = {**schema, "minimum": 0, "maximum": max_page_size}
                parameter["description"] = f"At most {max_page_size}; 0 or absent: the service's default."
            parameters.append(parameter)
        elif (
            has_query_fields(field)
            and target is not None
            and len(path) < _MAX_QUERY_DEPTH
            and target is not descriptor
        ):
            parameters.extend(_query_parameters(builder, target, bound, max_page_size, path))
    return parameters


def _openapi_path(route: Route) -> str:
    return _VARIABLE_RE.sub(lambda match: "{" + match.group(1) + "}", route.template.text)


def _shape(path: str) -> str:
    return _VARIABLE_RE.sub("{}", path)


def _path_set(route: Route, body: Descriptor, prefix: tuple[str, ...]) -> list[FieldDescriptor]:
    """The body's own fields (under `prefix` of the request) that a path variable also sets."""
    return [
        body.fields_by_name[v.field_path[-1]]
        for v in route.template.variables
        if v.field_path[:-1] == prefix and v.field_path[-1] in body.fields_by_name
    ]


def _operation(
    builder: SchemaBuilder, route: Route, path_names: Sequence[str], max_page_size: int | None
) -> Schema:
    request = route.request_descriptor
    parameters: list[Schema] = []
    bound: set[tuple[str, ...]] = set()
    for name, variable in zip(path_names, route.template.variables, strict=True):
        leaf = resolve_field_path(request, variable.field_path)[-1]
        field_path = ".".join(variable.field_path)
        schema = builder.field(leaf)
        if schema.get("type") == "string":
            # An empty segment matches no route: the path is a 404, never this operation.
            schema = {**schema, "minLength": 1}
        parameter: Schema = {"name": name, "in": "path", "required": True, "schema": schema}
        if name != field_path:
            parameter["description"] = f"Binds the request field {field_path}."
        parameters.append(parameter)
        bound.add(variable.field_path)
    operation: Schema = {
        "operationId": route.operation_id,
        "summary": f"{route.method.containing_service.name}.{route.method.name}",
        "tags": [route.method.containing_service.name],
    }
    if http_body_request(route):
        # google.api.HttpBody: the bytes themselves, in one of the media types the proto declares it takes.
        binary = {"schema": {"type": "string", "format": "binary"}}
        operation["requestBody"] = {
            "required": True,
            "content": dict.fromkeys(_media_types(route), binary),
            "description": "The raw bytes; Content-Type is required and the service refuses a type it does not "
            "take (415) and a body larger than it takes (413).",
        }
        if route.body != "*":
            bound.add((route.body,))
    elif route.body:
        if route.body == "*":
            body_schema = builder.set_by_path(builder.message(request), _path_set(route, request, ()))
        else:
            body_field = request.fields_by_name[route.body]
            body_schema = builder.field(body_field)
            bound.add((body_field.name,))
            if body_field.message_type is not None:
                path_set = _path_set(route, body_field.message_type, (body_field.name,))
                body_schema = builder.set_by_path(body_schema, path_set)
        content = {"application/json": {"schema": body_schema}}
        # An absent or empty body is the empty message, as in grpc-gateway; what the RPC then refuses is its own.
        operation["requestBody"] = {"required": False, "content": content}
    if route.body != "*":
        parameters.extend(_query_parameters(builder, request, bound, max_page_size))
    if parameters:
        operation["parameters"] = parameters
    response = route.response_descriptor
    if route.response_body:
        result = builder.field(response.fields_by_name[route.response_body])
    else:
        result = builder.message(response)
    if route.server_streaming and http_body_field(route):
        content = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
        description = "The bytes, sent in chunks, in their own Content-Type; cut short on a failure midway."
    elif route.server_streaming:
        line = {"type": "object", "properties": {"result": result, "error": _ref(STATUS_SCHEMA)}}
        content = {
            "application/x-ndjson": {"schema": line},
            "text/event-stream": {
                "schema": {"type": "string", "description": "Server-Sent Events, one per message"}
            },
        }
        description = "A stream of messages, one JSON object per line; an error ends it with an error object."
    elif http_body_field(route):
        # google.api.HttpBody: the bytes themselves, in the content type the service gives them.
        content = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
        description = (
            "The bytes, with their own Content-Type, a strong ETag (If-None-Match: 304) and Cache-Control."
        )
    else:
        content = {"application/json": {"schema": result}}
        description = "OK"
    operation["responses"] = {
        "200": {"description": description, "content": content},
        **_error_responses(bool(route.body)),
    }
    if route.public:
        operation["security"] = []
    return operation


Placed = Mapping[str, tuple[Route, str, list[str]]]


def _add_links(paths: dict[str, Schema], placed: Placed, links: Sequence[Link]) -> None:
    """Each link under its source's 200, its parameters named as the target names them (a query name is the
    field path; a path variable may have the shared path's name)."""
    for link in links:
        if link.source not in placed or link.target not in placed:
            raise ValueError(f"link {link.source} -> {link.target}: no such operation")
        source_route, source_path, _names = placed[link.source]
        target_route, _path, target_names = placed[link.target]
        variables = target_route.template.variables
        by_field = {".".join(v.field_path): name for v, name in zip(variables, target_names, strict=True)}
        parameters = {by_field.get(path, path): value for path, value in link.parameters.items()}
        entry: Schema = {"operationId": link.target, "parameters": parameters}
        if link.description:
            entry["description"] = link.description
        ok = paths[source_path][source_route.http_method.lower()]["responses"]["200"]
        ok.setdefault("links", {})[target_route.method.name] = entry


def build_openapi(
    routes: Sequence[Route],
    *,
    page_size_limits: Mapping[str, int] | None = None,
    links: Sequence[Link] = (),
    title: str = "TOEFL exam API",
    version: str = "v1",
) -> Schema:
    """The document; paths that differ only in variable names share one path and its names.

    `page_size_limits` maps a backend name to its List RPCs' largest page size; `links` join operations by id.
    """
    builder = SchemaBuilder()
    limits = page_size_limits or {}
    paths: dict[str, Schema] = {}
    path_by_shape: dict[str, str] = {}
    placed: dict[str, tuple[Route, str, list[str]]] = {}
    # Plain variable names ({item_id}) are preferred over nested ones ({item.item_id}) for a shared path.
    for own in sorted((_openapi_path(route) for route in routes), key=lambda path: (path.count("."), path)):
        path_by_shape.setdefault(_shape(own), own)
    for route in sorted(routes, key=lambda r: (r.template.text, r.http_method)):
        path = path_by_shape[_shape(_openapi_path(route))]
        names = [match.group(1) for match in _VARIABLE_RE.finditer(path)]
        operation = _operation(builder, route, names, limits.get(route.backend))
        paths.setdefault(path, {})[route.http_method.lower()] = operation
        placed[route.operation_id] = (route, path, names)
    _add_links(paths, placed, links)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "Generated at start-up from the services' google.api.http annotations.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.components.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _schema_html(schema: Schema) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#{html.escape(name)}">{html.escape(name)}</a>'
    if schema.get("type") == "array":
        return f"array of {_schema_html(schema.get('items', {}))}"
    text = schema.get("type", "any")
    if "format" in schema:
        text += f" ({schema['format']})"
    return html.escape(str(text))


def render_docs(document: Schema) -> str:
    """A page a person can read in a browser, with no script and nothing fetched from elsewhere."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(document['info']['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "code,.m{font-family:monospace}.m{font-weight:bold;display:inline-block;width:5em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        "section{border-top:1px solid #ddd;padding:.5em 0}</style></head><body>",
        f"<h1>{html.escape(document['info']['title'])}</h1>",
        "<p>Every route but the public ones needs <code>Authorization: Bearer &lt;token&gt;</code>."
        " Errors are <a href='#google.rpc.Status'>google.rpc.Status</a> JSON bodies. The machine-readable form is "
        "<a href='/openapi.json'>/openapi.json</a>.</p><h2>Operations</h2>",
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            out.append(f"<section id='{html.escape(operation['operationId'])}'>")
            out.append(f"<span class='m'>{method.upper()}</span> <code>{html.escape(path)}</code>")
            public = " (no token needed)" if operation.get("security") == [] else ""
            out.append(f" &mdash; {html.escape(operation['summary'])}{public}")
            if operation.get("parameters"):
                out.append("<table><tr><th>parameter</th><th>in</th><th>type</th></tr>")
                for parameter in operation["parameters"]:
                    out.append(
                        f"<tr><td><code>{html.escape(parameter['name'])}</code></td><td>{parameter['in']}</td>"
                        f"<td>{_schema_html(parameter['schema'])}</td></tr>"
                    )
                out.append("</table>")
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                out.append(f"<div>body ({html.escape(media)}): {_schema_html(content['schema'])}</div>")
            for media, content in operation["responses"]["200"]["content"].items():
                out.append(f"<div>response ({html.escape(media)}): {_schema_html(content['schema'])}</div>")
            out.append("</section>")
    out.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        out.append(f"<section id='{html.escape(name)}'><h3>{html.escape(name)}</h3>")
        if "anyOf" in schema and "enum" in schema["anyOf"][0]:
            names = schema["anyOf"][0]["enum"]
            out.append("<p>one of: " + ", ".join(f"<code>{html.escape(v)}</code>" for v in names) + "</p>")
        elif schema.get("properties"):
            out.append("<table><tr><th>field</th><th>type</th></tr>")
            for field_name, field_schema in schema["properties"].items():
                out.append(
                    f"<tr><td><code>{html.escape(field_name)}</code></td><td>{_schema_html(field_schema)}</td></tr>"
                )
            out.append("</table>")
        else:
            out.append(f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>")
        out.append("</section>")
    out.append("</body></html>")
    return "".join(out)
