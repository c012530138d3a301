"""Proto3 canonical JSON out, the same value json_format.MessageToDict gives, from per-type plans compiled once."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

from toefl_core.lru import LRU

# json_format walks every field through generic dispatch on each call, which was a third of the gateway's own
# time per GetItem (see the benchmark note); a plan per message type does the dispatch once.
Converter = Callable[[Any], Any]
_PLAIN, _PRESENCE, _REPEATED, _MAP = range(4)
_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})
# Their JSON is a string json_format itself takes from ToJsonString().
_STRING_TYPES = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"})


def _well_known(message: Message) -> Any:
    # Timestamp, Duration, Struct, Any, wrappers...: rare enough to leave to json_format itself.
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _double(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _float(value: float) -> Any:
    special = _double(value)
    return special if isinstance(special, str) else type_checkers.ToShortestFloat(value)


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


class JsonPrinter:
    """message_json(message) == json_format.MessageToDict(message, always_print_fields_with_no_presence=True).

    A field of a type named in `shared` keeps its JSON by the message's bytes, up to `shared_limit` of each type,
    the one used least recently forgotten first: content that many replies carry unchanged is converted once.
    Those values are shared between replies, so no caller may change what message_json returns."""

    def __init__(self, shared: Iterable[str] = (), shared_limit: int = 1024) -> None:
        self._plans: dict[str, list[tuple[str, str, int, Converter]]] = {}
        # Per shared type, its messages' JSON by their bytes.
        self._kept: dict[str, LRU[bytes, Any]] = {name: LRU(shared_limit) for name in shared}

    def message_json(self, message: Message) -> Any:
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        plan = self._plans.get(descriptor.full_name)
        if plan is None:
            if descriptor.full_name.startswith("google.protobuf."):
                return _well_known(message)
            plan = self._compile(descriptor)
        out: dict[str, Any] = {}
        for name, json_name, mode, convert in plan:
            if mode == _PLAIN:
                out[json_name] = convert(getattr(message, name))
            elif mode == _PRESENCE:
                if message.HasField(name):
                    out[json_name] = convert(getattr(message, name))
            elif mode == _REPEATED:
                out[json_name] = [convert(value) for value in getattr(message, name)]
            else:
                out[json_name] = {_map_key(key): convert(value) for key, value in getattr(message, name).items()}
        return out

    def _compile(self, descriptor: Descriptor) -> list[tuple[str, str, int, Converter]]:
        plan = []
        for field in descriptor.fields:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                mode, value_field = _MAP, field.message_type.fields_by_name["value"]
            else:
                mode, value_field = (
                    _REPEATED if field.is_repeated else _PRESENCE if field.has_presence else _PLAIN,
                    field,
                )
            plan.append((field.name, field.json_name, mode, self._converter(value_field)))
        self._plans[descriptor.full_name] = plan
        return plan

    def _converter(self, field: FieldDescriptor) -> Converter:
        if field.message_type is not None:
            if field.message_type.full_name in _STRING_TYPES:
                return _to_json_string
            kept = self._kept.get(field.message_type.full_name)
            if kept is not None:
                return self._kept_converter(kept)
            return self.message_json
        if field.enum_type is not None:
            if field.enum_type.full_name == "google.protobuf.NullValue":
                return lambda _value: None
            names = {value.number: value.name for value in field.enum_type.values}
            return lambda value: names.get(value, value)
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _bytes
        if field.cpp_type in _INT64:
            return str
        if field.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
            return _double
        if field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
            return _float
        return _identity

    def _kept_converter(self, kept: LRU[bytes, Any]) -> Converter:
        def convert(message: Message) -> Any:
            key = message.SerializeToString()
            value = kept.get(key)
            if value is None:
                value = self.message_json(message)
                kept.put(key, value)
            return value

        return convert


def _to_json_string(message: Any) -> Any:
    return message.ToJsonString()


def _identity(value: Any) -> Any:
    return value
