"""What both scoring jobs share: settings, the service token, gRPC calls with retries, the state file, output."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from toefl.item.v1 import item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2_grpc
from tqdm import tqdm

from toefl_core.auth import ServiceToken
from toefl_core.channels import RECONNECT_OPTIONS
from toefl_core.config import env_str, load_common_settings

log = logging.getLogger(__name__)
R = TypeVar("R")

SUBJECT = "scoring_jobs"
DEFAULT_ITEM_SERVICE_ADDR = "127.0.0.1:50051"
DEFAULT_SESSION_SERVICE_ADDR = "127.0.0.1:50052"
# Worth another attempt (every call the jobs make is safe to repeat): the service is restarting, overloaded, the
# attempt ran out of time, or a concurrent write got in the way.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
# The job cannot go on at all: the token is refused, or the service lacks the RPC.
FATAL = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED}
)
ATTEMPT_TIMEOUT_SECONDS = 30.0
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 2.0
STATE_VERSION = 1


class JobError(Exception):
    """The job stopped; the message says why and what to do (exit status 1)."""


class ServiceDown(JobError):
    """A service stayed unreachable for the whole retry budget."""


class StateError(Exception):
    """The state file cannot be used for this run (a usage error)."""


@dataclass(frozen=True)
class JobSettings:
    item_service_addr: str
    session_service_addr: str
    token_key: str


def load_settings() -> JobSettings:
    """Raises toefl_core.config.ConfigError for an unsafe token key outside development."""
    return JobSettings(
        item_service_addr=env_str("ITEM_SERVICE_ADDR", DEFAULT_ITEM_SERVICE_ADDR),
        session_service_addr=env_str("SESSION_SERVICE_ADDR", DEFAULT_SESSION_SERVICE_ADDR),
        token_key=load_common_settings().token_key,
    )


class Services:
    """Channels to item_service and session_service, and a retrying call on either."""

    def __init__(self, settings: JobSettings, *, retry_seconds: float) -> None:
        self._item_channel = grpc.aio.insecure_channel(settings.item_service_addr, options=RECONNECT_OPTIONS)
        self._session_channel = grpc.aio.insecure_channel(settings.session_service_addr, options=RECONNECT_OPTIONS)
        self.items = item_service_pb2_grpc.ItemServiceStub(self._item_channel)
        self.scoring = scoring_service_pb2_grpc.ScoringServiceStub(self._session_channel)
        self.addresses = {
            "item_service": settings.item_service_addr,
            "session_service": settings.session_service_addr,
        }
        self.token = ServiceToken(settings.token_key, subject=SUBJECT)
        self.retry_seconds = retry_seconds

    async def close(self) -> None:
        await self._item_channel.close(None)
        await self._session_channel.close(None)

    def down(self, service: str, what: str, error: grpc.aio.AioRpcError) -> ServiceDown:
        return ServiceDown(
            f"{service} at {self.addresses[service]} is unavailable ({what}: {error.code().name} "
            f"{error.details() or ''}".rstrip()
            + f"); gave up after {self.retry_seconds:g} s"
        )

    async def call(
        self, service: str, what: str, attempt: Callable[[tuple[tuple[str, str], ...], float], Awaitable[R]]
    ) -> R:
        """`attempt(metadata, seconds)` until it succeeds, a non-retryable status, or the retry budget is spent.

        Raises ServiceDown when the budget runs out, JobError for a fatal status; other statuses are re-raised.
        """
        give_up = time.monotonic() + self.retry_seconds
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            remaining = give_up - time.monotonic()
            try:
                return await attempt(self.token.metadata(), max(0.5, min(ATTEMPT_TIMEOUT_SECONDS, remaining)))
            except grpc.aio.AioRpcError as error:
                if error.code() in FATAL:
                    raise JobError(
                        f"{service} at {self.addresses[service]} refused {what}: {error.code().name} "
                        f"{error.details() or ''}"
                    ) from error
                if error.code() not in RETRYABLE:
                    raise
                # Full jitter, so that concurrent calls waiting for a restarting service do not retry in step.
                pause = random.uniform(0, backoff)
                if time.monotonic() + pause >= give_up:
                    raise self.down(service, what, error) from error
                log.debug("%s: %s, retrying", what, error.code().name)
                await asyncio.sleep(pause)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)


class StateFile:
    """A job's checkpoint as JSON, replaced atomically: a crash leaves the old or the new one, never half."""

    def __init__(self, path: Path, *, job: str) -> None:
        self.path = path
        self.job = job

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none; StateError when the file is not this job's."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"--state-file {self.path}: {exc.strerror}") from exc
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise StateError(f"--state-file {self.path} is not JSON; delete it or name another file") from exc
        if not isinstance(state, dict) or state.get("job") != self.job or state.get("version") != STATE_VERSION:
            raise StateError(f"--state-file {self.path} is not a state file of the {self.job} job")
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w", encoding="utf-8") as handle:
            json.dump({**state, "job": self.job, "version": STATE_VERSION}, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.path)


def progress(description: str, *, unit: str, total: int | None = None) -> tqdm[Any]:
    """A progress bar on stderr (hidden when stderr is not a terminal, so logs stay readable)."""
    return tqdm(desc=description, unit=unit, total=total, file=sys.stderr, disable=None, dynamic_ncols=True)


def say(line: str) -> None:
    """A line of the job's report on stdout, without tearing a progress bar."""
    tqdm.write(line, file=sys.stdout)
    # Line by line even into a pipe, so that whoever watches the job sees each change as it happens.
    sys.stdout.flush()
