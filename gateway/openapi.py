"""An OpenAPI 3.0.3 document and a self-contained HTML page generated from the gateway's route table."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.routes import Route, resolve_field_path
from gateway.transcoder import WRAPPER_TYPES, has_query_fields, is_map, is_query_leaf

Schema = dict[str, Any]
STATUS_SCHEMA = "google.rpc.Status"
_MAX_QUERY_DEPTH = 3
_VARIABLE_RE = re.compile(r"\{([^}=]+)(=[^}]*)?\}")

_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # 64-bit integers are strings in proto3 JSON (a JavaScript number would lose precision).
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated lowerCamelCase field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


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
            properties = {field.json_name: self.field(field) for field in descriptor.fields}
            self.components[name] = {"type": "object", "properties": properties}
        return _ref(name)

    def enum(self, descriptor: EnumDescriptor) -> Schema:
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {"type": "string", "enum": [value.name for value in descriptor.values]}
        return _ref(name)

    def single(self, field: FieldDescriptor) -> Schema:
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        if field.message_type is not None:
            full_name = field.message_type.full_name
            if full_name in WRAPPER_TYPES:
                return {**self.single(field.message_type.fields_by_name["value"]), "nullable": True}
            return self.message(field.message_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None and is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value_field)}
        if field.is_repeated:
            return {"type": "array", "items": self.single(field)}
        return self.single(field)


def _query_parameters(
    builder: SchemaBuilder, descriptor: Descriptor, bound: set[tuple[str, ...]], prefix: tuple[str, ...] = ()
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
            parameters.append(parameter)
        elif (
            has_query_fields(field)
            and target is not None
            and len(path) < _MAX_QUERY_DEPTH
            and target is not descriptor
        ):
            parameters.extend(_query_parameters(builder, target, bound, path))
    return parameters


def _openapi_path(route: Route) -> str:
    return _VARIABLE_RE.sub(lambda match: "{" + match.group(1) + "}", route.template.text)


def _shape(path: str) -> str:
    return _VARIABLE_RE.sub("{}", path)


def _operation(builder: SchemaBuilder, route: Route, path_names: Sequence[str]) -> Schema:
    request = route.request_descriptor
    parameters: list[Schema] = []
    bound: set[tuple[str, ...]] = set()
    for name, variable in zip(path_names, route.template.variables, strict=True):
        leaf = resolve_field_path(request, variable.field_path)[-1]
        field_path = ".".join(variable.field_path)
        parameter: Schema = {"name": name, "in": "path", "required": True, "schema": builder.field(leaf)}
        if name != field_path:
            parameter["description"] = f"Binds the request field {field_path}."
        parameters.append(parameter)
        bound.add(variable.field_path)
    operation: Schema = {
        "operationId": route.operation_id,
        "summary": f"{route.method.containing_service.name}.{route.method.name}",
        "tags": [route.method.containing_service.name],
    }
    if route.body:
        if route.body == "*":
            body_schema = builder.message(request)
        else:
            body_field = request.fields_by_name[route.body]
            body_schema = builder.field(body_field)
            bound.add((body_field.name,))
        content = {"application/json": {"schema": body_schema}}
        operation["requestBody"] = {"required": route.body == "*", "content": content}
    if route.body != "*":
        parameters.extend(_query_parameters(builder, request, bound))
    if parameters:
        operation["parameters"] = parameters
    response = route.response_descriptor
    if route.response_body:
        result = builder.field(response.fields_by_name[route.response_body])
    else:
        result = builder.message(response)
    if route.server_streaming:
        line = {"type": "object", "properties": {"result": result, "error": _ref(STATUS_SCHEMA)}}
        content = {
            "application/x-ndjson": {"schema": line},
            "text/event-stream": {
                "schema": {"type": "string", "description": "Server-Sent Events, one per message"}
            },
        }
        description = "A stream of messages, one JSON object per line; an error ends it with an error object."
    else:
        content = {"application/json": {"schema": result}}
        description = "OK"
    operation["responses"] = {
        "200": {"description": description, "content": content},
        "default": {
            "description": "An error (google.rpc.Status)",
            "content": {"application/json": {"schema": _ref(STATUS_SCHEMA)}},
        },
    }
    if route.public:
        operation["security"] = []
    return operation


def build_openapi(routes: Sequence[Route], *, title: str = "TOEFL exam API", version: str = "v1") -> Schema:
    """The document; paths that differ only in variable names share one path and its names."""
    builder = SchemaBuilder()
    paths: dict[str, Schema] = {}
    path_by_shape: dict[str, str] = {}
    # Plain variable names ({item_id}) are preferred over nested ones ({item.item_id}) for a shared path.
    for own in sorted((_openapi_path(route) for route in routes), key=lambda path: (path.count("."), path)):
        path_by_shape.setdefault(_shape(own), own)
    for route in sorted(routes, key=lambda r: (r.template.text, r.http_method)):
        path = path_by_shape[_shape(_openapi_path(route))]
        names = [match.group(1) for match in _VARIABLE_RE.finditer(path)]
        paths.setdefault(path, {})[route.http_method.lower()] = _operation(builder, route, names)
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
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                out.append(f"<div>body: {_schema_html(body)}</div>")
            for media, content in operation["responses"]["200"]["content"].items():
                out.append(f"<div>response ({html.escape(media)}): {_schema_html(content['schema'])}</div>")
            out.append("</section>")
    out.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        out.append(f"<section id='{html.escape(name)}'><h3>{html.escape(name)}</h3>")
        if "enum" in schema:
            out.append(
                "<p>one of: " + ", ".join(f"<code>{html.escape(v)}</code>" for v in schema["enum"]) + "</p>"
            )
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
