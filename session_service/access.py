"""Who may read or act on what in the student data: one policy for the session and the scoring servicers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from toefl_core.auth import Principal, Role, TokenCache, require_role
from toefl_core.errors import InvalidArgument, PermissionDenied

# What a session's student does in it; a proctor (an admin) may also "control" it (advance, finish).
READ, ANSWER, CONTROL = "read", "answer", "control"
JOB_ROLES = (Role.SERVICE, Role.ADMIN)
RATER_ROLES = (Role.RATER, Role.ADMIN)
# Most characters a client-chosen request id may have.
MAX_REQUEST_ID = 100


def check_session_id(session_id: str) -> None:
    if not session_id:
        raise InvalidArgument("session_id is required", field="session_id")


def check_request_id(request_id: str, *, required: bool) -> None:
    if required and not request_id:
        raise InvalidArgument("request_id is required, so that a retry never writes twice", field="request_id")
    if len(request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")


class AccessPolicy:
    """The caller's identity (from its bearer token) and what it may reach.

    `teaches(teacher_id, student_id)` answers whether a student is in one of the teacher's classes; it is the one
    relation the policy needs from the student data.
    """

    def __init__(self, *, token_key: str, teaches: Callable[[str, str], Awaitable[bool]]) -> None:
        self._tokens = TokenCache(token_key)
        self._teaches = teaches

    def principal(self, metadata: Any, roles: Sequence[Role] | None = None, action: str = "") -> Principal:
        """The authenticated caller; with `roles`, refused unless it holds one of them."""
        principal = self._tokens.authenticate(metadata)
        if roles is not None:
            require_role(principal, roles, action)
        return principal

    async def may_read_student(
        self, principal: Principal, student_id: str, *, what: str = "student data", services: bool = True
    ) -> None:
        """A student reads their own data, a teacher their classes' students', an admin anyone's, and so does a
        service (a scoring job) unless `services` is False."""
        if principal.role == Role.ADMIN or (services and principal.role == Role.SERVICE):
            return
        if principal.role == Role.STUDENT:
            if principal.subject == student_id:
                return
            raise PermissionDenied(f"a student may only reach their own {what}")
        if principal.role == Role.TEACHER:
            if await self._teaches(principal.subject, student_id):
                return
            raise PermissionDenied("this student is not in one of your classes")
        raise PermissionDenied(f"the {principal.role.value} role has no access to {what}")

    async def may_act_in_session(self, principal: Principal, student_id: str, *, action: str) -> None:
        """`action` READ (as may_read_student), ANSWER (the student taking the session only) or CONTROL (also an
        admin, as a proctor)."""
        if action == READ:
            await self.may_read_student(principal, student_id)
            return
        owner = principal.role == Role.STUDENT and principal.subject == student_id
        proctor = action == CONTROL and principal.role == Role.ADMIN
        if principal.role == Role.STUDENT and not owner:
            raise PermissionDenied("a student may only take their own sessions")
        if not (owner or proctor):
            raise PermissionDenied(f"only the student taking the session may {action} in it")

    async def may_hear_recording(
        self, principal: Principal, student_id: str, *, rater_has_task: Callable[[], Awaitable[bool]]
    ) -> bool:
        """A recording is heard by its student, a teacher of theirs, an admin, and a rater with a rating task of
        the answer naming it (open, or rated by them); nobody else, services included (no job listens)."""
        if principal.role == Role.RATER:
            return await rater_has_task()
        if principal.role == Role.SERVICE:
            return False
        try:
            await self.may_read_student(principal, student_id, what="recordings", services=False)
        except PermissionDenied:
            return False
        return True

    @staticmethod
    def sees_score_detail(principal: Principal) -> bool:
        """Theta, standard errors and points per task type are for staff (a teacher of the student, an admin): in a
        student's hands, read after sessions of one or two answers each, they would give away the item keys."""
        return principal.role != Role.STUDENT

    @staticmethod
    def may_read_class(principal: Principal, teacher_id: str) -> None:
        """A class is its teacher's (and an admin's) to read; the caller already holds one of those roles."""
        if principal.role == Role.TEACHER and teacher_id != principal.subject:
            raise PermissionDenied("this class is not yours")

    @staticmethod
    def may_run_sitting(principal: Principal, class_teacher_id: str | None) -> None:
        """Sittings and the proctoring of their sessions: the teacher of the sitting's class and admins (an admin
        also proctors a session outside any sitting: `class_teacher_id` None)."""
        if principal.role == Role.ADMIN:
            return
        if principal.role == Role.TEACHER:
            if class_teacher_id is not None and class_teacher_id == principal.subject:
                return
            raise PermissionDenied("only the teacher of the sitting's class (or an admin) proctors it")
        raise PermissionDenied(f"the {principal.role.value} role cannot run sittings")

    async def may_set_accommodation(self, principal: Principal, student_id: str) -> None:
        """A teacher of the student or an admin grants accommodations; nobody grants their own."""
        if principal.role not in (Role.TEACHER, Role.ADMIN):
            raise PermissionDenied("only a teacher of the student or an admin sets accommodations")
        await self.may_read_student(principal, student_id, what="accommodations", services=False)

    @staticmethod
    def may_read_audit_log(principal: Principal) -> None:
        if principal.role != Role.ADMIN:
            raise PermissionDenied("only an admin reads the audit log")

    @staticmethod
    def may_read_rater_statistics(principal: Principal, rater_id: str) -> str:
        """The rater whose statistics the caller reads ("" for all): a rater their own only."""
        if principal.role == Role.RATER:
            if rater_id not in ("", principal.subject):
                raise PermissionDenied("a rater sees only their own statistics")
            return principal.subject
        return rater_id
