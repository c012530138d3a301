"""Staying signed in and signing in at nine o'clock: refresh tokens (rotation, reuse, sign-out, revocation), the
re-hash of old password hashes, throttling that fits a school behind one address, and refusal when busy.

The refresh tests take `pair`: two stubs, on one process here and on two processes sharing PostgreSQL in
test_postgres.py, so that a token issued by one process is spent, reused and revoked at the other."""

from __future__ import annotations

import functools
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.session_service.conftest import session_process
from tests.support.exam import PASSWORD, Stub, admin, expect_reason, new_user, refusal

ACCESS_TTL = 2
# The access token's life, short, so that a test outlives several of them.
SHORT_ACCESS = {"SESSION_ACCESS_TOKEN_TTL_SECONDS": str(ACCESS_TTL)}
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
SCHOOL = "198.51.100.7"


def stub_of(proc: ServiceProcess) -> Iterator[Stub]:
    with grpc.insecure_channel(proc.address) as channel:
        yield session_service_pb2_grpc.SessionServiceStub(channel)


@pytest.fixture(scope="module")
def proc(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    started = session_process(
        tmp_path_factory.mktemp("sign-in"), item_address=item_service_proc.address, env=SHORT_ACCESS
    ).start()
    yield started
    started.terminate()


@pytest.fixture(scope="module")
def stub(proc: ServiceProcess) -> Iterator[Stub]:
    yield from stub_of(proc)


@pytest.fixture(scope="module")
def pair(stub: Stub) -> tuple[Stub, Stub]:
    return stub, stub


def sign_in(stub: Stub, username: str, password: str = PASSWORD, *, address: str = "") -> pb.AuthenticateResponse:
    # The gateway says where a request came from in x-forwarded-for; without it, the peer's address counts.
    metadata = (("x-forwarded-for", address),) if address else ()
    reply: pb.AuthenticateResponse = stub.Authenticate(
        pb.AuthenticateRequest(username=username, password=password), metadata=metadata
    )
    return reply


def refresh(stub: Stub, token: str) -> pb.AuthenticateResponse:
    reply: pb.AuthenticateResponse = stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=token))
    return reply


def bearer(reply: pb.AuthenticateResponse) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {reply.access_token}"),)


def ended(stub: Stub, token: str) -> None:
    expect_reason(UNAUTHENTICATED, lambda: refresh(stub, token), "SIGN_IN_ENDED", "sign in again")


def test_a_refresh_spends_its_token_and_a_reuse_ends_the_whole_sign_in(pair: tuple[Stub, Stub]) -> None:
    first, second = pair
    user = new_user(first)
    signed = sign_in(first, user.username)
    assert signed.refresh_token and signed.refresh_expires_in > 0 and signed.expires_in == ACCESS_TTL
    renewed = refresh(second, signed.refresh_token)
    assert renewed.user_id == user.user_id and renewed.role == pb.ROLE_STUDENT
    assert renewed.refresh_token != signed.refresh_token and renewed.expires_in == ACCESS_TTL
    again = refresh(first, renewed.refresh_token)
    # The first token, spent twice over by now: stolen. Its whole sign-in ends, the thief's and the owner's.
    ended(second, signed.refresh_token)
    ended(first, again.refresh_token)
    # The password still signs in anew.
    assert refresh(second, sign_in(second, user.username).refresh_token).user_id == user.user_id


def test_a_retried_refresh_whose_reply_was_lost_gets_the_same_token(pair: tuple[Stub, Stub]) -> None:
    first, second = pair
    user = new_user(first)
    signed = sign_in(first, user.username)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda s: refresh(s, signed.refresh_token), (first, second)))
    # Sent twice at once (two processes), or again after a lost reply: one new token, the sign-in goes on.
    assert replies[0].refresh_token == replies[1].refresh_token
    assert refresh(second, replies[0].refresh_token).user_id == user.user_id


def test_a_sitting_outlives_several_access_tokens_without_the_password(pair: tuple[Stub, Stub]) -> None:
    first, second = pair
    user = new_user(first)
    reply = sign_in(first, user.username)
    for n in range(3):
        expiry = time.time() + reply.expires_in
        stub = pair[n % 2]
        assert (
            stub.GetUser(pb.GetUserRequest(user_id=user.user_id), metadata=bearer(reply)).username == user.username
        )
        while time.time() < expiry + 1:
            time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as lapsed:
            stub.GetUser(pb.GetUserRequest(user_id=user.user_id), metadata=bearer(reply))
        assert lapsed.value.code() == UNAUTHENTICATED
        reply = refresh(pair[(n + 1) % 2], reply.refresh_token)
    assert second.GetUser(pb.GetUserRequest(user_id=user.user_id), metadata=bearer(reply)).user_id == user.user_id


def test_sign_out_ends_the_sign_in_and_tells_nothing_of_unknown_tokens(pair: tuple[Stub, Stub]) -> None:
    first, second = pair
    user = new_user(first)
    signed = sign_in(first, user.username)
    other = sign_in(first, user.username)
    second.SignOut(pb.SignOutRequest(refresh_token=signed.refresh_token))
    ended(first, signed.refresh_token)
    # Another device's sign-in of the same account goes on.
    assert refresh(second, other.refresh_token).user_id == user.user_id
    first.SignOut(pb.SignOutRequest(refresh_token=signed.refresh_token))
    first.SignOut(pb.SignOutRequest(refresh_token=uuid.uuid4().hex))
    with pytest.raises(grpc.RpcError) as empty:
        first.SignOut(pb.SignOutRequest())
    refused = refusal(empty.value)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT and refused.fields == ("refresh_token",)


def test_an_admin_ends_every_sign_in_of_a_user(pair: tuple[Stub, Stub]) -> None:
    first, second = pair
    user, bystander = new_user(first), new_user(first)
    tokens = [sign_in(first, user.username).refresh_token, sign_in(second, user.username).refresh_token]
    kept = sign_in(first, bystander.username).refresh_token
    with pytest.raises(grpc.RpcError) as student:
        second.RevokeUserTokens(
            pb.RevokeUserTokensRequest(user_id=user.user_id), metadata=bearer(sign_in(first, user.username))
        )
    assert student.value.code() == grpc.StatusCode.PERMISSION_DENIED
    revoked = second.RevokeUserTokens(pb.RevokeUserTokensRequest(user_id=user.user_id), metadata=admin())
    assert revoked.sign_ins_revoked == 3
    for token in tokens:
        ended(first, token)
    assert refresh(second, kept).user_id == bystander.user_id
    with pytest.raises(grpc.RpcError) as unknown:
        first.RevokeUserTokens(pb.RevokeUserTokensRequest(user_id="usr-nobody"), metadata=admin())
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


# ---- throttling


def test_failures_counted_at_one_process_hold_at_the_other(pair: tuple[Stub, Stub]) -> None:
    owner = new_user(pair[0])
    for n in range(5):
        with pytest.raises(grpc.RpcError) as wrong:
            sign_in(pair[n % 2], owner.username, "a guessed password", address="203.0.113.99")
        assert wrong.value.code() == UNAUTHENTICATED
    for stub in pair:
        right = functools.partial(sign_in, stub, owner.username, address="203.0.113.99")
        expect_reason(EXHAUSTED, right, "SIGN_IN_THROTTLED")


def test_a_class_of_100_behind_one_address_gets_in_despite_typos(stub: Stub) -> None:
    students = [new_user(stub) for _ in range(100)]
    for student in students[:10]:
        for typo in range(2):
            with pytest.raises(grpc.RpcError) as wrong:
                sign_in(stub, student.username, f"{PASSWORD}{typo}", address=SCHOOL)
            assert wrong.value.code() == UNAUTHENTICATED
    for student in students:
        assert sign_in(stub, student.username, address=SCHOOL).user_id == student.user_id
    # Far beyond a class's typos (a script guessing there): the address is slowed, never locked, and the
    # accounts that signed in from it before are spared.
    for n in range(110):
        with pytest.raises(grpc.RpcError):
            sign_in(stub, f"nobody-{n}-{uuid.uuid4().hex[:6]}", "a wrong password", address=SCHOOL)
    newcomer = new_user(stub)
    refused = expect_reason(
        EXHAUSTED, lambda: sign_in(stub, newcomer.username, address=SCHOOL), "SIGN_IN_THROTTLED"
    )
    assert refused.retry_after is not None and 0 < refused.retry_after <= 60, refused
    assert sign_in(stub, students[-1].username, address=SCHOOL).user_id == students[-1].user_id
    assert sign_in(stub, newcomer.username, address="198.51.100.8").user_id == newcomer.user_id


def test_an_attacker_who_knows_a_username_does_not_lock_its_owner_out(stub: Stub) -> None:
    owner = new_user(stub)
    home = "192.0.2.44"
    sign_in(stub, owner.username, address=home)
    attackers = [f"203.0.113.{n}" for n in range(1, 7)]
    codes = []
    for address in attackers:
        for _ in range(6):
            try:
                sign_in(stub, owner.username, "a guessed password", address=address)
            except grpc.RpcError as error:
                codes.append(error.code())
    assert codes.count(EXHAUSTED) >= 6, codes
    # Even the right password waits at the attacker's addresses (else guessing would simply go on)...
    expect_reason(EXHAUSTED, lambda: sign_in(stub, owner.username, address=attackers[-1]), "SIGN_IN_THROTTLED")
    # ...while the owner, where they signed in before, gets in.
    assert sign_in(stub, owner.username, address=home).user_id == owner.user_id


# ---- password hashing


def stored_hash(database: Path, user_id: str) -> str:
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT password_hash FROM users WHERE user_id = ?", (user_id,)).fetchone()
    return str(row[0])


def test_a_hash_with_old_parameters_is_redone_at_sign_in(
    item_service_proc: ServiceProcess, tmp_path: Path
) -> None:
    old = session_process(tmp_path, item_address=item_service_proc.address).start()
    try:
        for stub in stub_of(old):
            user = new_user(stub)
    finally:
        old.terminate()
    database = tmp_path / "user_data.db"
    assert stored_hash(database, user.user_id).startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    stronger = {"SESSION_PASSWORD_MEMORY_KIB": "2048", "SESSION_PASSWORD_TIME_COST": "2"}
    new = session_process(tmp_path, item_address=item_service_proc.address, env=stronger).start()
    try:
        for stub in stub_of(new):
            assert sign_in(stub, user.username).user_id == user.user_id
            assert stored_hash(database, user.user_id).startswith("$argon2id$v=19$m=2048,t=2,p=1$")
            assert sign_in(stub, user.username).user_id == user.user_id
            with pytest.raises(grpc.RpcError):
                sign_in(stub, user.username, "not the password")
    finally:
        new.terminate()


def test_sign_ins_beyond_the_hashing_pool_are_refused_at_once(
    item_service_proc: ServiceProcess, tmp_path: Path
) -> None:
    busy = {
        "SESSION_HASH_WORKERS": "1",
        "SESSION_SIGN_IN_MAX_WAIT_SECONDS": "0",
        "SESSION_PASSWORD_MEMORY_KIB": "65536",
        "SESSION_PASSWORD_TIME_COST": "3",
    }
    proc = session_process(tmp_path, item_address=item_service_proc.address, env=busy).start()
    try:
        for stub in stub_of(proc):
            users = [new_user(stub) for _ in range(8)]
            futures = [
                stub.Authenticate.future(pb.AuthenticateRequest(username=u.username, password=PASSWORD))
                for u in users
            ]
            outcomes = []
            for future in futures:
                try:
                    future.result()
                    outcomes.append("ok")
                except grpc.RpcError as error:
                    found = refusal(error)
                    assert (found.code, found.reason) == (grpc.StatusCode.UNAVAILABLE, "SIGN_IN_BUSY"), found
                    assert found.retry_after is not None and found.retry_after >= 1, found
                    outcomes.append("busy")
            assert "ok" in outcomes and "busy" in outcomes, outcomes
    finally:
        proc.terminate()
