"""Command line of item_service: serve, migrate, check, backup, build-demo-bank, export, import."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from toefl.item.v1 import item_pb2, item_service_pb2

from item_service.config import Settings, load_settings
from item_service.convert import check_import, check_media
from item_service.demo_audio import add_prompt_audio
from item_service.demo_bank import content_hash, generate_demo_bank
from item_service.server import open_bank, serve
from item_service.speech import MP3_BITRATE_KBPS
from item_service.storage import (
    ItemBank,
    ItemFilter,
    StorageError,
    backup_database,
    check_bank,
    check_media_blobs,
    create_bank_engine,
    schema_revision,
    seal_for_shipping,
    sqlite_path,
)
from item_service.storage.engine import missing_bank_message
from toefl_core.config import ConfigError
from toefl_core.errors import DomainError
from toefl_core.ownership import ITEM_BANK_FILE, OwnershipError, refuse_retired_name
from toefl_core.server import configure_logging, limit_malloc_arenas, run_event_loop

log = logging.getLogger("item_service")
ACTOR = f"cli:{os.environ.get('USER', 'unknown')}"


def _say(line: str) -> None:
    # The one summary line of a command goes to stdout, so that scripts can read it; logs go to stderr.
    sys.stdout.write(line + "\n")


def _sqlite_file(url: str, command: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise StorageError(f"{command} works on a SQLite item bank; DATABASE_URL names another backend")
    return path


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    bank = open_bank(settings)
    run_event_loop(serve(settings, bank, port_file=args.port_file))
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    # Alembic is imported by the commands that use it, not at the top: `serve` runs this module too, and its
    # process never loads Alembic (storage.engine.SCHEMA_HEAD).
    from item_service.storage.schema import upgrade_to_head

    url = settings.database_url
    refuse_retired_name(url, use_instead=ITEM_BANK_FILE)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not args.create:
            raise StorageError(missing_bank_message(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        log.info("creating an empty item bank at %s", path)
    else:
        check_bank(url)
        if path is not None:
            backup = backup_database(path)
            log.info("backup taken before migrating: %s", backup)
    engine = create_bank_engine(url)
    try:
        before = schema_revision(engine)
        upgrade_to_head(engine)
        after = schema_revision(engine)
    finally:
        engine.dispose()
    if path is not None:
        # A bank is built into item_service's image from this file, and the image's read-only server cannot open a
        # bank left in WAL mode ("attempt to write a readonly database" at every start): `make item-bank` migrates
        # a checkout's bank before `docker compose build`, as `make deploy` seals it before its build.
        seal_for_shipping(path)
    _say(f"item bank at revision {after} (was {before or 'empty'})")
    return 0


def cmd_check(settings: Settings, _args: argparse.Namespace) -> int:
    from item_service.storage.schema import integrity_problems, schema_drift

    check_bank(settings.database_url)
    # Read-only at the SQLite level: a check must never change the bank, not even its journal mode.
    engine = create_bank_engine(settings.database_url, read_only=True)
    try:
        damage = integrity_problems(engine)
        problems = schema_drift(engine)
        revision = schema_revision(engine)
        # Media are read only from a sound bank with the schema the code knows.
        media = None if damage or problems else check_media_blobs(engine)
    finally:
        engine.dispose()
    for problem in damage:
        log.error("integrity: %s", problem)
    for problem in problems:
        log.error("drift: %s", problem)
    if damage:
        _say(f"integrity check failed: {len(damage)} problem(s); restore the bank from backups/")
        return 1
    if problems or media is None:
        _say(f"schema drift: {len(problems)} difference(s) between the models and the database")
        return 1
    for problem in media.problems:
        log.error("media: %s", problem)
    if media.problems:
        _say(
            f"media check failed: {len(media.problems)} problem(s), the first: {media.problems[0]}; "
            "rebuild or re-import the audio, or restore the bank from backups/"
        )
        return 1
    _say(
        f"owner mark and integrity ok; schema matches the models at revision {revision}; "
        f"{media.references} audio references, all present and intact ({media.blobs} blobs, "
        f"{media.total_bytes / 1e6:.1f} MB)"
    )
    return 0


def cmd_backup(settings: Settings, _args: argparse.Namespace) -> int:
    check_bank(settings.database_url)
    _say(str(backup_database(_sqlite_file(settings.database_url, "backup"))))
    return 0


def _progress(what: str) -> Callable[[int, int], None]:
    """Log progress every tenth of the way (logs go to stderr)."""
    shown = [-1]

    def advance(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != shown[0]:
            shown[0] = tenth
            log.info("%s: %d/%d (%d%%)", what, done, total, tenth * 10)

    return advance


@dataclass(frozen=True)
class Records:
    """What an import brings: blobs, passages and items."""

    media: list[item_pb2.Media]
    passages: list[item_pb2.Passage]
    items: list[item_pb2.Item]


def _import(
    bank: ItemBank,
    records: Records,
    *,
    dry_run: bool,
    batch_name: str,
) -> item_service_pb2.ImportItemsResponse:
    """The path ImportItems takes: the same checks, one transaction."""
    checked_passages, checked_items = check_import(records.passages, records.items)
    checked_media = check_media(records.media)
    with bank.writing(actor=ACTOR) as writer:
        return writer.import_records(
            media=checked_media,
            passages=checked_passages,
            items=checked_items,
            dry_run=dry_run,
            batch_name=batch_name,
            progress=_progress("importing items"),
        )


def cmd_build_demo_bank(settings: Settings, args: argparse.Namespace) -> int:
    from item_service.storage.schema import upgrade_to_head

    out = Path(args.out) if args.out else _sqlite_file(settings.database_url, "build-demo-bank")
    url = f"sqlite:///{out.resolve()}"
    refuse_retired_name(url, use_instead=ITEM_BANK_FILE)
    if out.exists():
        if not args.force:
            raise StorageError(f"{out} exists; pass --force to replace it (a backup is taken first)")
        # Even --force never replaces a database that is not an item bank.
        check_bank(url)
        log.info("backup of the bank being replaced: %s", backup_database(out))
    log.info("generating the demo bank (seed %d)", args.seed)
    demo = generate_demo_bank(args.seed)
    add_prompt_audio(demo, progress=_progress("synthesising prompt audio"))
    building = out.with_name(out.name + ".building")
    for leftover in (building, *(building.with_name(building.name + s) for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    engine = create_bank_engine(f"sqlite:///{building.resolve()}")
    try:
        upgrade_to_head(engine)
        result = _import(
            ItemBank(engine),
            Records(media=demo.media, passages=demo.passages, items=demo.items),
            dry_run=False,
            batch_name=f"demo bank, seed {args.seed}",
        )
    finally:
        engine.dispose()
    seal_for_shipping(building)
    for stale in (out.with_name(out.name + "-wal"), out.with_name(out.name + "-shm")):
        stale.unlink(missing_ok=True)
    building.replace(out)
    active = sum(item.status == item_pb2.ITEM_STATUS_ACTIVE for item in demo.items)
    audio_bytes = sum(len(blob.data) for blob in demo.media)
    _say(
        f"built {out}: {result.created} items ({active} active) and {result.passages_created} passages, "
        f"{result.media_created} prompt audio files ({audio_bytes / 1e6:.1f} MB, MP3 {MP3_BITRATE_KBPS} kbit/s), "
        f"seed {args.seed}, content hash {content_hash(demo)[:16]}"
    )
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    check_bank(settings.database_url)
    bank = ItemBank(create_bank_engine(settings.database_url, read_only=True), read_only=True)
    try:
        with bank.reading() as reader:
            passages, items = reader.export(filters=ItemFilter())
            media = reader.media_of(passages=passages, items=items)
    finally:
        bank.dispose()
    with Path(args.out).open("w", encoding="utf-8") as handle:
        # The media first: an import meets each blob before the records that name it.
        for record in (
            *(item_service_pb2.ExportRecord(media=m) for m in media),
            *(item_service_pb2.ExportRecord(passage=p) for p in passages),
            *(item_service_pb2.ExportRecord(item=i) for i in items),
        ):
            handle.write(json.dumps(json_format.MessageToDict(record), sort_keys=True) + "\n")
    _say(f"exported {len(media)} media, {len(passages)} passages and {len(items)} items to {args.out}")
    return 0


def read_records(path: Path) -> Records:
    """Media, passages and items of a JSON-lines export (one ExportRecord in proto JSON per line)."""
    records = Records(media=[], passages=[], items=[])
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json_format.Parse(line, item_service_pb2.ExportRecord())
            except json_format.ParseError as exc:
                raise StorageError(f"{path}:{number}: not an export record: {exc}") from exc
            if record.HasField("media"):
                records.media.append(record.media)
            elif record.HasField("passage"):
                records.passages.append(record.passage)
            elif record.HasField("item"):
                records.items.append(record.item)
    return records


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    records = read_records(Path(args.file))
    bank = open_bank(settings)
    try:
        result = _import(bank, records, dry_run=args.dry_run, batch_name=Path(args.file).name)
    finally:
        bank.dispose()
    path = sqlite_path(settings.database_url)
    if path is not None and not result.dry_run:
        # As after `migrate`: the bank file may go into an image next, whose read-only server cannot open WAL.
        seal_for_shipping(path)
    _say(
        f"{'dry run: would have ' if result.dry_run else ''}created {result.created}, updated {result.updated}, "
        f"left {result.unchanged} unchanged; passages created {result.passages_created}, "
        f"updated {result.passages_updated}; media created {result.media_created}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m item_service", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_cmd = commands.add_parser("serve", help="run the gRPC server on ITEM_SERVICE_ADDR")
    serve_cmd.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    serve_cmd.set_defaults(run=cmd_serve)
    migrate = commands.add_parser("migrate", help="back up the bank, then upgrade its schema to the latest")
    migrate.add_argument("--create", action="store_true", help="create an empty bank if none exists")
    migrate.set_defaults(run=cmd_migrate)
    commands.add_parser(
        "check", help="report drift between the models and the bank (changes nothing)"
    ).set_defaults(run=cmd_check)
    commands.add_parser("backup", help="take an online backup into the backups folder").set_defaults(
        run=cmd_backup
    )
    demo = commands.add_parser("build-demo-bank", help="build the deterministic demo item bank")
    demo.add_argument("--seed", type=int, default=2026, help="same seed, same bank (default 2026)")
    demo.add_argument("--out", help="bank file to write (default: the DATABASE_URL file)")
    demo.add_argument("--force", action="store_true", help="replace an existing bank (after backing it up)")
    demo.set_defaults(run=cmd_build_demo_bank)
    export = commands.add_parser("export", help="write every passage and item as JSON lines")
    export.add_argument("--out", required=True, help="file to write")
    export.set_defaults(run=cmd_export)
    load = commands.add_parser("import", help="import JSON lines written by export (idempotent by external_id)")
    load.add_argument("file", help="JSON-lines file")
    load.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    load.set_defaults(run=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "seed", 0) < 0:
        parser.error("--seed must not be negative")
    configure_logging(args.log_level)
    limit_malloc_arenas()
    # Alembic narrates every step at INFO; its warnings and errors are what matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        code: int = args.run(settings, args)
    except (ConfigError, OwnershipError, StorageError) as exc:
        log.error("%s", exc)
        return 1
    except DomainError as exc:
        log.error("%s%s", exc.message, f" (field {exc.field})" if exc.field else "")
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
