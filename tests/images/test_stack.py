"""The images built with podman from a Debian base made by debootstrap, the compose stack run, and `make deploy`
recreating item_service alone while students answer: nothing acknowledged lost or stored twice.

Run by `make test-images` (and so by .ci/run); collected only when TOEFL_IMAGES_TEST=1 (conftest.py). Clients
talk to the gateway's port published on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from launcher.answers import answer_for
from launcher.procs import REPO_ROOT
from tests.faults.exactly_once import stored
from tests.images.podman import (
    PACKAGES,
    SERVICES,
    VOLUMES,
    Engine,
    Project,
    build_context,
    extra_ca_certs,
    free_loopback_port,
    missing_tools,
    run,
)
from tests.support.audio import SPEAKING_TASK_TYPES, WEBM_OPUS, spoken_answer
from tests.support.exam import (
    CLIENT_TIMEOUT,
    UNTIL_STOPPED,
    Attempt,
    Student,
    answer_stream,
    bearer,
    call,
    retry,
)
from toefl_core.auth import Role, mint_token

pytestmark = pytest.mark.timeout(900)

STUDENTS = 20
POSTGRES_IMAGE = "localhost/toefl-postgres:15"
BASE_REPO = "localhost/toefl-base"
SERVICE_IMAGES = tuple(f"toefl/{service}:latest" for service in SERVICES)
# What a client may see from what needs item_service while it is replaced: the gateway's 502/503, or 499 (gRPC
# CANCELLED, by google.rpc's HTTP mapping: a call cut by the old item_service's shutdown), each retried after.
REFUSALS = {499, 502, 503}
# And from a save, which needs session_service only: an answer, or one of those.
OUTAGE_STATUSES = {None, *REFUSALS}
Rows = dict[str, tuple[int, int]]


def say(line: str) -> None:
    print(f"images: {line}", flush=True)


@dataclass
class Built:
    engine: Engine
    context: Path
    base_image: str
    key: str
    build_variables: dict[str, str]
    figures: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    missing = missing_tools()
    if missing:
        message = f"{', '.join(missing)} missing: apt-get install {PACKAGES} (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's temporary folders: another pytest run on the machine may prune those while this one runs.
    podman = Engine(Path(tempfile.mkdtemp(prefix="toefl-podman-"))).start()
    before = podman.image_ids()
    existing = set(podman.podman("volume", "ls", "--quiet").split()) & set(VOLUMES)
    try:
        assert not existing, f"volumes {sorted(existing)} exist (a stack's data?): the test leaves them alone"
        yield podman
    finally:
        # Whatever a failed or interrupted round left: its containers, networks and (never pre-existing) volumes.
        ours = podman.podman("ps", "--all", "--quiet", "--filter", "name=^toefl-images-", check=False).split()
        if ours:
            podman.podman("rm", "--force", "--time", "5", *ours, check=False)
        networks = podman.podman("network", "ls", "--quiet", "--filter", "name=^toefl-images-", check=False)
        if networks.split():
            podman.podman("network", "rm", "--force", *networks.split(), check=False)
        if not existing:
            podman.podman("volume", "rm", "--force", *VOLUMES, check=False)
        for ref in (*SERVICE_IMAGES, POSTGRES_IMAGE):
            podman.podman("image", "rm", "--force", ref, check=False)
        # Every other image this run made (the build stages'), never one that was there before; the Debian base
        # stays, cached for the next run.
        bases = set(podman.podman("images", "--quiet", "--no-trunc", "--filter", f"reference={BASE_REPO}").split())
        leftovers = sorted(podman.image_ids() - before - bases)
        if leftovers:
            podman.podman("image", "rm", "--force", *leftovers, check=False)
        podman.stop()
        shutil.rmtree(podman.state, ignore_errors=True)


@pytest.fixture(scope="module")
def built(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The Debian base (cached), the three service images through compose, the PostgreSQL image; sizes."""
    started = time.monotonic()
    base = run([str(REPO_ROOT / "deploy/base/make-base.sh")], engine.env, timeout=600).stdout.strip()
    base_seconds = time.monotonic() - started
    context = build_context(tmp_path_factory.mktemp("context"))
    key = secrets.token_hex(24)
    variables = {"BASE_IMAGE": base, "EXTRA_CA_CERTS": extra_ca_certs(), "TOEFL_TOKEN_KEY": key}
    result = Built(engine, context, base, key, variables)
    project = Project(engine, context, "toefl-images-build", variables)
    mark = time.monotonic()
    # The PostgreSQL image alongside the service images: both wait mostly on downloads and unpacking.
    postgres = subprocess.Popen(
        ["podman", "build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "--tag", POSTGRES_IMAGE, "."],
        env=engine.env,
        cwd=REPO_ROOT / "deploy/postgres",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        project.compose("build", timeout=900)
        build_seconds = time.monotonic() - mark
        output, _ = postgres.communicate(timeout=600)
    finally:
        if postgres.poll() is None:
            postgres.kill()
            postgres.wait()
    assert postgres.returncode == 0, output
    postgres_seconds = time.monotonic() - mark
    sizes = {ref: engine.image_size(ref) for ref in (base, *SERVICE_IMAGES, POSTGRES_IMAGE)}
    result.figures = {"base_s": base_seconds, "build_s": build_seconds, "postgres_build_s": postgres_seconds}
    say(
        f"base {base} in {base_seconds:.0f} s; service images in {build_seconds:.0f} s; "
        f"PostgreSQL image (built alongside) done after {postgres_seconds:.0f} s"
    )
    for ref, size in sizes.items():
        say(f"size {ref}: {size / 1e6:.0f} MB")
    return result


def test_service_images_are_slim_non_root_without_compilers_or_the_extra_ca(built: Built) -> None:
    engine = built.engine
    # The first full line of each extra certificate's body: searched for in the files where pip, a build step or
    # a careless COPY would have left it.
    pem = built.build_variables["EXTRA_CA_CERTS"].split("-----BEGIN CERTIFICATE-----")[1:]
    markers = [next(line for line in cert.splitlines() if len(line) == 64) for cert in pem]
    search = " ".join(f"-e '{marker}'" for marker in markers)
    script = "command -v gcc cc c++ clang make || true; " + (
        f"grep -rlsF {search} /venv /app /etc /usr/local /root /tmp || true" if markers else ""
    )
    for ref in SERVICE_IMAGES:
        assert engine.podman("image", "inspect", "--format", "{{.Config.User}}", ref) == "10001"
        history = engine.podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref)
        assert "BEGIN CERTIFICATE" not in history and "EXTRA_CA_CERTS" not in history
        found = engine.podman("run", "--rm", "--user", "0", "--entrypoint", "sh", ref, "-c", script, timeout=300)
        assert found == "", f"{ref}: compilers or the extra CA certificate found: {found}"


# --- the exam through the published gateway port ------------------------------------------------------------


async def sign_in_students(base: str, key: str, count: int) -> list[Student]:
    """Students created by an admin, each signed in with its password and in a Reading section of its own."""
    admin = mint_token(key, subject="usr-images-admin", role=Role.ADMIN)
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:

        async def one() -> Student:
            async with gate:
                username, password = f"images-{uuid.uuid4().hex[:12]}", secrets.token_hex(12)
                body = {"username": username, "role": "ROLE_STUDENT", "password": password}
                status, user = await call(http, "POST", f"{base}/api/users", admin, body)
                assert status == 200, user
                signin = {"username": username, "password": password}
                async with http.post(f"{base}/api/auth/token", json=signin) as reply:
                    assert reply.status == 200, await reply.text()
                    access = (await reply.json())["accessToken"]
                start = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_READING"}
                status, session = await call(
                    http, "POST", f"{base}/api/sessions", access, {**start, "requestId": uuid.uuid4().hex}
                )
                assert status == 200, session
            items = session["currentModule"]["items"]
            answers = tuple((item["itemId"], answer_for(item)) for item in items)
            return Student(user["userId"], access, session["sessionId"], answers)

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def upload_a_recording(base: str, key: str) -> dict[str, Any]:
    """A Speaking answer's recording uploaded by a new student: decoded by session_service's decoder process,
    spawned inside its image as its non-root user."""
    admin = mint_token(key, subject="usr-images-admin", role=Role.ADMIN)
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        body = {
            "username": f"images-{uuid.uuid4().hex[:12]}",
            "role": "ROLE_STUDENT",
            "password": secrets.token_hex(12),
        }
        status, user = await call(http, "POST", f"{base}/api/users", admin, body)
        assert status == 200, user
        student = mint_token(key, subject=user["userId"], role=Role.STUDENT)
        start = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_SPEAKING", "requestId": uuid.uuid4().hex}
        status, session = await call(http, "POST", f"{base}/api/sessions", student, start)
        assert status == 200, session
        item = next(i for i in session["currentModule"]["items"] if i["taskType"] in SPEAKING_TASK_TYPES)
        content_type, data = spoken_answer(WEBM_OPUS)
        url = (
            f"{base}/api/sessions/{session['sessionId']}/recordings/{item['itemId']}?requestId={uuid.uuid4().hex}"
        )
        headers = {**bearer(student), "Content-Type": content_type}
        async with http.post(url, data=data, headers=headers) as reply:
            assert reply.status == 200, await reply.text()
            recording: dict[str, Any] = await reply.json()
    assert int(recording["byteSize"]) == len(data) and int(recording["durationMs"]) > 0, recording
    return recording


async def until_ready(base: str, within: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        while True:
            try:
                async with http.get(f"{base}/readyz") as reply:
                    body: dict[str, Any] = await reply.json(content_type=None)
                    if reply.status == 200 and body.get("status") == "ready":
                        return body
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
                body = {"error": repr(exc)}
            assert time.monotonic() < deadline, f"/readyz not ready after {within} s: {body}"
            await asyncio.sleep(0.5)


async def get_status(base: str, path: str, access: str) -> int:
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        status, _ = await call(http, "GET", f"{base}{path}", access)
        return status


def add_active_item(context: Path, external_id: str) -> str:
    """A new active item in the build context's bank (a copy of an active complete-the-words item); its id."""
    bank = context / "item_service/item_bank.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{bank}"}
    export = context / f"{external_id}.export.jsonl"
    python = str(REPO_ROOT / ".venv/bin/python")
    run([python, "-m", "item_service", "export", "--out", str(export)], env, cwd=context, timeout=120)
    for line in export.read_text().splitlines():
        record = json.loads(line).get("item")
        if record and record["status"] == "ITEM_STATUS_ACTIVE" and not record.get("passageId"):
            break
    else:
        raise AssertionError("no active item without a passage in the bank")
    for generated in ("itemId", "revision", "etag", "createTime", "updateTime", "provenance"):
        record.pop(generated, None)
    record.update(externalId=external_id, demo=False)
    new = context / f"{external_id}.jsonl"
    new.write_text(json.dumps({"item": record}) + "\n")
    run([python, "-m", "item_service", "import", str(new)], env, cwd=context, timeout=120)
    export.unlink()
    new.unlink()
    conn = sqlite3.connect(f"file:{bank}?mode=ro", uri=True)
    try:
        query = "SELECT item_id FROM test_items WHERE external_id = ?"
        (item_id,) = conn.execute(query, (external_id,)).fetchone()
    finally:
        conn.close()
    return str(item_id)


def check_exactly_once(attempts: list[Attempt], held: Rows) -> dict[str, int]:
    acknowledged = [a for a in attempts if a.acknowledged]
    missing = [a.request_id for a in acknowledged if a.request_id not in held]
    duplicated = sorted(rid for rid, (count, _) in held.items() if count != 1)
    assert missing == [], f"{len(missing)} acknowledged answers are not stored"
    assert duplicated == [], f"request ids stored more than once: {duplicated[:5]}"
    wrong = [a.request_id for a in acknowledged if held[a.request_id][1] != int(a.reply["response"]["revision"])]
    assert wrong == [], f"stored at another revision than acknowledged: {wrong[:5]}"
    return {"acknowledged": len(acknowledged), "lost": len(missing), "duplicated": len(duplicated)}


@dataclass
class Round:
    """One stack started from the built images, under the backend `reader` reads responses from."""

    project: Project
    reader: Callable[[], Rows]
    label: str
    watched: tuple[str, ...] = SERVICES


@dataclass
class Probe:
    """What one student, not answering, sees of item_service during the deploy: item reads and one advance."""

    reads: list[tuple[float, int]] = field(default_factory=list)
    advance_during: int | None = None
    advance_after: int | None = None
    stage: str = ""

    @property
    def refused(self) -> list[tuple[float, int]]:
        return [(at, status) for at, status in self.reads if status != 200]


async def probe_item_service(
    base: str, router: Student, staff_token: str, stop: asyncio.Event, probe: Probe
) -> None:
    """GET an item every 0.2 s as staff (students read items only through their module) until `stop`; at the
    first refusal, the student advances the module (needs item_service).

    Then the same advance, same request id, until it succeeds: a client's retry after a 503.
    """
    item_url = f"{base}/api/items/{router.answers[0][0]}"
    advance_url = f"{base}/api/sessions/{router.session_id}:advance"
    advance = {"requestId": uuid.uuid4().hex}
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        while not stop.is_set():
            status, _ = await call(http, "GET", item_url, staff_token)
            probe.reads.append((time.monotonic(), status))
            if status != 200 and probe.advance_during is None:
                probe.advance_during, _ = await call(http, "POST", advance_url, router.token, advance)
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + 60
        while True:
            status, body = await call(http, "POST", advance_url, router.token, advance)
            if status == 200:
                probe.advance_after, probe.stage = status, body["currentModule"]["stage"]
                return
            assert time.monotonic() < deadline, f"advance retried for 60 s: {status} {body}"
            await asyncio.sleep(0.5)


def deploy_round(built: Built, stack: Round, port: int) -> dict[str, Any]:
    project, engine = stack.project, built.engine
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {"healthy_after_up_s": project.wait_healthy(stack.watched)}
    ready = asyncio.run(until_ready(base))
    # How long session_service took to reach item_service at start (a container network's name look-ups can
    # take seconds): the first students' starts wait for it when it is not done.
    figures["session_item_connect"] = project.log_lines("the item service at", "session_service")
    router, *students = asyncio.run(sign_in_students(base, built.key, STUDENTS + 1))
    figures["recording_duration_ms"] = int(asyncio.run(upload_a_recording(base, built.key))["durationMs"])
    admin = mint_token(built.key, subject="usr-images-admin", role=Role.ADMIN)
    teacher = mint_token(built.key, subject="usr-images-teacher", role=Role.TEACHER)

    # Some answers before the deploy: they must still be there, at their revisions, after it.
    first: list[Attempt] = asyncio.run(answer_stream(lambda: base, students, 2, asyncio.Event()))
    assert all(a.acknowledged for a in first), {a.status for a in first}
    before_rows = stack.reader()
    volumes_before = {v: engine.podman("volume", "inspect", "--format", "{{.CreatedAt}}", v) for v in VOLUMES}

    new_item = add_active_item(built.context, f"images-deploy-{stack.label}-{uuid.uuid4().hex[:8]}")
    assert asyncio.run(get_status(base, f"/api/items/{new_item}", admin)) == 404
    ids_before = {service: project.container_id(service) for service in stack.watched}

    probe = Probe()

    async def answer_through_the_deploy() -> tuple[list[Attempt], float, float, float]:
        stop = asyncio.Event()
        stream = asyncio.create_task(answer_stream(lambda: base, students, UNTIL_STOPPED, stop))
        probing = asyncio.create_task(probe_item_service(base, router, teacher, stop, probe))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        deploy = await asyncio.to_thread(
            run,
            ["make", "--no-print-directory", "deploy", f"COMPOSE={' '.join(project.compose_command)}"],
            project.env,
            cwd=built.context,
            timeout=600,
            check=False,
        )
        made = time.monotonic()
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        await asyncio.to_thread(project.wait_healthy, ["item_service"])
        await until_ready(base)
        healthy = time.monotonic()
        # A new item_service serves the new bank; answering has gone on all along.
        deadline = time.monotonic() + 60
        while (status := await get_status(base, f"/api/items/{new_item}", admin)) != 200:
            assert time.monotonic() < deadline, f"the new item is {status} after the deploy"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        stop.set()
        await probing
        return await stream, started, made, healthy

    attempts, started, made, healthy = asyncio.run(answer_through_the_deploy())
    ids_after = {service: project.container_id(service) for service in stack.watched}
    recreated = sorted(service for service in stack.watched if ids_after[service] != ids_before[service])
    assert recreated == ["item_service"], f"recreated: {recreated}"

    unacknowledged = [a for a in attempts if not a.acknowledged]
    statuses = Counter(a.status for a in unacknowledged)
    assert set(statuses) <= OUTAGE_STATUSES, statuses
    counts = check_exactly_once(attempts, stack.reader())
    asyncio.run(retry(base, unacknowledged))
    assert [a.status for a in unacknowledged if not a.acknowledged] == []
    after_rows = stack.reader()
    after = check_exactly_once(attempts, after_rows)
    assert after["acknowledged"] == len(attempts)

    # The student data of before the deploy: every row still there, at its revision; the volumes the same.
    changed = [rid for rid, row in before_rows.items() if after_rows.get(rid) != row]
    assert changed == [], f"rows of before the deploy changed or gone: {changed[:5]}"
    assert volumes_before == {
        v: engine.podman("volume", "inspect", "--format", "{{.CreatedAt}}", v) for v in VOLUMES
    }
    for student in students:
        assert asyncio.run(get_status(base, f"/api/sessions/{student.session_id}", student.token)) == 200

    during = [a for a in attempts if a.acknowledged and started <= a.finished <= healthy]
    # item_service was down for a while, and said so: 503 (502, 499), never a 500 or a broken connection.
    refused = probe.refused
    assert refused, "no read of an item was refused: was item_service replaced at all?"
    assert {status for _, status in refused} <= REFUSALS, Counter(status for _, status in refused)
    assert probe.advance_during in (200, 503), probe.advance_during
    assert probe.advance_after == 200 and probe.stage in ("MODULE_STAGE_LOWER", "MODULE_STAGE_UPPER"), probe
    figures.update(
        backend=ready["backends"]["session_service"]["backend"],
        students=STUDENTS,
        make_deploy_s=made - started,
        deploy_until_healthy_s=healthy - started,
        acknowledged=counts["acknowledged"],
        acknowledged_during_deploy=len(during),
        unacknowledged=len(unacknowledged),
        unacknowledged_statuses={str(status): n for status, n in statuses.items()},
        retried_ok=len(unacknowledged),
        lost=after["lost"],
        duplicated=after["duplicated"],
        rows_before_deploy=len(before_rows),
        recreated=recreated,
        unchanged=sorted(set(stack.watched) - set(recreated)),
        new_item=new_item,
        item_reads_refused=len(refused),
        item_reads_refused_statuses={str(k): v for k, v in Counter(status for _, status in refused).items()},
        item_refusals_span_s=refused[-1][0] - refused[0][0],
        first_refusal_after_deploy_start_s=refused[0][0] - started,
        last_refusal_after_item_service_healthy_s=refused[-1][0] - healthy,
        advance_during_outage=probe.advance_during,
        advance_retried_same_request_id=probe.advance_after,
    )
    say(f"{stack.label}: {json.dumps(figures, sort_keys=True)}")
    return figures


def _stack(built: Built, label: str, extra: dict[str, str], profiles: tuple[str, ...]) -> tuple[Project, int]:
    port = free_loopback_port()
    variables = {**built.build_variables, "GATEWAY_PORT": f"127.0.0.1:{port}", **extra}
    return Project(built.engine, built.context, f"toefl-images-{label}", variables, profiles), port


def _up(project: Project, *services: str) -> None:
    started = time.monotonic()
    project.compose("up", "-d", "--no-build", *services, timeout=300)
    say(f"{project.name}: up {' '.join(services) or 'all'} in {time.monotonic() - started:.0f} s")


def test_sqlite_stack_and_deploy_mid_exam(built: Built) -> None:
    project, port = _stack(built, "sqlite", {}, ())
    try:
        _up(project)

        def rows() -> Rows:
            mount = built.engine.podman("volume", "inspect", "--format", "{{.Mountpoint}}", "toefl_db_data")
            return stored(Path(mount) / "user_data.db")

        deploy_round(built, Round(project, rows, "sqlite"), port)
    except BaseException:
        say(project.explain_failure(SERVICES))
        raise
    finally:
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300, check=False)


def test_postgres_profile_and_deploy_mid_exam(built: Built) -> None:
    password = secrets.token_hex(16)
    extra = {
        "POSTGRES_IMAGE": POSTGRES_IMAGE,
        "POSTGRES_PASSWORD": password,
        "USER_DATABASE_URL": f"postgresql+psycopg://toefl:{password}@postgres:5432/toefl_users",
    }
    project, port = _stack(built, "postgres", extra, ("postgres",))
    try:
        # PostgreSQL first: session_service migrates its schema at start and depends on item_service only.
        _up(project, "postgres")
        project.wait_healthy(["postgres"])
        _up(project)

        def rows() -> Rows:
            out = run(
                [
                    "podman",
                    "exec",
                    project.container_id("postgres"),
                    "psql",
                    "-U",
                    "toefl",
                    "-d",
                    "toefl_users",
                    "-At",
                    "-F",
                    ",",
                    "-c",
                    "SELECT request_id, revision FROM responses",
                ],
                built.engine.env,
                timeout=60,
            ).stdout.split()
            pairs = [line.split(",") for line in out]
            counts = Counter(rid for rid, _ in pairs)
            return {rid: (counts[rid], int(revision)) for rid, revision in pairs}

        figures = deploy_round(built, Round(project, rows, "postgres", (*SERVICES, "postgres")), port)
        assert figures["backend"] == "postgresql", figures["backend"]
    except BaseException:
        say(project.explain_failure(SERVICES))
        raise
    finally:
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300, check=False)


def test_nothing_left_running(built: Built) -> None:
    """After both stacks are down: no container of this test (its images go when the module's engine stops)."""
    names = built.engine.podman("ps", "--all", "--format", "{{.Names}}").split()
    assert [name for name in names if name.startswith("toefl-images")] == []
