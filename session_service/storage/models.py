"""Tables of user_data.db: accounts, classes, sessions, modules and pinned items, responses, events, scores."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Times are integer milliseconds since the epoch (UTC): exact, sortable and identical on SQLite and PostgreSQL.


class Base(DeclarativeBase):
    pass


class DatabaseOwner(Base):
    """The owner row: the mark PostgreSQL carries (SQLite also has PRAGMA application_id)."""

    __tablename__ = "database_owner"
    owner: Mapped[str] = mapped_column(String(40), primary_key=True)


class User(Base):
    __tablename__ = "users"
    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    create_ms: Mapped[int] = mapped_column(BigInteger)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)


class SchoolClass(Base):
    __tablename__ = "classes"
    class_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    teacher_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    create_ms: Mapped[int] = mapped_column(BigInteger)


class Enrolment(Base):
    __tablename__ = "enrolments"
    class_id: Mapped[str] = mapped_column(ForeignKey("classes.class_id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ExamSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        # CreateSession is idempotent by (student, request id), also under concurrent duplicates.
        UniqueConstraint("student_id", "request_id", name="uq_sessions_student_request"),
        Index("ix_sessions_student_create", "student_id", "create_ms"),
        # Scoring jobs page through finished sessions by finish time.
        Index("ix_sessions_finish", "finish_ms", "session_id"),
    )
    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(40))
    # The one section of a section session; empty for a full test.
    section: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[str] = mapped_column(String(40))
    blueprint_version: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[str] = mapped_column(String(40))
    current_module_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    create_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    finish_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The sitting it was started for (none: practice). No foreign key: adding one to a large table would rebuild
    # it on SQLite; a sitting is never deleted.
    sitting_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    # The accommodations pinned at the start: a later change to the student's does not move a running clock.
    time_multiplier: Mapped[float] = mapped_column(Float, server_default=text("1.0"))
    break_seconds: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Set while a proctor has paused the session: the clock stands still from this instant.
    paused_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set when a proctor voided it: the scores stay stored but are withheld from reports.
    voided_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Module(Base):
    __tablename__ = "modules"
    __table_args__ = (
        UniqueConstraint("session_id", "sequence", name="uq_modules_session_sequence"),
        Index("ix_modules_status_deadline", "status", "deadline_ms"),
    )
    module_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    plan_key: Mapped[str] = mapped_column(String(60))
    section: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(40))
    seed: Mapped[int] = mapped_column(BigInteger)
    # The serialized AssemblyRecord from item_service, so the module can be replayed.
    assembly_record: Mapped[bytes] = mapped_column(LargeBinary)
    start_ms: Mapped[int] = mapped_column(BigInteger)
    deadline_ms: Mapped[int] = mapped_column(BigInteger)
    close_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set on a router module when it is closed: the ability estimate and the routing decision taken from it.
    theta: Mapped[float | None] = mapped_column(Float, nullable=True)
    theta_se: Mapped[float | None] = mapped_column(Float, nullable=True)
    routing_decision: Mapped[str | None] = mapped_column(Text, nullable=True)


class PinnedContent(Base):
    """A serialized FULL item or passage exactly as a module pinned it, stored once per distinct content
    (keyed by its SHA-256) instead of once per module: hundreds of students share a few hundred items."""

    __tablename__ = "pinned_content"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ModuleItem(Base):
    """An item pinned at the revision the module was given, FULL view (keys and parameters stay server-side)."""

    __tablename__ = "module_items"
    module_id: Mapped[str] = mapped_column(ForeignKey("modules.module_id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(BigInteger)
    task_type: Mapped[str] = mapped_column(String(60))
    content_digest: Mapped[str] = mapped_column(ForeignKey("pinned_content.digest"))


class ModulePassage(Base):
    __tablename__ = "module_passages"
    module_id: Mapped[str] = mapped_column(ForeignKey("modules.module_id", ondelete="CASCADE"), primary_key=True)
    passage_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    content_digest: Mapped[str] = mapped_column(ForeignKey("pinned_content.digest"))


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        # A retried SubmitResponse can never write twice, even when both copies arrive at once.
        UniqueConstraint("session_id", "request_id", name="uq_responses_session_request"),
        UniqueConstraint("module_id", "item_id", "revision", name="uq_responses_item_revision"),
    )
    response_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id", ondelete="CASCADE"))
    module_id: Mapped[str] = mapped_column(ForeignKey("modules.module_id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer)
    # The Answer message as canonical proto JSON: readable in an export and by any backend.
    answer_json: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(100))
    elapsed_ms: Mapped[int] = mapped_column(Integer, default=0)
    saved_ms: Mapped[int] = mapped_column(BigInteger)


class AdvanceRequest(Base):
    """Request ids of AdvanceModule calls already applied, so that a retry does not advance twice."""

    __tablename__ = "advance_requests"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.session_id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    closed_module_id: Mapped[str] = mapped_column(String(40))
    applied_ms: Mapped[int] = mapped_column(BigInteger)


class Event(Base):
    __tablename__ = "events"
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    item_id: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    client_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    server_ms: Mapped[int] = mapped_column(BigInteger)


class EventBatch(Base):
    """Request ids of LogEvents batches already stored, so that a retried batch is not stored twice."""

    __tablename__ = "event_batches"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.session_id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    stored: Mapped[int] = mapped_column(Integer)
    applied_ms: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """Who did what, to what and whom, when and why: every staff action. Append-only (no RPC changes or deletes a
    row); erasing a student re-keys their rows to a pseudonym and keeps them."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # A proctor's retried action finds its entry, and acts once, also when two processes get it at once.
        # (A unique index rather than a constraint: SQLite adds one without rebuilding the table.)
        Index("uq_audit_events_target_request", "target", "request_id", unique=True),
        Index("ix_audit_events_time", "time_ms", "audit_id"),
    )
    audit_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(40), index=True)
    detail_json: Mapped[str] = mapped_column(Text)
    time_ms: Mapped[int] = mapped_column(BigInteger)
    actor_role: Mapped[str] = mapped_column(String(20), server_default="")
    target_type: Mapped[str] = mapped_column(String(20), server_default="")
    student_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Sitting(Base):
    """A scheduled exam for a class: its test and the window in which the class's students may start it."""

    __tablename__ = "sittings"
    sitting_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    class_id: Mapped[str] = mapped_column(ForeignKey("classes.class_id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    blueprint_version: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(40))
    section: Mapped[str] = mapped_column(String(40))
    opens_ms: Mapped[int] = mapped_column(BigInteger)
    closes_ms: Mapped[int] = mapped_column(BigInteger)
    access_code: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(40))
    create_ms: Mapped[int] = mapped_column(BigInteger)
    update_ms: Mapped[int] = mapped_column(BigInteger)
    revision: Mapped[int] = mapped_column(Integer)


class AccommodationRow(Base):
    """A student's approved accommodations (IMS additional-testing-time and a break between sections)."""

    __tablename__ = "accommodations"
    student_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    time_multiplier: Mapped[float] = mapped_column(Float)
    break_seconds: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(40))
    update_ms: Mapped[int] = mapped_column(BigInteger)


class ScoreVersion(Base):
    """One version of a session's scores; a rescore or a rating adds a version and never changes one."""

    __tablename__ = "score_versions"
    __table_args__ = (UniqueConstraint("session_id", "version", name="uq_score_versions_session_version"),)
    score_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(40))
    blueprint_version: Mapped[str] = mapped_column(String(40))
    cut_table_version: Mapped[str] = mapped_column(String(40))
    # Set once all four sections of a full test are final.
    total_band: Mapped[str | None] = mapped_column(String(8), nullable=True)
    total_cefr: Mapped[str | None] = mapped_column(String(4), nullable=True)
    comparable_low: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comparable_high: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comparable_midpoint: Mapped[int | None] = mapped_column(Integer, nullable=True)
    create_ms: Mapped[int] = mapped_column(BigInteger)


class SectionScoreRow(Base):
    """A section's figures in one score version (every scored section is repeated in each version)."""

    __tablename__ = "section_scores"
    score_id: Mapped[str] = mapped_column(
        ForeignKey("score_versions.score_id", ondelete="CASCADE"), primary_key=True
    )
    section: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(40))
    theta: Mapped[float] = mapped_column(Float)
    standard_error: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(8))
    cefr: Mapped[str] = mapped_column(String(4))
    band_low: Mapped[str] = mapped_column(String(8))
    band_high: Mapped[str] = mapped_column(String(8))
    items_used: Mapped[int] = mapped_column(Integer)
    items_awaiting_rating: Mapped[int] = mapped_column(Integer)
    # Per task type: items, answered, points, max points (JSON list).
    task_types_json: Mapped[str] = mapped_column(Text)
    # Item id -> revision of the parameters used (JSON object).
    parameters_json: Mapped[str] = mapped_column(Text)


class RatingTask(Base):
    """A rated response (the latest answer to a rated item when its section closed) and where its rating stands."""

    __tablename__ = "rating_tasks"
    __table_args__ = (Index("ix_rating_tasks_state_type_submit", "state", "task_type", "submit_ms"),)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.response_id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id", ondelete="CASCADE"), index=True)
    section: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[str] = mapped_column(String(40))
    task_type: Mapped[str] = mapped_column(String(60))
    double_rated: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(40))
    final_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rule: Mapped[str] = mapped_column(Text, default="")
    submit_ms: Mapped[int] = mapped_column(BigInteger)
    create_ms: Mapped[int] = mapped_column(BigInteger)
    final_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RatingRow(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        # A rater rates a response once; a retried SubmitRating finds its first rating by request id.
        UniqueConstraint("response_id", "rater_id", name="uq_ratings_response_rater"),
        UniqueConstraint("rater_id", "request_id", name="uq_ratings_rater_request"),
    )
    rating_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("rating_tasks.response_id", ondelete="CASCADE"))
    rater_id: Mapped[str] = mapped_column(String(40), index=True)
    score: Mapped[int] = mapped_column(Integer)
    dimension_scores_json: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    adjudication: Mapped[bool] = mapped_column(Boolean)
    request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    create_ms: Mapped[int] = mapped_column(BigInteger)


class PendingScore(Base):
    """A session with a closed section not scored yet: an advance or a finish closed it, and its score is computed
    at the writer's next idle turn (session_service.section_scoring); kept so that a restart finds them."""

    __tablename__ = "pending_scores"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.session_id", ondelete="CASCADE"), primary_key=True
    )
    since_ms: Mapped[int] = mapped_column(BigInteger)


class RescoreRequest(Base):
    """The outcome of an applied RescoreSession, by request id, so that a retry acts once."""

    __tablename__ = "rescore_requests"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.session_id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    result: Mapped[bytes] = mapped_column(LargeBinary)
    applied_ms: Mapped[int] = mapped_column(BigInteger)


class ServiceHeartbeat(Base):
    """Each running process of the service says here, every few seconds, that it is alive: a process that
    starts finds how long the service was down (no recent heartbeat) and gives that time back."""

    __tablename__ = "service_heartbeats"
    process_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    alive_ms: Mapped[int] = mapped_column(BigInteger)


class ServiceOutage(Base):
    """An outage of the service and the time it gave back to the modules open meanwhile. Keyed by the last sign
    of life before it, so that two processes starting together after one outage give the time back once."""

    __tablename__ = "service_outages"
    down_from_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    up_ms: Mapped[int] = mapped_column(BigInteger)
    time_back_ms: Mapped[int] = mapped_column(BigInteger)
    modules: Mapped[int] = mapped_column(Integer)


class SignIn(Base):
    """One sign-in with a password and every refresh since (a token family): revoking it ends them all."""

    __tablename__ = "sign_ins"
    sign_in_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"), index=True)
    create_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # sign_out, reuse, admin or erased.
    revoked_why: Mapped[str | None] = mapped_column(String(20), nullable=True)


class RefreshToken(Base):
    """A refresh token, by its SHA-256 only: a copy of the table renews nobody's sign-in."""

    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sign_in_id: Mapped[str] = mapped_column(ForeignKey("sign_ins.sign_in_id", ondelete="CASCADE"), index=True)
    issued_ms: Mapped[int] = mapped_column(BigInteger)
    # Set once, by the one refresh that spends it: a second use finds it set.
    spent_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SignInFailures(Base):
    """Failed sign-ins of one throttling key (an account from an address, an account, an address), shared by every
    process. The key is a SHA-256 of what it counts: no username or address is kept in clear."""

    __tablename__ = "sign_in_failures"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    held_until_ms: Mapped[int] = mapped_column(BigInteger)


class KnownAddress(Base):
    """An address an account signed in from (SHA-256 of both): spared the holds an attacker elsewhere causes."""

    __tablename__ = "sign_in_known_addresses"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sign_in_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class Recording(Base):
    """A spoken answer's audio as the student's browser uploaded it (bytes and content type unchanged), before
    SubmitResponse names it; kept with the student data, erased with it."""

    __tablename__ = "recordings"
    __table_args__ = (
        # An upload is idempotent by (session, request id), also under concurrent duplicates.
        UniqueConstraint("session_id", "request_id", name="uq_recordings_session_request"),
        Index("ix_recordings_session_item", "session_id", "item_id"),
    )
    # "rec-" and 16 random hex digits: what SpeechResponse.audio_ref names, with nothing of the student in it.
    recording_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id", ondelete="CASCADE"))
    module_id: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str] = mapped_column(String(100))
    content_type: Mapped[str] = mapped_column(String(100))
    byte_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    duration_ms: Mapped[int] = mapped_column(Integer)
    create_ms: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class PretestExposure(Base):
    """How often each pretest item has been administered, counted as modules pin it: item_service fills pretest
    slots least administered first, so that every pretest item gathers its calibration sample evenly."""

    __tablename__ = "pretest_exposure"
    item_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    administrations: Mapped[int] = mapped_column(BigInteger)
