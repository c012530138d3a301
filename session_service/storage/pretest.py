"""The pretest tally: how often each pretest item has been administered, kept as modules pin them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from session_service.storage.engine import Database, Upsert
from session_service.storage.models import PretestExposure

_COUNT = Upsert(
    lambda insert: insert(PretestExposure).on_conflict_do_update(
        index_elements=["item_id"], set_={"administrations": PretestExposure.administrations + 1}
    )
)


def count_administrations(connection: Connection, item_ids: Sequence[str]) -> None:
    """One more administration of each item (in the caller's write transaction, with the module that pins it)."""
    if not item_ids:
        return
    connection.execute(
        _COUNT(connection), [{"item_id": item_id, "administrations": 1} for item_id in dict.fromkeys(item_ids)]
    )


def administrations(db: Database) -> dict[str, int]:
    """Item id -> administrations of every pretest item given so far (a small table: one row per pretest item)."""
    with db.read_statement() as conn:
        return {
            item_id: int(count)
            for item_id, count in conn.execute(select(PretestExposure.item_id, PretestExposure.administrations))
        }
