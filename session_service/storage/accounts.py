"""Storage of accounts and classes: users, credentials, classes and their students (ORM sessions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from session_service.storage.engine import Database
from session_service.storage.models import Enrolment, SchoolClass, User
from toefl_core.errors import AlreadyExists, FailedPrecondition, NotFound


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    username: str
    display_name: str
    role: str
    create_ms: int
    erased: bool


@dataclass(frozen=True)
class ClassRecord:
    class_id: str
    name: str
    teacher_id: str
    student_ids: tuple[str, ...]


def _user(row: User | Row[*tuple[Any, ...]]) -> UserRecord:
    return UserRecord(
        user_id=row.user_id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        create_ms=row.create_ms,
        erased=row.erased,
    )


def create_user(
    db: Database,
    *,
    user_id: str,
    username: str,
    display_name: str,
    role: str,
    password_hash: str,
    now_ms: int,
    class_id: str | None = None,
) -> UserRecord:
    try:
        with db.writing() as s:
            if class_id and s.get(SchoolClass, class_id) is None:
                raise NotFound(f"class {class_id} not found")
            row = User(
                user_id=user_id,
                username=username,
                display_name=display_name,
                role=role,
                password_hash=password_hash,
                create_ms=now_ms,
                erased=False,
            )
            s.add(row)
            s.flush()
            if class_id:
                s.add(Enrolment(class_id=class_id, student_id=user_id))
            return _user(row)
    except IntegrityError as exc:
        raise AlreadyExists(f"the username {username!r} is taken") from exc


# One statement on the Core connection, not the ORM's get in a transaction: a session's start reads its student
# on the event loop, and a class starts together (half the time of the ORM's read).
# The columns _user reads, in its order.
_USER_COLUMNS = (User.user_id, User.username, User.display_name, User.role, User.create_ms, User.erased)
_USER = select(*_USER_COLUMNS).where(User.user_id == bindparam("user_id"))


def get_user(db: Database, *, user_id: str) -> UserRecord | None:
    with db.read_statement() as conn:
        row = conn.execute(_USER, {"user_id": user_id}).first()
    return _user(row) if row is not None else None


# A sign-in's read of the account, on the event loop: built once, as a class signing in at nine o'clock runs it for
# each student (building it per call, through the ORM, was about a sixteenth of the event loop in a start rush).
_CREDENTIALS = select(*_USER_COLUMNS, User.password_hash).where(
    User.username == bindparam("username"), User.erased.is_(False)
)


def get_credentials(db: Database, *, username: str) -> tuple[UserRecord, str] | None:
    with db.read_statement() as conn:
        row = conn.execute(_CREDENTIALS, {"username": username}).first()
    return (_user(row), row.password_hash) if row is not None else None


def set_password(db: Database, *, user_id: str, password_hash: str) -> None:
    with db.writing() as s:
        s.execute(update(User).where(User.user_id == user_id).values(password_hash=password_hash))


def _class_records(s: Session, rows: Sequence[SchoolClass]) -> list[ClassRecord]:
    ids = [r.class_id for r in rows]
    members: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        enrolled = s.execute(
            select(Enrolment.class_id, Enrolment.student_id)
            .where(Enrolment.class_id.in_(ids))
            .order_by(Enrolment.student_id)
        )
        for class_id, student_id in enrolled:
            members[class_id].append(student_id)
    return [
        ClassRecord(
            class_id=r.class_id, name=r.name, teacher_id=r.teacher_id, student_ids=tuple(members[r.class_id])
        )
        for r in rows
    ]


def create_class(db: Database, *, class_id: str, name: str, teacher_id: str, now_ms: int) -> ClassRecord:
    with db.writing() as s:
        teacher = s.get(User, teacher_id)
        if teacher is None or teacher.role != "teacher" or teacher.erased:
            raise FailedPrecondition(
                f"user {teacher_id} is not a teacher", reason="WRONG_ROLE", metadata={"expected_role": "teacher"}
            )
        row = SchoolClass(class_id=class_id, name=name, teacher_id=teacher_id, create_ms=now_ms)
        s.add(row)
        s.flush()
        return _class_records(s, [row])[0]


def get_class(db: Database, *, class_id: str) -> ClassRecord | None:
    with db.reading() as s:
        row = s.get(SchoolClass, class_id)
        return _class_records(s, [row])[0] if row is not None else None


def find_class(db: Database, *, teacher_id: str, name: str) -> ClassRecord | None:
    with db.reading() as s:
        row = s.scalars(
            select(SchoolClass).where(SchoolClass.teacher_id == teacher_id, SchoolClass.name == name)
        ).first()
        return _class_records(s, [row])[0] if row is not None else None


def enrol(db: Database, *, class_id: str, student_id: str) -> None:
    with db.writing() as s:
        student = s.get(User, student_id)
        if student is None or student.role != "student":
            raise FailedPrecondition(
                f"user {student_id} is not a student", reason="WRONG_ROLE", metadata={"expected_role": "student"}
            )
        if s.get(Enrolment, (class_id, student_id)) is None:
            s.add(Enrolment(class_id=class_id, student_id=student_id))


def list_classes(db: Database, *, teacher_id: str | None, after_class_id: str, limit: int) -> list[ClassRecord]:
    with db.reading() as s:
        query = select(SchoolClass).where(SchoolClass.class_id > after_class_id)
        if teacher_id is not None:
            query = query.where(SchoolClass.teacher_id == teacher_id)
        rows = s.scalars(query.order_by(SchoolClass.class_id).limit(limit)).all()
        return _class_records(s, rows)


def teaches(db: Database, *, teacher_id: str, student_id: str) -> bool:
    with db.reading() as s:
        found = s.execute(
            select(Enrolment.student_id)
            .join(SchoolClass, SchoolClass.class_id == Enrolment.class_id)
            .where(SchoolClass.teacher_id == teacher_id, Enrolment.student_id == student_id)
            .limit(1)
        ).first()
        return found is not None


def teacher_student_ids(db: Database, *, teacher_id: str) -> list[str]:
    with db.reading() as s:
        return list(
            s.scalars(
                select(Enrolment.student_id)
                .join(SchoolClass, SchoolClass.class_id == Enrolment.class_id)
                .where(SchoolClass.teacher_id == teacher_id)
                .distinct()
            ).all()
        )


def class_teacher(db: Database, *, class_id: str) -> tuple[str, str] | None:
    """(teacher id, class name)."""
    with db.reading() as s:
        row = s.get(SchoolClass, class_id)
        return (row.teacher_id, row.name) if row is not None else None
