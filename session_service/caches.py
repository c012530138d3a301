"""Session heads kept for answering: what an answer needs to know about its session without a read."""

from __future__ import annotations

from session_service.domain.answers import SessionHead

# Sessions whose heads are kept: well above the students answering at once on one process.
MAX_HEADS = 10_000


class SessionHeads:
    """Heads of sessions being answered, so that an answer needs no read before its write.

    This process drops a head when it advances, finishes or erases; another process's change is caught by the
    writer, which checks everything again under its lock (the head is then dropped), or by a refusal here (the
    head is then read afresh). A head is trusted only while its module is open and before its deadline.
    """

    def __init__(self, limit: int = MAX_HEADS) -> None:
        self._limit = limit
        self._heads: dict[str, SessionHead] = {}

    def get(self, session_id: str) -> SessionHead | None:
        return self._heads.get(session_id)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._heads

    def put(self, head: SessionHead) -> None:
        if len(self._heads) >= self._limit:
            self._heads.clear()
        self._heads[head.session_id] = head

    def drop(self, session_id: str) -> None:
        self._heads.pop(session_id, None)

    def clear(self) -> None:
        self._heads.clear()
