"""CLI: `python -m session_service serve|migrate|check|create-demo-accounts`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from session_service.accounts import Passwords
from session_service.blueprint import BlueprintError, load_blueprint
from session_service.config import Settings, load_settings
from session_service.server import create_demo_accounts, serve
from session_service.storage.engine import Database, SchemaError, open_database, schema_revision
from toefl_core.config import ConfigError
from toefl_core.ownership import OwnershipError, identify
from toefl_core.server import configure_logging, limit_malloc_arenas, run_event_loop

log = logging.getLogger("session_service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m session_service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="create/migrate user_data.db and serve gRPC until SIGTERM")
    serve_cmd.add_argument("--port-file", type=Path, help="write the bound port here (tests bind port 0)")
    serve_cmd.add_argument(
        "--create-demo-accounts", action="store_true", help="development only: create the demo accounts first"
    )
    commands.add_parser(
        "migrate", help="create or upgrade user_data.db to the latest schema (alembic upgrade head)"
    )
    commands.add_parser("check", help="verify the owner mark and that the schema is at head; change nothing")
    commands.add_parser(
        "create-demo-accounts", help="development only: demo accounts and data/demo-credentials.json"
    )
    return parser


def prepare_database(settings: Settings) -> Database:
    """Open (creating and marking a brand-new file) and migrate to head in this process, as `migrate` does."""
    # Imported here, not at the top: `serve` runs this module too, and its process never loads Alembic.
    from session_service.storage.schema import migrate

    db = open_database(settings.database_url, create=True)
    try:
        revision = migrate(db)
    except BaseException:
        db.dispose()
        raise
    log.info("user database at schema revision %s", revision)
    return db


def _check() -> int:
    from session_service.storage.schema import head_revision

    settings = load_settings()
    db = open_database(settings.database_url, create=False)
    try:
        current, head = schema_revision(db), head_revision()
    finally:
        db.dispose()
    name = identify(settings.database_url).database_name
    if current != head:
        log.error(
            "%s is at schema revision %r, not %r: run `python -m session_service migrate`", name, current, head
        )
        return 1
    log.info("%s: owner mark user_data, schema revision %s (head)", name, current)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    limit_malloc_arenas()
    try:
        # A broken blueprint is found before anything else happens.
        load_blueprint()
        if args.command == "serve":
            run_event_loop(
                serve(load_settings(), port_file=args.port_file, demo_accounts=args.create_demo_accounts)
            )
        elif args.command == "migrate":
            prepare_database(load_settings()).dispose()
        elif args.command == "check":
            return _check()
        else:
            settings = load_settings()
            db = prepare_database(settings)
            try:
                create_demo_accounts(settings, db, Passwords(settings.password_parameters))
            finally:
                db.dispose()
    except (ConfigError, OwnershipError, BlueprintError, SchemaError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
