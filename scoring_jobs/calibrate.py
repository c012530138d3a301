"""The calibration job: pretest items' IRT parameters estimated on the operational scale, proposed for review."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import numpy as np
from toefl.item.v1 import item_pb2, item_service_pb2
from toefl.session.v1 import scoring_service_pb2

from scoring_jobs.common import JobError, Services, StateError, StateFile, progress, say
from toefl_core.calibration import METHOD, Calibration, Estimate, PretestData, calibrate
from toefl_core.irt import GRID
from toefl_core.scoring import ScoredItem

log = logging.getLogger(__name__)
# Bumped whenever the estimator changes, so that new estimates never reuse an old run id.
FORMULA_VERSION = 1
MAX_BATCH_GET = 500
SCORED_MODELS = (item_pb2.IRT_MODEL_3PL, item_pb2.IRT_MODEL_GPCM)


class Administration(NamedTuple):
    session_id: str
    section: int
    item_id: str
    # -1: a rated response still waiting for its rating (left out); 0 for an unanswered item.
    score: int
    pretest: bool


@dataclass
class Proposal:
    """The estimates of one pretest item, as they go to item_service."""

    item_id: str
    section: str
    estimate: dict[str, Any]
    population_mean: float
    population_sd: float

    def irt(self, item: item_pb2.Item, run_id: str) -> item_pb2.IrtParameters:
        e = self.estimate
        irt = item_pb2.IrtParameters(
            model=item.irt.model, a=e["a"], b=e["b"], c=e["c"], steps=e["steps"], max_score=item.irt.max_score
        )
        irt.calibration.CopyFrom(
            item_pb2.IrtCalibration(
                run_id=run_id,
                sample_size=e["sample_size"],
                se_a=e["se_a"],
                se_b=e["se_b"],
                se_c=e["se_c"],
                se_steps=e["se_steps"],
                population_mean=self.population_mean,
                population_sd=self.population_sd,
                method=METHOD,
            )
        )
        return irt


@dataclass
class CalibrationSummary:
    run_id: str
    responses: int
    sessions: int
    pretest_items: int
    dry_run: bool
    min_responses: int
    proposals: list[Proposal] = field(default_factory=list)
    # Item id -> responses so far, below the minimum.
    too_few: dict[str, int] = field(default_factory=dict)
    proposed: int = 0

    def describe(self) -> str:
        head = "calibration (dry run, nothing written)" if self.dry_run else "calibration"
        line = (
            f"{head} run {self.run_id}: {self.responses} responses from {self.sessions} section sittings with "
            f"pretest items; {self.pretest_items} pretest items: {len(self.proposals)} calibrated, "
            f"{len(self.too_few)} not yet calibratable (fewer than {self.min_responses} responses)"
        )
        return line if self.dry_run else f"{line}; proposed for review {self.proposed}"


class _Sittings:
    """Keeps the responses of each (session, section) that holds a pretest response (or every one); drops the
    others as the export streams by (its sessions come together), so that memory grows with the sample only."""

    def __init__(self, *, every_sitting: bool = False) -> None:
        self.every_sitting = every_sitting
        self.kept: list[Administration] = []
        self.responses = 0
        self._current = ""
        self._buffer: list[Administration] = []

    def add(self, record: Administration) -> None:
        if record.session_id != self._current:
            self.flush()
            self._current = record.session_id
        self._buffer.append(record)

    def flush(self) -> None:
        sections = {r.section for r in self._buffer if r.pretest or self.every_sitting}
        kept = [r for r in self._buffer if r.section in sections]
        self.kept.extend(kept)
        self.responses += len(kept)
        self._buffer = []


async def export_sittings(services: Services, *, every_sitting: bool = False) -> list[Administration]:
    """The exported responses of every section sitting that holds a pretest item (or of every sitting), read
    again if dropped."""

    async def attempt(metadata: tuple[tuple[str, str], ...], _seconds: float) -> list[Administration]:
        sittings = _Sittings(every_sitting=every_sitting)
        with progress("reading responses", unit="response") as bar:
            call = services.scoring.ExportResponses(
                scoring_service_pb2.ExportResponsesRequest(), metadata=metadata
            )
            async for record in call:
                sittings.add(
                    Administration(record.session_id, record.section, record.item_id, record.score, record.pretest)
                )
                bar.update()
        sittings.flush()
        return sittings.kept

    return await services.call("session_service", "ExportResponses", attempt)


async def fetch_items(services: Services, item_ids: Sequence[str]) -> dict[str, item_pb2.Item]:
    """The FULL items at their current revision: today's parameters are the operational scale."""
    found: dict[str, item_pb2.Item] = {}
    for start in range(0, len(item_ids), MAX_BATCH_GET):
        request = item_service_pb2.BatchGetItemsRequest(
            items=[item_service_pb2.ItemRef(item_id=i) for i in item_ids[start : start + MAX_BATCH_GET]],
            view=item_pb2.ITEM_VIEW_FULL,
        )

        async def attempt(
            metadata: tuple[tuple[str, str], ...], seconds: float, request: Any = request
        ) -> item_service_pb2.BatchGetItemsResponse:
            reply: item_service_pb2.BatchGetItemsResponse = await services.items.BatchGetItems(
                request, metadata=metadata, timeout=seconds
            )
            return reply

        reply = await services.call("item_service", "BatchGetItems", attempt)
        found.update((item.item_id, item) for item in reply.items)
    return found


def model_of(item: item_pb2.Item) -> tuple[str, int, bool]:
    """(model, highest score, c held at 0) of a pretest item, as its author declared them when pretesting it."""
    if item.irt.model == item_pb2.IRT_MODEL_GPCM:
        return "GPCM", len(item.irt.steps), True
    # An open item (no options to guess among) was declared with c = 0 and keeps it.
    return "3PL", 1, item.irt.c == 0


def section_inputs(
    records: Iterable[Administration], items: dict[str, item_pb2.Item]
) -> dict[int, tuple[np.ndarray[Any, Any], list[PretestData], float]]:
    """Per section: each sitting's operational log-likelihood on the grid (the anchor), the pretest items' data,
    and the median slope of the operational items (the centre of the slope prior)."""
    sittings: dict[tuple[int, str], list[Administration]] = {}
    for record in records:
        if record.score >= 0:
            sittings.setdefault((record.section, record.session_id), []).append(record)
    result: dict[int, tuple[np.ndarray[Any, Any], list[PretestData], float]] = {}
    for section in sorted({key[0] for key in sittings}):
        keys = sorted(key for key in sittings if key[0] == section)
        anchor = np.zeros((len(keys), len(GRID)))
        responses: dict[str, tuple[list[int], list[int]]] = {}
        slopes: list[float] = []
        for row, key in enumerate(keys):
            for record in sittings[key]:
                item = items.get(record.item_id)
                if item is None:
                    continue
                if record.pretest:
                    if item.status == item_pb2.ITEM_STATUS_PRETEST and item.irt.model in SCORED_MODELS:
                        persons, scores = responses.setdefault(record.item_id, ([], []))
                        persons.append(row)
                        scores.append(min(record.score, model_of(item)[1]))
                elif item.irt.model in SCORED_MODELS:
                    anchor[row] += ScoredItem.of(item, record.score).log_likelihood
                    slopes.append(item.irt.a)
        pretest = []
        for item_id in sorted(responses):
            model, categories, fixed_c = model_of(items[item_id])
            persons, scores = responses[item_id]
            pretest.append(
                PretestData(
                    item_id=item_id,
                    model="GPCM" if model == "GPCM" else "3PL",
                    categories=categories,
                    persons=np.array(persons, dtype=np.intp),
                    scores=np.array(scores, dtype=np.intp),
                    fixed_c=fixed_c,
                )
            )
        if pretest:
            result[section] = (anchor, pretest, float(np.median(slopes)) if slopes else 1.0)
    return result


def run_id_of(records: Sequence[Administration], items: dict[str, item_pb2.Item], min_responses: int) -> str:
    """Same responses, same parameters of the items they touch, same settings: same run id."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMULA_VERSION, min_responses]).encode())
    for record in sorted(records):
        digest.update(json.dumps(list(record)).encode())
    for item_id in sorted(items):
        item = items[item_id]
        digest.update(item_id.encode() + item.irt.SerializeToString(deterministic=True) + bytes([item.status]))
    return "cal-" + digest.hexdigest()[:16]


def _estimate_dict(estimate: Estimate) -> dict[str, Any]:
    values = asdict(estimate)
    values["steps"], values["se_steps"] = list(estimate.steps), list(estimate.se_steps)
    return values


def print_proposals(proposals: Sequence[Proposal], too_few: dict[str, int]) -> None:
    say("item_id\tsection\tn\ta (se)\tb (se)\tc (se)\tsteps")
    for p in proposals:
        e = p.estimate
        steps = " ".join(f"{s:.3f}" for s in e["steps"])
        say(
            f"{p.item_id}\t{p.section}\t{e['sample_size']}\t{e['a']:.3f} ({e['se_a']:.3f})\t"
            f"{e['b']:.3f} ({e['se_b']:.3f})\t{e['c']:.3f} ({e['se_c']:.3f})\t{steps}"
        )
    for item_id, count in sorted(too_few.items()):
        say(f"{item_id}\tnot yet calibratable: {count} responses")


async def propose(services: Services, item: item_pb2.Item, proposal: Proposal, run_id: str) -> None:
    request = item_service_pb2.ProposeItemParametersRequest(
        item_id=item.item_id, irt=proposal.irt(item, run_id), run_id=run_id
    )

    async def attempt(metadata: tuple[tuple[str, str], ...], seconds: float) -> item_pb2.Item:
        reply: item_pb2.Item = await services.items.ProposeItemParameters(
            request, metadata=metadata, timeout=seconds
        )
        return reply

    try:
        await services.call("item_service", "ProposeItemParameters", attempt)
    except grpc.aio.AioRpcError as error:
        raise JobError(
            f"item_service refused the proposal for {item.item_id}: {error.code().name} {error.details()}"
        ) from error


def estimate_sections(
    records: Iterable[Administration],
    items: dict[str, item_pb2.Item],
    *,
    min_responses: int,
    done: Callable[[], object] | None = None,
) -> dict[int, Calibration]:
    """Each section's calibration of its PRETEST items from the exported responses: the job's estimation step
    without the services (the validation runs it on simulated responses). `done` is called after each section."""
    results = {}
    for section, (anchor, pretest, median_a) in section_inputs(records, items).items():
        result = calibrate(anchor, pretest, min_responses=min_responses, a_prior_median=median_a)
        if not result.converged:
            log.warning("section %s: EM stopped after %d cycles without converging", section, result.cycles)
        results[section] = result
        if done is not None:
            done()
    return results


async def compute(services: Services, *, min_responses: int, dry_run: bool) -> CalibrationSummary:
    records = await export_sittings(services)
    ids = sorted({r.item_id for r in records})
    items = await fetch_items(services, ids)
    sections = {r.section for r in records if r.pretest}
    with progress("calibrating", unit="section", total=len(sections)) as bar:
        results = estimate_sections(records, items, min_responses=min_responses, done=bar.update)
    summary = CalibrationSummary(
        run_id=run_id_of(records, items, min_responses),
        responses=len(records),
        sessions=len({(r.session_id, r.section) for r in records}),
        pretest_items=sum(len(result.estimates) + len(result.too_few) for result in results.values()),
        dry_run=dry_run,
        min_responses=min_responses,
    )
    for section, result in results.items():
        summary.too_few.update(result.too_few)
        summary.proposals.extend(
            Proposal(
                item_id=e.item_id,
                section=item_pb2.Section.Name(item_pb2.Section.ValueType(section)),
                estimate=_estimate_dict(e),
                population_mean=result.population_mean,
                population_sd=result.population_sd,
            )
            for e in result.estimates
        )
    return summary


async def run_calibrate(
    services: Services, *, min_responses: int, dry_run: bool, state_file: StateFile
) -> CalibrationSummary:
    """Export, calibrate per section, propose each item's estimates; an interrupted run resumes with the
    estimates it saved (the same run id), so a resumed run proposes exactly what the first one computed."""
    state = None if dry_run else state_file.load()
    if state is not None and not state.get("completed"):
        try:
            summary = CalibrationSummary(
                run_id=str(state["run_id"]),
                responses=int(state["responses"]),
                sessions=int(state["sessions"]),
                pretest_items=int(state["pretest_items"]),
                dry_run=False,
                min_responses=int(state["min_responses"]),
                proposals=[Proposal(**p) for p in state["proposals"]],
                too_few={str(k): int(v) for k, v in state["too_few"].items()},
                proposed=int(state["proposed"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"--state-file {state_file.path} is damaged ({exc!r}); name another file") from exc
        log.info(
            "resuming run %s after %d of %d proposals", summary.run_id, summary.proposed, len(summary.proposals)
        )
    else:
        summary = await compute(services, min_responses=min_responses, dry_run=dry_run)
    if dry_run:
        print_proposals(summary.proposals, summary.too_few)
        return summary

    def checkpoint(*, completed: bool = False) -> None:
        state_file.save({**asdict(summary), "completed": completed})

    checkpoint()
    items = await fetch_items(services, [p.item_id for p in summary.proposals])
    with progress("proposing parameters", unit="item", total=len(summary.proposals)) as bar:
        bar.update(summary.proposed)
        for proposal in summary.proposals[summary.proposed :]:
            await propose(services, items[proposal.item_id], proposal, summary.run_id)
            summary.proposed += 1
            checkpoint()
            bar.update()
    print_proposals(summary.proposals, summary.too_few)
    checkpoint(completed=True)
    return summary


def default_state_file() -> Path:
    return Path(".scoring-jobs") / "calibrate.json"
