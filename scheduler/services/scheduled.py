"""One-off scheduled runs and batches over a list: write, pause, resume, cancel, dispatch, recount."""
import functools
import logging
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from itertools import batched

from django.conf import settings
from django.db import connection, connections, router, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from config.errors import ApplicationError, NotFoundError, ParameterError, ValidationError
from datastore.types import CoercionError, coerce_value
from logs.models import RunStatus, RunTrigger, WorkflowRun
from scheduler.models import Batch, ScheduledRun, ScheduledRunStatus
from workflows.models import Workflow

from .runs import next_chain_length, run_write_finished

logger = logging.getLogger(__name__)

BULK_CHUNK = 2000
_WAITING = (ScheduledRunStatus.PENDING, ScheduledRunStatus.PAUSED)


# --- Parameters -----------------------------------------------------------------------------


def live_definition(workflow: Workflow):
    """The definition a run of workflow would execute now; NotFoundError when disabled or unpublished."""
    from workflows.selectors import workflow_definition

    if not workflow.enabled:
        raise NotFoundError(f"Workflow {workflow.name!r} is disabled.")
    return workflow_definition(workflow)


def stored_params(parameters, values: dict) -> dict:
    """Coerced values with records kept as their ids: they are resolved afresh when the run starts."""
    stored = {}
    for parameter in parameters:
        if parameter.name not in values:
            continue
        value = values[parameter.name]
        if parameter.record_type and value is not None:
            value = [item["id"] for item in value] if parameter.list else value["id"]
        stored[parameter.name] = value
    return stored


def params_for_schedule(workflow: Workflow, params: dict) -> dict:
    """params checked against the workflow's live parameters now, as they will be stored."""
    from workflows.parameters import coerce_params

    definition = live_definition(workflow)
    return stored_params(definition.parameters, coerce_params(definition.parameters, params or {}, source="json"))


# --- One-off schedules ----------------------------------------------------------------------


@transaction.atomic
def scheduled_run_create(
    *,
    workflow: Workflow,
    params: dict,
    due_at: datetime,
    parent: WorkflowRun | None = None,
    caller: str = "",
) -> ScheduledRun:
    """A run of workflow's live version at due_at; a run that schedules it becomes its parent in the chain."""
    chain_length = next_chain_length(parent, workflow.name)
    return ScheduledRun.objects.create(
        workflow=workflow,
        workflow_name=workflow.name,
        params=params_for_schedule(workflow, params),
        due_at=due_at,
        trigger=RunTrigger.SCHEDULE,
        parent_run=parent,
        chain_length=chain_length,
        caller=caller,
    )


def _waiting(ids) -> QuerySet[ScheduledRun]:
    ids = list(ids)
    for value in ids:
        try:
            uuid.UUID(str(value))
        except ValueError:
            raise ValidationError("Invalid scheduled run id.", fields={"id": f"{value!r} is not an id"}) from None
    return ScheduledRun.objects.filter(id__in=ids)


def scheduled_runs_cancel(*, ids) -> int:
    """Cancel pending or paused scheduled runs, and those the dispatcher sent ahead of their due time
    whose run has not started; returns how many were cancelled (started ones stay)."""
    rows, now = _waiting(ids), timezone.now()
    cancelled = rows.filter(status__in=_WAITING).update(status=ScheduledRunStatus.CANCELLED, cancelled_at=now)
    return cancelled + _cancel_sent_ahead(rows, now)


def _cancel_sent_ahead(rows: QuerySet[ScheduledRun], now: datetime) -> int:
    """Cancel the rows among `rows` that the dispatcher sent ahead of their due time and whose run has not
    started (never one queued again after it ran: a retry's backoff also sets not_before); how many."""
    from workflows.services.runs import run_cancel_queued

    ahead = rows.filter(status=ScheduledRunStatus.DISPATCHED, run__status=RunStatus.QUEUED,
                        run__not_before__gt=now, run__started_at__isnull=True)
    cancelled = 0
    for row_id, run_id in ahead.values_list("id", "run_id"):
        if run_cancel_queued(run_id=run_id):
            ScheduledRun.objects.filter(id=row_id).update(status=ScheduledRunStatus.CANCELLED, cancelled_at=now)
            cancelled += 1
    return cancelled


def scheduled_runs_pause(*, ids) -> int:
    """Hold pending scheduled runs past their due time until resumed; returns how many were paused."""
    return _waiting(ids).filter(status=ScheduledRunStatus.PENDING).update(status=ScheduledRunStatus.PAUSED)


def scheduled_runs_resume(*, ids) -> int:
    """Let paused scheduled runs go; one already past its due time starts at the next dispatch."""
    return _waiting(ids).filter(status=ScheduledRunStatus.PAUSED).update(status=ScheduledRunStatus.PENDING)


# --- Schedule on a list ---------------------------------------------------------------------


def _item_value(item):
    # A record from an expression ({{ steps.find.records }}) is kept as its id.
    if isinstance(item, dict) and "id" in item and "type" in item:
        return item["id"]
    return item


@transaction.atomic
def batch_create(
    *,
    workflow: Workflow,
    items: list,
    item_param: str,
    params: dict | None = None,
    interval_seconds: float = 0,
    start_at: datetime | None = None,
    parent: WorkflowRun | None = None,
    caller: str = "",
) -> Batch:
    """One scheduled run per item (the item passed as item_param), spaced by interval_seconds, written in bulk."""
    limit = settings.ENGINE_ROOM_LIST_MAX_ITEMS
    if len(items) > limit:
        raise ValidationError(f"A list may hold at most {limit:,} items; got {len(items):,}.",
                              fields={"list": f"at most {limit} items (ENGINE_ROOM_LIST_MAX_ITEMS)"})
    if interval_seconds < 0:
        raise ValidationError("interval_seconds must not be negative.", fields={"interval_seconds": "must be 0 or more"})
    definition = live_definition(workflow)
    parameter = next((p for p in definition.parameters if p.name == item_param), None)
    if parameter is None:
        names = ", ".join(p.name for p in definition.parameters) or "none"
        raise ValidationError(f"Workflow {workflow.name!r} has no parameter {item_param!r}.",
                              fields={"item_param": f"not a parameter of {workflow.name} (it has: {names})"})
    chain_length = next_chain_length(parent, workflow.name)
    items = [_item_value(item) for item in items]
    # The shared parameters and the first item are checked in full (records resolved); every other
    # item only against its parameter's type, which is cheap for 100,000 of them, and a record
    # item's id is resolved when its run starts.
    shared = params_for_schedule(workflow, {**(params or {}), item_param: items[0]}) if items else {}
    shared.pop(item_param, None)
    field = {"type": parameter.type, "list": parameter.list}
    bad = {}
    for index, item in enumerate(items):
        try:
            coerce_value(field, item)
        except CoercionError as exc:
            bad[f"list[{index}]"] = str(exc)
            if len(bad) >= 5:
                break
    if bad:
        raise ParameterError(f"List items do not fit parameter {item_param!r} ({parameter.type}).", fields=bad)
    start_at = start_at or timezone.now()
    batch = Batch.objects.create(
        workflow=workflow, workflow_name=workflow.name, item_param=item_param, interval_seconds=interval_seconds,
        total=len(items), parent_run=parent, caller=caller,
        finished_at=timezone.now() if not items else None,
    )
    rows = (
        ScheduledRun(
            workflow=workflow,
            workflow_name=workflow.name,
            params={**shared, item_param: item},
            due_at=start_at + timedelta(seconds=index * interval_seconds),
            trigger=RunTrigger.LIST,
            batch=batch,
            item_index=index,
            parent_run=parent,
            chain_length=chain_length,
            caller=caller,
        )
        for index, item in enumerate(items)
    )
    for chunk in batched(rows, BULK_CHUNK):
        ScheduledRun.objects.bulk_create(chunk, batch_size=BULK_CHUNK)
    return batch


def batch_cancel(*, batch: Batch) -> int:
    """Cancel every item of a batch that has not started yet (sent ahead included); returns how many."""
    items, now = ScheduledRun.objects.filter(batch=batch), timezone.now()
    cancelled = items.filter(status__in=_WAITING).update(status=ScheduledRunStatus.CANCELLED, cancelled_at=now)
    return cancelled + _cancel_sent_ahead(items, now)


_OUTCOME_BY_RUN_STATUS = {
    RunStatus.SUCCEEDED: "done",
    RunStatus.TERMINATED: "done",
    RunStatus.SKIPPED: "done",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}


@functools.lru_cache(maxsize=32)
def _count_items(db, outcome: str, run: str) -> str:
    """PostgreSQL: the WITH items that mark a run's item counted and count it in its batch, closing the
    batch with its last item, conditional on the item not being counted yet; `run` is the SQL that picks the
    run's id. They replaced a read and a transaction of three updates for every item of a list."""
    qn = db.ops.quote_name
    item, batch = ScheduledRun._meta, Batch._meta
    count, finished = (qn(batch.get_field(name).column) for name in (outcome, "finished_at"))
    settled = " + ".join(qn(batch.get_field(name).column) for name in ("done", "failed", "cancelled"))
    return (
        f"batch_item AS (UPDATE {qn(item.db_table)} SET {qn(item.get_field('outcome').column)} = %s "
        f"WHERE {qn(item.get_field('run').column)} {run} AND {qn(item.get_field('outcome').column)} = '' "
        f"AND {qn(item.get_field('batch').column)} IS NOT NULL RETURNING {qn(item.get_field('batch').column)}), "
        # SET's right-hand sides read the row before this update: + 1 counts this item.
        f"batch_count AS (UPDATE {qn(batch.db_table)} SET {count} = {count} + 1, {finished} = CASE "
        f"WHEN {finished} IS NULL AND {qn(batch.get_field('total').column)} <= {settled} + 1 THEN %s "
        f"ELSE {finished} END WHERE id IN (SELECT {qn(item.get_field('batch').column)} FROM batch_item) RETURNING id)"
    )


def batch_item_ending(*, db, run: WorkflowRun) -> tuple[str, list] | None:
    """A list item's count as WITH items of the PostgreSQL statement that ends its run (the engine's
    ENDING_WRITES, reading the run's id from its `claimed`): no statement or commit of its own."""
    outcome = _OUTCOME_BY_RUN_STATUS.get(run.status)
    if run.trigger != RunTrigger.LIST or outcome is None or db.vendor != "postgresql":
        return None
    return _count_items(db, outcome, "IN (SELECT id FROM claimed)"), [outcome, run.finished_at or timezone.now()]


def batch_item_finished(*, run: WorkflowRun) -> bool:
    """Count a finished list run in its batch at once (receiver of logs.signals.run_finished, for the ends
    that did not count it themselves: batch_item_ending)."""
    outcome = _OUTCOME_BY_RUN_STATUS.get(run.status)
    if run.trigger != RunTrigger.LIST or outcome is None:
        return False
    db = transaction.get_connection()
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(f"WITH {_count_items(db, outcome, '= %s')} SELECT count(*) FROM batch_item",
                           [outcome, run.id, run.finished_at or timezone.now()])
            return cursor.fetchone()[0] > 0
    batch_id = (
        ScheduledRun.objects.filter(run_id=run.id, outcome="").exclude(batch=None)
        .values_list("batch_id", flat=True).first()
    )
    if batch_id is None:
        return False
    with transaction.atomic():
        # Conditional on the item not being counted yet: a repeated signal or the recount cannot
        # count it twice.
        if not ScheduledRun.objects.filter(run_id=run.id, outcome="").update(outcome=outcome):
            return False
        Batch.objects.filter(id=batch_id).update(**{outcome: F(outcome) + 1})
        Batch.objects.filter(id=batch_id, finished_at=None).filter(
            total__lte=F("done") + F("failed") + F("cancelled")
        ).update(finished_at=run.finished_at or timezone.now())
    return True


def batches_recount(*, now: datetime | None = None) -> int:
    """Settle what no signal reported (cancelled items, items that never started, missed signals),
    recount every open batch from its items, and close the batches with nothing left; returns how many.
    """
    now = now or timezone.now()
    changed = 0
    for batch in Batch.objects.filter(finished_at__isnull=True):
        unsettled = (
            ScheduledRun.objects.filter(batch=batch, outcome="")
            .filter(status__in=(ScheduledRunStatus.DISPATCHED, ScheduledRunStatus.CANCELLED))
            .values_list("id", "status", "run__status", "error")
        )
        by_outcome: dict[str, list] = {}
        for item_id, status, run_status, error in unsettled:
            outcome = _item_outcome(status, run_status, error)
            if outcome:
                by_outcome.setdefault(outcome, []).append(item_id)
        for outcome, ids in by_outcome.items():
            for chunk in batched(ids, BULK_CHUNK):
                ScheduledRun.objects.filter(id__in=chunk, outcome="").update(outcome=outcome)
        counts = Counter(dict(
            ScheduledRun.objects.filter(batch=batch).values_list("outcome").annotate(n=Count("id")).order_by()
        ))
        done, failed, cancelled = counts["done"], counts["failed"], counts["cancelled"]
        # Finished once every item is settled (items deleted with their workflow count as settled).
        finished = not counts[""]
        if (done, failed, cancelled) != (batch.done, batch.failed, batch.cancelled) or finished:
            Batch.objects.filter(id=batch.id).update(
                done=done, failed=failed, cancelled=cancelled, counted_at=now, finished_at=now if finished else None
            )
            changed += 1
    return changed


def _item_outcome(status: str, run_status: str | None, error: str) -> str:
    """How a dispatched or cancelled item ended, or "" while its run is unfinished."""
    if status == ScheduledRunStatus.CANCELLED:
        return "cancelled"
    if run_status is None:
        # No run: it could not start (error), or its log was deleted by retention after it ran.
        return "failed" if error else "done"
    return _OUTCOME_BY_RUN_STATUS.get(run_status, "")


# --- Dispatch -------------------------------------------------------------------------------


def scheduled_runs_dispatch(*, now: datetime | None = None, batch_size: int | None = None,
                            budget_seconds: float | None = None) -> int:
    """Turn due scheduled runs into queued runs, a batch of rows per transaction; returns how many."""
    batch_size = batch_size or settings.ENGINE_ROOM_DISPATCH_BATCH_SIZE
    budget = settings.ENGINE_ROOM_DISPATCH_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    started = time.monotonic()
    total, full = 0, set()
    while True:
        claimed, dispatched = _dispatch_batch(now or timezone.now(), batch_size, full,
                                              timedelta(seconds=settings.ENGINE_ROOM_DISPATCH_AHEAD_SECONDS))
        total += dispatched
        if claimed < batch_size or time.monotonic() - started > budget:
            return total


def _claim(until: datetime, size: int, exclude_workflows: set) -> list[ScheduledRun]:
    due = ScheduledRun.objects.filter(status=ScheduledRunStatus.PENDING, due_at__lte=until).exclude(
        workflow_id__in=exclude_workflows
    ).order_by("due_at", "id")
    if connection.features.has_select_for_update_skip_locked:
        # Concurrent dispatchers (a slow tick overlapping the next) take disjoint rows.
        return list(due.select_for_update(skip_locked=True, of=("self",))[:size])
    # SQLite: no row locks; a conditional update with this dispatcher's token is the claim.
    token = uuid.uuid4()
    ids = list(due.values_list("id", flat=True)[:size])
    ScheduledRun.objects.filter(id__in=ids, status=ScheduledRunStatus.PENDING).update(claim_token=token)
    return list(ScheduledRun.objects.filter(claim_token=token, status=ScheduledRunStatus.PENDING).order_by("due_at"))


def _free_slots(workflows: dict[int, Workflow]) -> dict[int, int | None]:
    """How many more runs each workflow may have active now (None: no max_concurrency)."""
    from workflows.selectors import workflow_definition

    limits = {}
    for workflow in workflows.values():
        limit = None
        if workflow.live_version_id is not None:
            limit = workflow_definition(workflow).document.get("max_concurrency")
        if limit:
            active = WorkflowRun.objects.filter(
                workflow=workflow, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)
            ).count()
            limits[workflow.id] = max(0, limit - active)
        else:
            limits[workflow.id] = None
    return limits


def _dispatch_batch(now: datetime, size: int, full: set, ahead: timedelta = timedelta(0)) -> tuple[int, int]:
    """Claim up to size rows due by now + ahead and start their runs in the same transaction; a row not
    yet due is sent with its due time as the run's not_before, which Celery holds the task until
    (so it starts on time rather than up to a tick late). (claimed, dispatched)."""
    from workflows.services.runs import runs_enqueue_many

    with transaction.atomic():
        rows = _claim(now + ahead, size, full)
        if not rows:
            return 0, 0
        workflows = {
            w.id: w for w in Workflow.objects.select_related("live_version").filter(id__in={r.workflow_id for r in rows})
        }
        parents = {
            run.id: run for run in WorkflowRun.objects.filter(id__in={r.parent_run_id for r in rows} - {None})
        }
        slots = _free_slots(workflows)
        admitted = []
        for row in rows:
            free = slots[row.workflow_id]
            if free is not None:
                if free <= 0:
                    # max_concurrency: leave it pending (and overdue); this dispatcher moves on.
                    full.add(row.workflow_id)
                    continue
                slots[row.workflow_id] = free - 1
            admitted.append(row)
        coerced = _coerced_params(admitted, workflows)
        started, dispatched_rows, starting = timezone.now(), [], []
        for row in admitted:
            row.run = None
            try:
                spec = _run_spec(row, workflows[row.workflow_id], parents.get(row.parent_run_id), coerced[row.id])
            except Exception as exc:  # logged and marked on the row; never crash the loop (STYLE.md)
                logger.exception("Scheduled run %s could not start", row.id)
                row.error, spec = f"Not started: unexpected error {type(exc).__name__}: {exc}", None
            if spec is not None:
                if row.due_at > now:
                    spec["not_before"] = row.due_at
                starting.append((row, spec))
            row.status, row.dispatched_at, row.claim_token = ScheduledRunStatus.DISPATCHED, started, None
            dispatched_rows.append(row)
        if starting:
            try:
                # One INSERT for the batch's runs, their messages sent once it commits.
                runs = runs_enqueue_many(specs=[spec for _, spec in starting])
            except ApplicationError as exc:  # refused by the engine for all (e.g. a WU budget used up)
                for row, _ in starting:
                    row.error = f"Not started: {exc.message}"
            else:
                for (row, _), run in zip(starting, runs, strict=True):
                    row.run = run
        _mark_dispatched(dispatched_rows, started)
    return len(rows), len(dispatched_rows)


def _mark_dispatched(rows: list[ScheduledRun], when: datetime) -> None:
    """Mark rows dispatched, with their runs: on PostgreSQL one UPDATE over two arrays (ids and runs);
    elsewhere one UPDATE for what they share and a CASE only over the runs. The error of the rare row
    that could not start is written apart. A CASE over five columns of 500 rows took Django longer to
    build than the runs took to write."""
    if not rows:
        return
    db = connections[router.db_for_write(ScheduledRun)]
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(_dispatched_statement(db), [
                ScheduledRunStatus.DISPATCHED, when, [row.id for row in rows], [row.run_id for row in rows],
            ])
    else:
        ScheduledRun.objects.filter(id__in=[row.id for row in rows]).update(
            status=ScheduledRunStatus.DISPATCHED, dispatched_at=when, claim_token=None
        )
        started = [row for row in rows if row.run_id is not None]
        if started:
            ScheduledRun.objects.bulk_update(started, ["run"])
    failed = [row for row in rows if row.error]
    if failed:
        ScheduledRun.objects.bulk_update(failed, ["error"])


@functools.lru_cache(maxsize=16)
def _dispatched_statement(db) -> str:
    """PostgreSQL: status, dispatched_at, no claim token and each row's run (NULL when none started)."""
    qn = db.ops.quote_name
    meta = ScheduledRun._meta
    table, column = qn(meta.db_table), (lambda name: qn(meta.get_field(name).column))
    return (
        f"UPDATE {table} SET {column('status')} = %s, {column('dispatched_at')} = %s, {column('claim_token')} = NULL, "
        f"{column('run')} = given.run FROM unnest(%s::uuid[], %s::uuid[]) AS given(id, run) "
        f"WHERE {table}.{column('id')} = given.id"
    )


def _coerced_params(rows: list[ScheduledRun], workflows: dict[int, Workflow]) -> dict:
    """Each row's parameters checked against its workflow's live version, by row id: the values, or the
    ApplicationError (a disabled or unpublished workflow, parameters that no longer fit) or unexpected
    error that keeps it from starting. A list's record items are read in one query per batch, not one
    per item: per item, they had cost the dispatcher more than the items' runs."""
    from workflows.parameters import coerce_params_many

    by_workflow: dict[int, list[ScheduledRun]] = {}
    for row in rows:
        by_workflow.setdefault(row.workflow_id, []).append(row)
    coerced = {}
    for workflow_id, group in by_workflow.items():
        try:
            definition = live_definition(workflows[workflow_id])
        except NotFoundError as exc:
            coerced.update((row.id, exc) for row in group)
            continue
        try:
            outcomes = coerce_params_many(definition.parameters, [row.params for row in group], source="json")
        except Exception:  # one row's unexpected error must not hold back the others: each on its own
            outcomes = []
            for row in group:
                try:
                    outcomes += coerce_params_many(definition.parameters, [row.params], source="json")
                except Exception as exc:
                    outcomes.append(exc)
        coerced.update((row.id, outcome) for row, outcome in zip(group, outcomes, strict=True))
    return coerced


def _run_spec(row: ScheduledRun, workflow: Workflow, parent: WorkflowRun | None, coerced) -> dict | None:
    """What a due row's run is made of, for the batch's one INSERT, from its coerced parameters
    (_coerced_params); None when it does not start: the row gets the reason, and parameters that no
    longer fit write a failed run of their own instead."""
    caller = row.caller or (f"batch {row.batch_id} item {row.item_index}" if row.batch_id else f"scheduled {row.id}")
    if isinstance(coerced, NotFoundError):
        row.error = f"Not started: {coerced.message}"
        return None
    if isinstance(coerced, ParameterError):
        detail = "; ".join(f"{key}: {message}" for key, message in coerced.fields.items())
        with transaction.atomic():  # a savepoint: this row's write must not break the batch's transaction
            row.run = run_write_finished(
                workflow=workflow, params=row.params, trigger=row.trigger, status=RunStatus.FAILED,
                error_code=coerced.code, error=f"Parameters do not fit the live version: {detail}",
                parent=parent, caller=caller, chain_length=row.chain_length,
                depth=parent.depth if parent else None,
            )
        return None
    if isinstance(coerced, Exception):
        raise coerced
    return {
        "workflow": workflow, "params": coerced, "trigger": row.trigger, "parent": parent, "caller": caller,
        "chain_length": row.chain_length, "depth": parent.depth if parent else None,
    }
