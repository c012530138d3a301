"""JSON/query/path -> protobuf request building and protobuf -> proto3 JSON response shaping for one route."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.errors import GatewayError, bad_request
from gateway.jsonout import JsonPrinter
from gateway.routes import Route, resolve_field_path

# Well-known message types whose JSON form is a single string or scalar, so one query value can carry them.
STRING_JSON_TYPES = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
WRAPPER_TYPES = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
QUERY_LEAF_TYPES = STRING_JSON_TYPES | WRAPPER_TYPES
_TRUE = frozenset({"true", "True", "TRUE", "t", "T", "1"})
_FALSE = frozenset({"false", "False", "FALSE", "f", "F", "0"})
_INT_TYPES = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
    }
)
_FLOAT_TYPES = frozenset({FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT})


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def is_query_leaf(field: FieldDescriptor) -> bool:
    """A field one query value can set: a scalar, an enum, or a string-valued well-known type."""
    target = field.message_type
    return target is None or target.full_name in QUERY_LEAF_TYPES


def has_query_fields(field: FieldDescriptor) -> bool:
    """A singular message of our own whose fields a dotted query name may reach (never a google.protobuf type)."""
    target = field.message_type
    return target is not None and not field.is_repeated and not target.full_name.startswith("google.protobuf.")


def convert_scalar(field: FieldDescriptor, raw: str, name: str) -> Any:
    """A query or path string converted by the field's type; 400 naming `name` when it does not fit."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            try:
                padded = raw + "=" * (-len(raw) % 4)
                return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise bad_request(f"{name}: {raw!r} is not base64", field=name) from exc
        return raw
    if cpp in _INT_TYPES:
        try:
            return int(raw)
        except ValueError as exc:
            raise bad_request(f"{name}: {raw!r} is not an integer", field=name) from exc
    if cpp in _FLOAT_TYPES:
        try:
            return float(raw)
        except ValueError as exc:
            raise bad_request(f"{name}: {raw!r} is not a number", field=name) from exc
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise bad_request(f"{name}: {raw!r} is not a boolean (use true or false)", field=name)
    enum_type = field.enum_type
    if enum_type is not None:
        by_name = enum_type.values_by_name.get(raw)
        if by_name is not None:
            return by_name.number
        try:
            number = int(raw)
        except ValueError:
            number = None
        if number is not None and number in enum_type.values_by_number:
            return number
        allowed = ", ".join(value.name for value in enum_type.values)
        raise bad_request(f"{name}: {raw!r} is not a {enum_type.name} (one of {allowed})", field=name)
    raise bad_request(f"{name}: this field cannot be given as a string", field=name)


def _set_field(message: Message, field: FieldDescriptor, raw: str, name: str) -> None:
    """Assign (or append, for repeated fields) one string value to a scalar or string-like well-known field."""
    target = field.message_type
    if target is None:
        value = convert_scalar(field, raw, name)
        try:
            if field.is_repeated:
                getattr(message, field.name).append(value)
            else:
                setattr(message, field.name, value)
        except (ValueError, TypeError) as exc:
            raise bad_request(f"{name}: {raw!r} is out of range", field=name) from exc
        return
    sub = getattr(message, field.name).add() if field.is_repeated else getattr(message, field.name)
    if target.full_name in WRAPPER_TYPES:
        _set_field(sub, target.fields_by_name["value"], raw, name)
        return
    try:
        # ParseDict takes any JSON value; for these types the JSON value is a string.
        json_format.ParseDict(raw, sub)  # type: ignore[arg-type]
    except json_format.ParseError as exc:
        raise bad_request(f"{name}: {_first_line(exc)}", field=name) from exc


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0].strip()


def _lookup(descriptor: Descriptor, segment: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(segment) or descriptor.fields_by_camelcase_name.get(segment)


def check_enums(message: Message, prefix: str = "") -> None:
    """400 naming the field when an enum holds a number its type does not define, at any depth: json_format
    takes any int32 for a proto3 (open) enum, and a servicer would then see a value no client could mean."""
    for field, value in message.ListFields():
        name = prefix + field.name
        target = field.message_type
        if field.enum_type is not None:
            numbers = enumerate(value) if field.is_repeated else ((None, value),)
            for index, number in numbers:
                _check_enum_number(field, number, name if index is None else f"{name}[{index}]")
        elif target is None or target.full_name.startswith("google.protobuf."):
            continue
        elif is_map(field):
            value_field = target.fields_by_name["value"]
            for key, item in value.items():
                if value_field.enum_type is not None:
                    _check_enum_number(value_field, item, f"{name}[{key}]")
                elif value_field.message_type is not None:
                    check_enums(item, f"{name}[{key}].")
        elif field.is_repeated:
            for index, item in enumerate(value):
                check_enums(item, f"{name}[{index}].")
        else:
            check_enums(value, f"{name}.")


def check_enum_json(data: object, descriptor: Descriptor, prefix: str = "") -> None:
    """400 naming the field when a JSON body gives an enum a number that is not an integer (2.5, 1e-42) or a
    boolean: json_format would truncate it to an integer (0, a defined value) or take true as 1."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        field = _lookup(descriptor, key) if isinstance(key, str) else None
        if field is None or value is None:
            continue
        name = prefix + field.name
        if field.message_type is not None and is_map(field) and isinstance(value, dict):
            value_field = field.message_type.fields_by_name["value"]
            entries = [(f"{name}[{k}]", v) for k, v in value.items()]
            field = value_field
        elif field.is_repeated and isinstance(value, list):
            entries = [(f"{name}[{index}]", item) for index, item in enumerate(value)]
        else:
            entries = [(name, value)]
        target = field.message_type
        for path, item in entries:
            enum_type = field.enum_type
            if enum_type is not None and isinstance(item, (bool, float)):
                allowed = ", ".join(v.name for v in enum_type.values)
                raise bad_request(f"{path}: {item!r} is not a {enum_type.name} (one of {allowed})", field=path)
            if target is not None and not target.full_name.startswith("google.protobuf."):
                check_enum_json(item, target, f"{path}.")


def _check_enum_number(field: FieldDescriptor, number: int, name: str) -> None:
    enum_type = field.enum_type
    if enum_type is not None and number not in enum_type.values_by_number:
        allowed = ", ".join(value.name for value in enum_type.values)
        raise bad_request(f"{name}: {number} is not a {enum_type.name} (one of {allowed})", field=name)


class RequestBuilder:
    """Everything about one route's request that can be decided once: bound fields, query parameter lookups."""

    def __init__(self, route: Route) -> None:
        self.route = route
        descriptor = route.request_descriptor
        self._path_fields = [
            (variable, resolve_field_path(descriptor, variable.field_path))
            for variable in route.template.variables
        ]
        self._bound = {variable.field_path for variable in route.template.variables}
        self._body_field = descriptor.fields_by_name[route.body] if route.body not in ("", "*") else None
        if self._body_field is not None:
            self._bound.add((self._body_field.name,))
        self.raw_body = http_body_request(route)
        self._query_cache: dict[str, list[FieldDescriptor]] = {}

    def build(
        self,
        path_params: Mapping[str, str],
        query: Iterable[tuple[str, str]],
        body: bytes,
        content_type: str = "",
    ) -> Message:
        """The request message; `content_type` (the Content-Type header) only for an HttpBody body."""
        message = self.route.request_class()
        if self.raw_body:
            target: Any = getattr(message, self._body_field.name) if self._body_field is not None else message
            target.content_type = content_type
            target.data = body
        else:
            self._apply_body(message, body)
        self._apply_query(message, query)
        for variable, chain in self._path_fields:
            target = message
            for step in chain[:-1]:
                target = getattr(target, step.name)
            name = ".".join(variable.field_path)
            _set_field(target, chain[-1], path_params[variable.group], name)
        check_enums(message)
        return message

    def _apply_body(self, message: Message, body: bytes) -> None:
        if not self.route.body:
            if body.strip():
                raise bad_request(f"{self.route.http_method} {self.route.template.text} takes no request body")
            return
        if not body.strip():
            return
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GatewayError(400, f"malformed JSON body: {exc}") from exc
        except RecursionError as exc:
            # Deep nesting exhausts the parser's stack; no request of ours nests more than a few levels.
            raise GatewayError(400, "malformed JSON body: nested too deeply") from exc
        if self._body_field is None:
            if not isinstance(data, dict):
                raise bad_request("the request body must be a JSON object")
        else:
            data = {self._body_field.name: data}
        try:
            check_enum_json(data, self.route.request_descriptor)
            json_format.ParseDict(data, message)
        except json_format.ParseError as exc:
            raise bad_request(f"invalid request body: {_first_line(exc)}") from exc
        except RecursionError as exc:
            raise bad_request("invalid request body: nested too deeply") from exc

    def _apply_query(self, message: Message, query: Iterable[tuple[str, str]]) -> None:
        seen: set[str] = set()
        for name, raw in query:
            chain = self._query_cache.get(name) or self._resolve_query(name)
            leaf = chain[-1]
            if not leaf.is_repeated:
                key = ".".join(field.name for field in chain)
                if key in seen:
                    raise bad_request(f"query parameter {name!r} is given more than once", field=name)
                seen.add(key)
            target = message
            for step in chain[:-1]:
                target = getattr(target, step.name)
            oneof = leaf.containing_oneof
            if oneof is not None and target.WhichOneof(oneof.name) not in (None, leaf.name):
                raise bad_request(
                    f"query parameter {name!r}: another field of oneof {oneof.name} is set", field=name
                )
            _set_field(target, leaf, raw, name)

    def _resolve_query(self, name: str) -> list[FieldDescriptor]:
        if self.route.body == "*":
            raise bad_request(
                f"unknown query parameter {name!r}: {self.route.template.text} takes the whole request as body",
                field=name,
            )
        descriptor = self.route.request_descriptor
        chain: list[FieldDescriptor] = []
        segments = name.split(".")
        for index, segment in enumerate(segments):
            field = _lookup(descriptor, segment)
            if field is None:
                raise bad_request(f"unknown query parameter {name!r}", field=name)
            chain.append(field)
            last = index == len(segments) - 1
            if last:
                if is_map(field) or not is_query_leaf(field):
                    raise bad_request(
                        f"query parameter {name!r} names a message; name one of its fields", field=name
                    )
            elif has_query_fields(field) and field.message_type is not None:
                descriptor = field.message_type
            else:
                raise bad_request(f"unknown query parameter {name!r}", field=name)
        names = tuple(field.name for field in chain)
        for bound in self._bound:
            if names[: len(bound)] == bound:
                raise bad_request(f"query parameter {name!r} is already bound by the path or the body", field=name)
        self._query_cache[name] = chain
        return chain


# A module's items and passages reach every student routed to that module unchanged, in each advance's reply: their
# JSON is made once per content, not once per student.
SHARED_CONTENT = ("toefl.item.v1.Item", "toefl.item.v1.Passage")
# Proto3 canonical JSON: lowerCamelCase, enums by name, int64 as strings, unpopulated fields included.
message_json = JsonPrinter(shared=SHARED_CONTENT).message_json


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; message_json has already made each value JSON's own (NaN as "NaN", int64 as strings)."""
    return orjson.dumps(value)


def response_json(route: Route, message: Message) -> Any:
    """The response as JSON, narrowed to `response_body` when the rule names one."""
    if not route.response_body:
        return message_json(message)
    field = route.response_descriptor.fields_by_name[route.response_body]
    if field.message_type is not None and not field.is_repeated:
        return message_json(getattr(message, field.name))
    return message_json(message)[field.json_name]


HTTP_BODY = "google.api.HttpBody"


def http_body_request(route: Route) -> bool:
    """Whether the RPC takes raw bytes: its body field (or, for body "*", its request) is an HttpBody, which the
    gateway fills with the request's bytes and Content-Type, as grpc-gateway does."""
    if not route.body:
        return False
    if route.body == "*":
        return route.request_descriptor.full_name == HTTP_BODY
    target = route.request_descriptor.fields_by_name[route.body].message_type
    return target is not None and target.full_name == HTTP_BODY


def http_body_request_field(route: Route) -> str:
    """The dotted name of the request's HttpBody body ("" for body "*"): what a service's BadRequest names."""
    return "" if route.body == "*" else route.body


def http_body_field(route: Route) -> bool:
    """Whether the RPC answers raw bytes: its response (or the field `response_body` names) is an HttpBody, which
    the gateway sends as the body in its own content type, as grpc-gateway does."""
    response = route.response_descriptor
    if route.response_body:
        field = response.fields_by_name[route.response_body]
        return field.message_type is not None and field.message_type.full_name == HTTP_BODY
    return response.full_name == HTTP_BODY


def http_body_of(route: Route, message: Message) -> tuple[str, bytes]:
    """(content type, bytes) of an HttpBody response (see http_body_field)."""
    body: Any = getattr(message, route.response_body) if route.response_body else message
    return str(body.content_type) or "application/octet-stream", bytes(body.data)
