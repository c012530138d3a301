"""A grpc.aio backend implementing the test-only gwtest.v1.GatewayTest service and DatabaseOwnership."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from toefl.common.v1 import ownership_pb2

from toefl_core.errors import NotFound
from toefl_core.server import RunningServer, start_server, stop_server

SERVICE = "gwtest.v1.GatewayTest"
OWNERSHIP_SERVICE = "toefl.common.v1.DatabaseOwnership"


class GatewayTestBackend:
    """Answers every gwtest RPC by echoing what it received, so tests see exactly what the gateway sent."""

    def __init__(self, pb: ModuleType, *, name: str, owner: str, fingerprint: str) -> None:
        self.pb = pb
        self.report = ownership_pb2.DatabaseOwnershipReport(
            service=name,
            owner=owner,
            expected_owner=owner,
            fingerprint=fingerprint,
            backend="sqlite",
            database_name=f"{owner}.db",
        )
        self.running: RunningServer | None = None
        self.last_metadata: dict[str, str] = {}

    @property
    def address(self) -> str:
        assert self.running is not None
        return self.running.address

    async def start(self, port: int = 0) -> GatewayTestBackend:
        self.running = await start_server(
            address=f"127.0.0.1:{port}", register=self._register, service_names=[SERVICE, OWNERSHIP_SERVICE]
        )
        return self

    async def stop(self) -> None:
        if self.running is not None:
            await stop_server(self.running, grace=0.1)
            self.running = None

    def _register(self, server: grpc.aio.Server) -> None:
        pb = self.pb
        unary: dict[str, tuple[Callable[..., Any], Any, Any]] = {
            "GetThing": (self.get_thing, pb.GetThingRequest, pb.Thing),
            "GetByName": (self.get_by_name, pb.GetByNameRequest, pb.Thing),
            "GetFile": (self.get_file, pb.GetFileRequest, pb.Thing),
            "GetSpecial": (self.get_special, pb.GetThingRequest, pb.Thing),
            "BatchGetThings": (self.batch_get, pb.BatchGetThingsRequest, pb.BatchGetThingsResponse),
            "BatchGetByColor": (self.batch_get, pb.BatchGetThingsRequest, pb.BatchGetThingsResponse),
            "CreateThing": (self.create_thing, pb.CreateThingRequest, pb.Thing),
            "UpdateThing": (self.update_thing, pb.UpdateThingRequest, pb.Thing),
            "ActOnThing": (self.act, pb.ActRequest, pb.Thing),
            "DeleteThing": (self.get_thing, pb.GetThingRequest, pb.Thing),
            "ReplaceTags": (self.replace_tags, pb.ReplaceTagsRequest, pb.Thing),
            "GetThingName": (self.get_thing, pb.GetThingRequest, pb.Thing),
            "Echo": (self.echo, pb.EchoRequest, pb.EchoResponse),
            "Fail": (self.fail, pb.FailRequest, pb.Thing),
            "Login": (self.login, pb.LoginRequest, pb.LoginResponse),
            "Sleep": (self.sleep, pb.SleepRequest, pb.SleepResponse),
            "Hidden": (self.get_thing, pb.GetThingRequest, pb.Thing),
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                behavior, request_deserializer=request.FromString, response_serializer=response.SerializeToString
            )
            for name, (behavior, request, response) in unary.items()
        }
        handlers["StreamThings"] = grpc.unary_stream_rpc_method_handler(
            self.stream_things,
            request_deserializer=pb.StreamThingsRequest.FromString,
            response_serializer=pb.Thing.SerializeToString,
        )
        ownership = {
            "GetDatabaseOwnership": grpc.unary_unary_rpc_method_handler(
                self.ownership,
                request_deserializer=ownership_pb2.GetDatabaseOwnershipRequest.FromString,
                response_serializer=ownership_pb2.DatabaseOwnershipReport.SerializeToString,
            )
        }
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(SERVICE, handlers),
                grpc.method_handlers_generic_handler(OWNERSHIP_SERVICE, ownership),
            )
        )

    def _remember(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.last_metadata = {
            key: base64.b64encode(value).decode() if isinstance(value, bytes) else value
            for key, value in context.invocation_metadata() or ()
            if not key.startswith(("grpc-", ":")) and key not in ("user-agent", "content-type", "te")
        }

    async def get_thing(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self._remember(context)
        if request.thing_id == "missing":
            raise NotFound(f"no thing {request.thing_id!r}")
        if request.thing_id == "out-of-time":
            # Valid protobuf with no JSON form: the gateway's conversion fails, never the backend.
            return self.pb.Thing(thing_id=request.thing_id, create_time={"seconds": 2**62})
        await context.send_initial_metadata((("x-thing-header", "from-backend"),))
        context.set_trailing_metadata((("x-thing-trailer", "done"), ("x-raw-bin", b"\x00\x01")))
        return self.pb.Thing(
            thing_id=request.thing_id,
            name=f"name of {request.thing_id}",
            shelf=request.shelf,
            size=2**40,
            color=self.pb.COLOR_RED,
            tags=["a", "b"],
        )

    async def get_by_name(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.Thing(name=request.name)

    async def get_file(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.Thing(path=request.path)

    async def get_special(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.Thing(thing_id="special-literal")

    async def batch_get(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        things = [self.pb.Thing(thing_id=thing_id, color=request.color) for thing_id in request.thing_ids]
        return self.pb.BatchGetThingsResponse(things=things)

    async def create_thing(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        thing = self.pb.Thing()
        thing.CopyFrom(request.thing)
        thing.thing_id = request.request_id or "created"
        return thing

    async def update_thing(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        thing = self.pb.Thing()
        thing.CopyFrom(request.thing)
        thing.tags[:] = list(request.update_mask.paths)
        return thing

    async def act(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.Thing(thing_id=request.thing_id, name=request.action)

    async def replace_tags(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.Thing(thing_id=request.thing_id, tags=request.tags)

    async def echo(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self._remember(context)
        return self.pb.EchoResponse(request=request, metadata=self.last_metadata)

    async def fail(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if request.plain:
            code = next(code for code in grpc.StatusCode if code.value[0] == request.code)
            await context.abort(code, request.message)
        status = status_pb2.Status(code=request.code, message=request.message)
        if request.field:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=request.field, description=request.message
            )
            status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        if request.reason:
            info = error_details_pb2.ErrorInfo(reason=request.reason, domain="gwtest.example")
            status.details.add().Pack(info)
        if request.HasField("retry_delay"):
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=request.retry_delay))
        grpc_status = rpc_status.to_status(status)
        await context.abort(grpc_status.code, grpc_status.details, grpc_status.trailing_metadata)

    async def stream_things(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        for index in range(request.count):
            yield self.pb.Thing(thing_id=f"t{index}", size=index)
        if request.out_of_time:
            yield self.pb.Thing(thing_id="out-of-time", create_time={"seconds": 2**62})
        if request.report_deadline:
            left = context.time_remaining()
            yield self.pb.Thing(thing_id="deadline", size=-1 if left is None else round(left))
        if request.fail_code:
            status = rpc_status.to_status(status_pb2.Status(code=request.fail_code, message="stream broke"))
            await context.abort(status.code, status.details, status.trailing_metadata)

    async def login(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self._remember(context)
        return self.pb.LoginResponse(access_token=f"token-for-{request.username}")

    async def sleep(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await asyncio.sleep(request.seconds)
        return self.pb.SleepResponse(slept=request.seconds)

    async def ownership(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.report
