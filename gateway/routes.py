"""The route table: google.api.http rules read from service descriptors, path templates and request matching."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from gateway.errors import GatewayError

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")

# Specificity of one path segment: a literal beats a single-segment wildcard, which beats `**`.
_LITERAL, _SINGLE, _MULTI = 3, 2, 1
_LITERAL_RE = re.compile(r"[A-Za-z0-9._~!$&'()+,;=@%-]+")
_FIELD_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class RouteError(ValueError):
    """An http rule or path template the gateway cannot serve; raised at start-up, never per request."""


@dataclass(frozen=True)
class PathVariable:
    field_path: tuple[str, ...]
    group: str
    multi_segment: bool


@dataclass(frozen=True)
class PathTemplate:
    text: str
    regex: re.Pattern[str]
    variables: tuple[PathVariable, ...]
    verb: str
    specificity: tuple[int, ...]
    # The regex without capture groups: two templates with one shape match exactly the same paths.
    shape: str


def _split_top_level(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise RouteError("unbalanced '}'")
        elif char == sep and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0:
        raise RouteError("unbalanced '{'")
    parts.append(text[start:])
    return parts


def _segment_pattern(segment: str, scores: list[int]) -> str:
    if segment == "*":
        scores.append(_SINGLE)
        return "[^/]+"
    if segment == "**":
        scores.append(_MULTI)
        return ".*"
    if not _LITERAL_RE.fullmatch(segment):
        raise RouteError(f"invalid literal segment {segment!r}")
    scores.append(_LITERAL)
    return re.escape(segment)


def parse_template(text: str) -> PathTemplate:
    """Compile `/v1/{name=shelves/*}/books/{book_id}:verb` (google/api/http.proto's grammar) to a regex."""
    try:
        return _parse_template(text)
    except RouteError as exc:
        raise RouteError(f"path template {text!r}: {exc}") from exc


def _parse_template(text: str) -> PathTemplate:
    if not text.startswith("/"):
        raise RouteError("must start with '/'")
    path, verb = text[1:], ""
    # The verb is a ':' outside any variable in the last segment.
    last = _split_top_level(path, "/")[-1]
    tail = _split_top_level(last, ":")
    if len(tail) > 2:
        raise RouteError("more than one verb")
    if len(tail) == 2:
        verb = tail[1]
        if not _LITERAL_RE.fullmatch(verb):
            raise RouteError(f"invalid verb {verb!r}")
        path = path[: len(path) - len(verb) - 1]
    scores: list[int] = []
    variables: list[PathVariable] = []
    pieces: list[str] = []
    shapes: list[str] = []
    for segment in _split_top_level(path, "/"):
        if segment.startswith("{") and segment.endswith("}"):
            name, _, inner = segment[1:-1].partition("=")
            if not _FIELD_PATH_RE.fullmatch(name):
                raise RouteError(f"invalid field path {name!r}")
            inner_segments = (inner or "*").split("/")
            group = f"v{len(variables)}"
            pattern = "/".join(_segment_pattern(inner_segment, scores) for inner_segment in inner_segments)
            variables.append(PathVariable(tuple(name.split(".")), group, "**" in inner_segments))
            pieces.append(f"(?P<{group}>{pattern})")
            shapes.append(pattern)
        elif "{" in segment or "}" in segment:
            raise RouteError(f"a variable must be a whole segment: {segment!r}")
        else:
            pieces.append(_segment_pattern(segment, scores))
            shapes.append(pieces[-1])
    if not pieces or pieces == [""]:
        raise RouteError("empty path")
    suffix = f":{re.escape(verb)}" if verb else ""
    regex = "/" + "/".join(pieces) + suffix
    shape = "/" + "/".join(shapes) + suffix
    return PathTemplate(text, re.compile(regex), tuple(variables), verb, tuple(scores), shape)


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str
    template: PathTemplate
    body: str
    response_body: str
    method: MethodDescriptor
    backend: str
    public: bool
    operation_id: str
    request_class: type[Message] = field(repr=False)
    response_class: type[Message] = field(repr=False)

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def request_descriptor(self) -> Descriptor:
        return cast(Descriptor, self.request_class.DESCRIPTOR)

    @property
    def response_descriptor(self) -> Descriptor:
        return cast(Descriptor, self.response_class.DESCRIPTOR)

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)


def _rule_bindings(rule: http_pb2.HttpRule) -> Iterable[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        if extra.additional_bindings:
            raise RouteError("additional_bindings may not nest")
        yield extra


def _rule_method_and_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RouteError("http rule without a pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), getattr(rule, kind)


def resolve_field_path(descriptor: Descriptor, path: Sequence[str]) -> list[FieldDescriptor]:
    """The chain of fields a dotted proto path names; RouteError when any step is not a singular message."""
    chain: list[FieldDescriptor] = []
    current = descriptor
    for index, name in enumerate(path):
        found = current.fields_by_name.get(name)
        if found is None:
            raise RouteError(f"no field {'.'.join(path[: index + 1])!r}")
        chain.append(found)
        if index < len(path) - 1:
            if found.message_type is None or found.is_repeated:
                raise RouteError(f"{'.'.join(path[: index + 1])!r} is not a singular message field")
            current = found.message_type
    return chain


def _check_route(route: Route) -> None:
    request = route.request_descriptor
    for variable in route.template.variables:
        leaf = resolve_field_path(request, variable.field_path)[-1]
        if leaf.is_repeated or leaf.message_type is not None:
            raise RouteError(f"path variable {'.'.join(variable.field_path)!r} must name a singular scalar field")
    if route.body not in ("", "*"):
        resolve_field_path(request, [route.body])
    if route.response_body:
        resolve_field_path(route.response_descriptor, [route.response_body])
    if route.http_method in ("GET", "DELETE") and route.body:
        raise RouteError(f"{route.http_method} may not carry a body")


def build_routes(services: Iterable[tuple[str, ServiceDescriptor]], public_methods: frozenset[str]) -> list[Route]:
    """Every HTTP binding of every annotated unary or server-streaming RPC of the services, by backend name."""
    routes: list[Route] = []
    for backend, service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            if method.client_streaming:
                raise RouteError(f"{method.full_name}: client-streaming RPCs cannot be transcoded")
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            rule = options.Extensions[annotations_pb2.http]
            for index, binding in enumerate(_rule_bindings(rule)):
                try:
                    http_method, path = _rule_method_and_path(binding)
                    route = Route(
                        http_method=http_method,
                        template=parse_template(path),
                        body=binding.body,
                        response_body=binding.response_body or rule.response_body,
                        method=method,
                        backend=backend,
                        public=method.full_name in public_methods,
                        operation_id=f"{service.name}_{method.name}" + (f"_{index}" if index else ""),
                        request_class=request_class,
                        response_class=response_class,
                    )
                    _check_route(route)
                except RouteError as exc:
                    raise RouteError(f"{method.full_name}: {exc}") from exc
                routes.append(route)
    _check_duplicates(routes)
    return routes


def _check_duplicates(routes: Sequence[Route]) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for route in routes:
        key = (route.http_method, route.template.shape, route.template.verb)
        if key in seen:
            raise RouteError(f"{route.method.full_name} and {seen[key]} bind the same route {route.template.text}")
        seen[key] = route.method.full_name


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_params: dict[str, str]


class Router:
    """Matches a raw request path: custom verbs first, then the most specific template (literals win)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        ordered = sorted(routes, key=lambda route: route.template.specificity, reverse=True)
        self.routes = tuple(ordered)
        self._with_verb = tuple(route for route in ordered if route.template.verb)
        self._without_verb = tuple(route for route in ordered if not route.template.verb)

    def resolve(self, http_method: str, raw_path: str) -> RouteMatch:
        """The route and its decoded path variables; GatewayError 404, or 405 with an Allow header."""
        matches: list[tuple[Route, re.Match[str]]] = []
        if ":" in raw_path.rsplit("/", 1)[-1]:
            matches = self._scan(self._with_verb, raw_path)
        if not matches:
            matches = self._scan(self._without_verb, raw_path)
        if not matches:
            raise GatewayError(404, f"no route for {raw_path}")
        for route, found in matches:
            if route.http_method == http_method:
                params = {v.group: unquote(found.group(v.group)) for v in route.template.variables}
                return RouteMatch(route, params)
        allowed = ", ".join(sorted({route.http_method for route, _found in matches}))
        raise GatewayError(
            405, f"{http_method} is not allowed on {raw_path}; allowed: {allowed}", headers={"Allow": allowed}
        )

    @staticmethod
    def _scan(routes: Sequence[Route], raw_path: str) -> list[tuple[Route, re.Match[str]]]:
        found = []
        for route in routes:
            match = route.template.regex.fullmatch(raw_path)
            if match is not None:
                found.append((route, match))
        return found
