"""item_service's gRPC server: open the checked bank, register the servicers, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from toefl.common.v1 import ownership_pb2, ownership_pb2_grpc
from toefl.item.v1 import item_service_pb2, item_service_pb2_grpc

from item_service.config import Settings
from item_service.servicer import ItemServicer, assembly_index
from item_service.storage import (
    ItemBank,
    StorageError,
    check_bank,
    create_bank_engine,
    read_owner,
    schema_revision,
)
from item_service.storage.engine import SCHEMA_HEAD
from toefl_core.ownership import ITEM_BANK_OWNER
from toefl_core.ownership_servicer import OwnershipServicer
from toefl_core.server import serve_forever

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    item_service_pb2.DESCRIPTOR.services_by_name["ItemService"].full_name,
    ownership_pb2.DESCRIPTOR.services_by_name["DatabaseOwnership"].full_name,
)


def open_bank(settings: Settings) -> ItemBank:
    """The bank behind DATABASE_URL, after the owner-mark checks; refuses a schema behind the code's."""
    check_bank(settings.database_url)
    engine = create_bank_engine(settings.database_url, read_only=settings.read_only)
    revision = schema_revision(engine)
    if revision != SCHEMA_HEAD:
        engine.dispose()
        raise StorageError(
            f"the item bank is at schema revision {revision or 'none'}, the code needs {SCHEMA_HEAD}; "
            "run `python -m item_service migrate` (it takes a backup first)"
        )
    return ItemBank(engine, read_only=settings.read_only)


def warm(bank: ItemBank) -> int:
    """Decode the active items and build the assembly index now, so that no early call pays for it."""
    with bank.reading() as reader:
        index = assembly_index(reader)
    return len(index.items)


async def serve(settings: Settings, bank: ItemBank, *, port_file: Path | None) -> None:
    items = ItemServicer(bank, token_key=settings.token_key)
    ownership = OwnershipServicer(
        service="item_service",
        expected_owner=ITEM_BANK_OWNER,
        database_url=settings.database_url,
        token_key=settings.token_key,
        inspect=lambda: (read_owner(bank.engine), schema_revision(bank.engine)),
    )

    def register(server: grpc.aio.Server) -> None:
        item_service_pb2_grpc.add_ItemServiceServicer_to_server(items, server)
        ownership_pb2_grpc.add_DatabaseOwnershipServicer_to_server(ownership, server)

    async def on_shutdown() -> None:
        bank.dispose()

    active = await asyncio.to_thread(warm, bank)
    log.info("item bank ready: %d active items%s", active, " (read-only)" if settings.read_only else "")
    await serve_forever(
        name="item_service",
        address=settings.address,
        register=register,
        service_names=SERVICE_NAMES,
        on_shutdown=on_shutdown,
        port_file=port_file,
    )
