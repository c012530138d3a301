"""Command line of the scoring jobs: rescore, item statistics, calibration, drift report (gRPC clients only)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

from scoring_jobs.calibrate import default_state_file as calibrate_state_file
from scoring_jobs.calibrate import run_calibrate
from scoring_jobs.common import JobError, JobSettings, Services, StateError, StateFile, load_settings, say
from scoring_jobs.drift import DEFAULT_THRESHOLD, run_drift
from scoring_jobs.item_stats import default_state_file as item_stats_state_file
from scoring_jobs.item_stats import run_item_stats
from scoring_jobs.rescore import RescoreFilters, run_rescore
from scoring_jobs.rescore import default_state_file as rescore_state_file
from toefl_core.calibration import DEFAULT_MIN_RESPONSES
from toefl_core.config import ConfigError
from toefl_core.server import configure_logging

log = logging.getLogger("scoring_jobs")
T = TypeVar("T")
MAX_BATCH_SIZE = 1000
USAGE_ERROR = 2
INTERRUPTED = 130


def since_value(text: str) -> datetime:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time; a time without a zone is taken as UTC."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def batch_size_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}, not {value}")
    return value


def seconds_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def responses_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _common_flags(
    parser: argparse.ArgumentParser, *, batch_help: str | None, batch_default: int, state: Path
) -> None:
    if batch_help is not None:
        parser.add_argument("--batch-size", type=batch_size_value, default=batch_default, help=batch_help)
    parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=state,
        help=f"checkpoint for resuming an interrupted run (default {state})",
    )
    parser.add_argument(
        "--retry-seconds",
        type=seconds_value,
        default=30.0,
        help="how long to keep retrying a service that does not answer before stopping (default 30)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scoring_jobs",
        description=__doc__,
        epilog="Services at ITEM_SERVICE_ADDR and SESSION_SERVICE_ADDR; a service token from TOEFL_TOKEN_KEY.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rescore = commands.add_parser(
        "rescore",
        help="re-score finished sessions with the current parameters and cut tables; report what changed",
    )
    rescore.add_argument(
        "--since", type=since_value, help="only sessions finished at or after this date (YYYY-MM-DD, UTC) or time"
    )
    rescore.add_argument("--blueprint", default="", help="only sessions of this blueprint version")
    _common_flags(
        rescore,
        batch_help="sessions per page, rescored in one call (default 200, the most a page holds)",
        batch_default=200,
        state=rescore_state_file(),
    )
    stats = commands.add_parser(
        "item-stats", help="compute p-values, point-biserials, exposure and response times; write them to the bank"
    )
    _common_flags(
        stats,
        batch_help="items written per request (default 500)",
        batch_default=500,
        state=item_stats_state_file(),
    )
    calibrate = commands.add_parser(
        "calibrate",
        help="estimate the PRETEST items' parameters on the operational scale; propose them for review",
    )
    calibrate.add_argument(
        "--min-responses",
        type=responses_value,
        default=DEFAULT_MIN_RESPONSES,
        help=f"fewer responses than this and an item is reported as not yet calibratable "
        f"(default {DEFAULT_MIN_RESPONSES})",
    )
    _common_flags(calibrate, batch_help=None, batch_default=0, state=calibrate_state_file())
    drift = commands.add_parser(
        "drift",
        help="re-estimate the ACTIVE items' difficulty from their responses; report those beyond a threshold "
        "(read-only)",
    )
    drift.add_argument(
        "--min-responses",
        type=responses_value,
        default=DEFAULT_MIN_RESPONSES,
        help=f"items with fewer responses are left out (default {DEFAULT_MIN_RESPONSES})",
    )
    drift.add_argument(
        "--threshold",
        type=seconds_value,
        default=DEFAULT_THRESHOLD,
        help=f"report an item whose difficulty moved by more than this, in logits (default {DEFAULT_THRESHOLD})",
    )
    drift.add_argument(
        "--retry-seconds",
        type=seconds_value,
        default=30.0,
        help="how long to keep retrying a service that does not answer before stopping (default 30)",
    )
    return parser


def _run(job: Callable[[Services], Awaitable[T]], settings: JobSettings, *, retry_seconds: float) -> T:
    """Run the job; SIGTERM cancels it like Ctrl-C, so that it saves its state on the way out."""

    async def main() -> T:
        task = asyncio.current_task()
        if task is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        # Channels belong to the event loop they are made in.
        services = Services(settings, retry_seconds=retry_seconds)
        try:
            return await job(services)
        finally:
            await services.close()

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    # The drift report writes nothing, so it keeps no state.
    stateless = args.command == "drift"
    saved = (
        ""
        if stateless or args.dry_run
        else f"; progress is saved in {args.state_file}: run the same command again to resume"
    )
    try:
        settings = load_settings()
        if stateless:
            drift = _run(
                lambda s: run_drift(s, min_responses=args.min_responses, threshold=args.threshold),
                settings,
                retry_seconds=args.retry_seconds,
            )
            say(drift.describe())
            return 0
        state_file = StateFile(args.state_file, job=args.command)
        if args.command == "rescore":
            filters = RescoreFilters(since=args.since, blueprint=args.blueprint)
            rescored = _run(
                lambda s: run_rescore(
                    s, filters=filters, batch_size=args.batch_size, dry_run=args.dry_run, state_file=state_file
                ),
                settings,
                retry_seconds=args.retry_seconds,
            )
            say(rescored.describe())
            # Sessions that could not be rescored are listed above; a new run tries them again.
            return 1 if rescored.failed else 0
        if args.command == "calibrate":
            calibrated = _run(
                lambda s: run_calibrate(
                    s, min_responses=args.min_responses, dry_run=args.dry_run, state_file=state_file
                ),
                settings,
                retry_seconds=args.retry_seconds,
            )
            say(calibrated.describe())
            return 0
        stats = _run(
            lambda s: run_item_stats(s, batch_size=args.batch_size, dry_run=args.dry_run, state_file=state_file),
            settings,
            retry_seconds=args.retry_seconds,
        )
        say(stats.describe())
        return 0
    except StateError as exc:
        parser.exit(USAGE_ERROR, f"{parser.prog} {args.command}: error: {exc}\n")
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    except JobError as exc:
        log.error("%s%s", exc, saved)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.error("interrupted%s", saved)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
