"""The item-statistics job: classical item figures from exported responses, written to the item bank."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import numpy as np
from toefl.item.v1 import item_pb2, item_service_pb2
from toefl.session.v1 import scoring_service_pb2

from scoring_jobs.common import JobError, Services, StateError, StateFile, progress, say
from toefl_core.irt import gpcm_probs, posterior, prob_3pl
from toefl_core.scoring import ScoredItem

log = logging.getLogger(__name__)
# Bumped whenever the formulas change, so that new figures never reuse an old run id.
FORMULA_VERSION = 2
SCORED_MODELS = (item_pb2.IRT_MODEL_3PL, item_pb2.IRT_MODEL_GPCM)
# Item fit: mean squares from fewer responses than this are too noisy to report (their SE is about sqrt(2 / n)).
MIN_FIT_RESPONSES = 30
# The conventional bounds of a productive mean square for a high-stakes test (Wright and Linacre).
FIT_BOUNDS = (0.7, 1.3)


class Response(NamedTuple):
    """One administration of an item, as ExportResponses reports it."""

    session_id: str
    section: int
    item_id: str
    # -1: not (yet) scored; 0 for an unanswered item.
    score: int
    max_score: int
    answered: bool
    elapsed_ms: int
    # Filled a pretest slot: figures of its own, but no part of the other items' rest score.
    pretest: bool = False


@dataclass(frozen=True)
class ItemFigures:
    item_id: str
    administrations: int
    p_value: float
    # None when undefined: fewer than two scored administrations, or no spread in the item or rest scores.
    point_biserial: float | None
    exposure_rate: float
    mean_response_seconds: float
    # Infit and outfit mean squares; None without parameters or below MIN_FIT_RESPONSES.
    infit: float | None = None
    outfit: float | None = None
    misfit: bool = False

    def to_proto(self) -> item_pb2.ItemStatistics:
        statistics = item_pb2.ItemStatistics(
            item_id=self.item_id,
            administrations=self.administrations,
            p_value=self.p_value,
            exposure_rate=self.exposure_rate,
            mean_response_seconds=self.mean_response_seconds,
        )
        if self.point_biserial is not None:
            statistics.point_biserial = self.point_biserial
        if self.infit is not None and self.outfit is not None:
            statistics.infit, statistics.outfit, statistics.misfit = self.infit, self.outfit, self.misfit
        return statistics


def from_record(record: scoring_service_pb2.ResponseRecord) -> Response:
    return Response(
        session_id=record.session_id,
        section=record.section,
        item_id=record.item_id,
        score=record.score,
        max_score=record.max_score,
        answered=record.answered,
        elapsed_ms=record.elapsed_ms,
        pretest=record.pretest,
    )


def pearson(n: int, sx: int, sy: int, sxx: int, syy: int, sxy: int) -> float | None:
    """Pearson's r from exact integer sums, or None when undefined (fewer than two pairs, or a constant series)."""
    if n < 2:
        return None
    covariance, var_x, var_y = n * sxy - sx * sy, n * sxx - sx * sx, n * syy - sy * sy
    if var_x == 0 or var_y == 0:
        return None
    # Rounding can push |r| a hair past 1 for perfectly related series.
    return max(-1.0, min(1.0, covariance / math.sqrt(var_x * var_y)))


@dataclass
class _ItemSums:
    """What one item's figures need, as integers: exact, and the same whatever order the sessions come in."""

    section: int
    administrations: int = 0
    scored: int = 0
    points: int = 0
    max_points: int = 0
    # Item score x against rest score y, over the scored administrations.
    sx: int = 0
    sy: int = 0
    sxx: int = 0
    syy: int = 0
    sxy: int = 0
    answered: int = 0
    answered_ms: int = 0
    # Item fit: responses, sum of squared residuals, of model variances, of squared standardised residuals.
    fit_n: int = 0
    fit_residuals: float = 0.0
    fit_variance: float = 0.0
    fit_z2: float = 0.0


class StatisticsBuilder:
    """Folds responses in one pass, a session at a time, so that memory grows with items, not responses.

    The export lists each session's responses together; a session met again after another one is refused, since
    its rest scores could no longer be told.
    """

    def __init__(self, parameters: Mapping[str, item_pb2.Item] | None = None) -> None:
        # Active items with IRT parameters, by id: their fit is computed against each sitting's EAP ability.
        self._parameters = parameters or {}
        # Responses and sessions folded in so far (a repeated record counted once).
        self.responses = 0
        self._items: dict[str, _ItemSums] = {}
        self._section_sessions: Counter[int] = Counter()
        self._folded: set[str] = set()
        self._current = ""
        self._buffer: dict[str, Response] = {}

    @property
    def sessions(self) -> int:
        return len(self._folded)

    def add(self, response: Response) -> None:
        if response.session_id != self._current:
            self._fold()
            if response.session_id in self._folded:
                raise ValueError(f"the responses of session {response.session_id} do not come together")
            self._current = response.session_id
        # A repeated record of one administration counts once.
        self._buffer[response.item_id] = response

    def _fold(self) -> None:
        if not self._buffer:
            return
        given = self._buffer.values()
        self.responses += len(given)
        raw: Counter[int] = Counter()
        for response in given:
            if _scored(response) and not response.pretest:
                raw[response.section] += response.score
        self._section_sessions.update({response.section for response in given})
        for response in given:
            sums = self._items.setdefault(response.item_id, _ItemSums(section=response.section))
            sums.administrations += 1
            if response.answered:
                sums.answered += 1
                sums.answered_ms += response.elapsed_ms
            if _scored(response):
                # The rest score: the section's operational points other than this item's own.
                x, y = response.score, raw[response.section] - (0 if response.pretest else response.score)
                sums.scored += 1
                sums.points += x
                sums.max_points += response.max_score
                sums.sx, sums.sy, sums.sxy = sums.sx + x, sums.sy + y, sums.sxy + x * y
                sums.sxx, sums.syy = sums.sxx + x * x, sums.syy + y * y
        if self._parameters:
            self._fold_fit(given)
        self._folded.add(self._current)
        self._buffer = {}

    def _fold_fit(self, given: Iterable[Response]) -> None:
        """Residuals of each operational response against the sitting's EAP ability in its section."""
        by_section: dict[int, list[tuple[item_pb2.Item, Response]]] = {}
        for response in given:
            item = self._parameters.get(response.item_id)
            if item is not None and _scored(response) and not response.pretest:
                by_section.setdefault(response.section, []).append((item, response))
        for pairs in by_section.values():
            rows = [ScoredItem.of(item, response.score).log_likelihood for item, response in pairs]
            theta = posterior(polytomous=rows).theta
            for item, response in pairs:
                expected, variance = expected_score(item.irt, theta)
                if variance <= 0:
                    continue
                residual = min(response.score, _top(item.irt)) - expected
                sums = self._items[response.item_id]
                sums.fit_n += 1
                sums.fit_residuals += residual * residual
                sums.fit_variance += variance
                sums.fit_z2 += residual * residual / variance

    def result(self) -> tuple[list[ItemFigures], list[str]]:
        """Figures per item (by item id), and the items left out because none of their responses is scored."""
        self._fold()
        figures: list[ItemFigures] = []
        unscored: list[str] = []
        for item_id in sorted(self._items):
            sums = self._items[item_id]
            if not sums.scored:
                unscored.append(item_id)
                continue
            infit = outfit = None
            if sums.fit_n >= MIN_FIT_RESPONSES:
                infit, outfit = sums.fit_residuals / sums.fit_variance, sums.fit_z2 / sums.fit_n
            figures.append(
                ItemFigures(
                    item_id=item_id,
                    administrations=sums.administrations,
                    p_value=sums.points / sums.max_points,
                    point_biserial=pearson(sums.scored, sums.sx, sums.sy, sums.sxx, sums.syy, sums.sxy),
                    exposure_rate=sums.administrations / self._section_sessions[sums.section],
                    mean_response_seconds=sums.answered_ms / (1000 * sums.answered) if sums.answered else 0.0,
                    infit=infit,
                    outfit=outfit,
                    misfit=infit is not None
                    and outfit is not None
                    and not all(FIT_BOUNDS[0] <= v <= FIT_BOUNDS[1] for v in (infit, outfit)),
                )
            )
        return figures, unscored


def compute_statistics(
    responses: Iterable[Response], parameters: Mapping[str, item_pb2.Item] | None = None
) -> tuple[list[ItemFigures], list[str]]:
    """Figures per item (sorted by item id), and the items left out because none of their responses is scored.

    - administrations: sessions in which the item was given;
    - p-value: points over maximum points across the scored administrations (unanswered counts as 0);
    - point-biserial: correlation of the item's score with the rest score, the points of the other scored items
      of the same session and section;
    - exposure rate: administrations over the sessions that took the item's section;
    - mean response time: over the answered administrations, in seconds (0 when none was answered);
    - item fit (items in `parameters`, from MIN_FIT_RESPONSES scored responses): infit, the squared residuals
      over the model variances, and outfit, the mean squared standardised residual, each residual taken at the
      sitting's EAP ability from its operational responses; misfit when either lies outside FIT_BOUNDS.

    The responses of a session must come together (ValueError otherwise), as ExportResponses sends them.
    """
    builder = StatisticsBuilder(parameters)
    for response in responses:
        builder.add(response)
    return builder.result()


def _top(irt: item_pb2.IrtParameters) -> int:
    return len(irt.steps) if irt.model == item_pb2.IRT_MODEL_GPCM else 1


def expected_score(irt: item_pb2.IrtParameters, theta: float) -> tuple[float, float]:
    """The model's expected score of an item at theta and its variance (3PL: P and P(1 - P); GPCM: the mean and
    variance of the category)."""
    if irt.model == item_pb2.IRT_MODEL_GPCM:
        probs = gpcm_probs(theta, irt.a, list(irt.steps))[0]
        categories = np.arange(probs.shape[0], dtype=np.float64)
        mean = float(probs @ categories)
        return mean, float(probs @ categories**2) - mean * mean
    chance = float(prob_3pl(theta, irt.a, irt.b, irt.c))
    return chance, chance * (1 - chance)


def _scored(response: Response) -> bool:
    return response.score >= 0 and response.max_score > 0


def run_id_of(figures: Sequence[ItemFigures]) -> str:
    """Same figures, same run id: a re-run or a resumed run writes under the run that computed them first."""
    canonical = json.dumps([FORMULA_VERSION, [asdict(f) for f in figures]], sort_keys=True).encode()
    return "stats-" + hashlib.sha256(canonical).hexdigest()[:16]


async def active_parameters(services: Services) -> dict[str, item_pb2.Item]:
    """The active items with IRT parameters (FULL view, a page of 1,000 at a time): those whose fit is computed."""
    found: dict[str, item_pb2.Item] = {}
    token = ""
    while True:
        request = item_service_pb2.ListItemsRequest(
            status=item_pb2.ITEM_STATUS_ACTIVE, view=item_pb2.ITEM_VIEW_FULL, page_size=1000, page_token=token
        )

        async def attempt(
            metadata: tuple[tuple[str, str], ...], seconds: float, request: Any = request
        ) -> item_service_pb2.ListItemsResponse:
            reply: item_service_pb2.ListItemsResponse = await services.items.ListItems(
                request, metadata=metadata, timeout=seconds
            )
            return reply

        reply = await services.call("item_service", "ListItems", attempt)
        found.update((i.item_id, i) for i in reply.items if i.irt.model in SCORED_MODELS)
        token = reply.next_page_token
        if not token:
            return found


async def export_responses(
    services: Services, parameters: Mapping[str, item_pb2.Item] | None = None
) -> StatisticsBuilder:
    """Every exported response folded in; the stream is read again from the start if the service drops it."""

    async def attempt(metadata: tuple[tuple[str, str], ...], _seconds: float) -> StatisticsBuilder:
        builder = StatisticsBuilder(parameters)
        with progress("reading responses", unit="response") as bar:
            # No deadline: the stream lasts as long as the export does; a dropped connection still ends it at once.
            call = services.scoring.ExportResponses(
                scoring_service_pb2.ExportResponsesRequest(), metadata=metadata
            )
            async for record in call:
                try:
                    builder.add(from_record(record))
                except ValueError as exc:
                    raise JobError(f"session_service's export cannot be used: {exc}") from exc
                bar.update()
        return builder

    return await services.call("session_service", "ExportResponses", attempt)


@dataclass
class StatsSummary:
    run_id: str
    responses: int
    sessions: int
    items: int
    without_scored_response: int
    dry_run: bool
    written: int = 0
    unchanged: int = 0

    def describe(self) -> str:
        head = "item statistics (dry run, nothing written)" if self.dry_run else "item statistics"
        counts = (
            f"{self.responses} responses from {self.sessions} sessions; {self.items} items"
            f" ({self.without_scored_response} more without a scored response)"
        )
        if self.dry_run:
            return f"{head} run {self.run_id}: {counts}"
        return f"{head} run {self.run_id}: {counts}; written {self.written}, unchanged {self.unchanged}"


def print_figures(figures: Sequence[ItemFigures]) -> None:
    say("item_id\tadministrations\tp_value\tpoint_biserial\texposure_rate\tmean_response_seconds\tinfit\toutfit")
    for f in figures:
        pbis = "-" if f.point_biserial is None else f"{f.point_biserial:.4f}"
        fit = "-\t-" if f.infit is None or f.outfit is None else f"{f.infit:.3f}\t{f.outfit:.3f}"
        flag = "\tMISFIT" if f.misfit else ""
        say(
            f"{f.item_id}\t{f.administrations}\t{f.p_value:.4f}\t{pbis}\t{f.exposure_rate:.4f}\t"
            f"{f.mean_response_seconds:.1f}\t{fit}{flag}"
        )


async def write_batch(
    services: Services, batch: Sequence[ItemFigures], run_id: str
) -> item_service_pb2.WriteItemStatisticsResponse:
    request = item_service_pb2.WriteItemStatisticsRequest(statistics=[f.to_proto() for f in batch], run_id=run_id)

    async def attempt(
        metadata: tuple[tuple[str, str], ...], seconds: float
    ) -> item_service_pb2.WriteItemStatisticsResponse:
        reply: item_service_pb2.WriteItemStatisticsResponse = await services.items.WriteItemStatistics(
            request, metadata=metadata, timeout=seconds
        )
        return reply

    try:
        return await services.call("item_service", "WriteItemStatistics", attempt)
    except grpc.aio.AioRpcError as error:
        raise JobError(
            f"item_service refused a batch of statistics: {error.code().name} {error.details()}"
        ) from error


async def run_item_stats(
    services: Services, *, batch_size: int, dry_run: bool, state_file: StateFile
) -> StatsSummary:
    """Export, compute, write in batches; an interrupted run with the same figures resumes where it stopped."""
    builder = await export_responses(services, await active_parameters(services))
    figures, unscored = builder.result()
    summary = StatsSummary(
        run_id=run_id_of(figures),
        responses=builder.responses,
        sessions=builder.sessions,
        items=len(figures),
        without_scored_response=len(unscored),
        dry_run=dry_run,
    )
    if dry_run:
        print_figures(figures)
        return summary
    state = state_file.load()
    done = 0
    if state is not None and state.get("run_id") == summary.run_id and not state.get("completed"):
        # Same figures as the interrupted run, in the same order (by item id): the first ones are in the bank.
        try:
            done = min(int(state["items_done"]), len(figures))
            summary.written, summary.unchanged = int(state["written"]), int(state["unchanged"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"--state-file {state_file.path} is damaged ({exc!r}); name another file") from exc
        log.info("resuming run %s after %d of %d items", summary.run_id, done, len(figures))

    def checkpoint(items_done: int, *, completed: bool = False) -> None:
        state_file.save({**asdict(summary), "items_done": items_done, "completed": completed})

    checkpoint(done)
    with progress("writing statistics", unit="item", total=len(figures)) as bar:
        bar.update(done)
        for start in range(done, len(figures), batch_size):
            batch = figures[start : start + batch_size]
            reply = await write_batch(services, batch, summary.run_id)
            summary.written += reply.written
            summary.unchanged += reply.unchanged
            checkpoint(start + len(batch))
            bar.update(len(batch))
    checkpoint(len(figures), completed=True)
    return summary


def default_state_file() -> Path:
    return Path(".scoring-jobs") / "item-stats.json"
