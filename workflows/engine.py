"""The engine: claims a run, runs its steps in order with one commit per step, and finishes it."""
import collections
import contextlib
import functools
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections, router, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.database import connection_lost
from config.errors import ActionError, ApplicationError, ErrorCode, NotFoundError, ParameterError
from config.sql import (
    EncodedJSON,
    built,
    columns_sql,
    converted,
    insert_rows,
    mark_written,
    recordset_sql,
    rows_json,
)
from logs.models import STATUS_IS_SQL, RunStatus, RunTrigger, StepRun, StepStatus, WorkflowRun, status_is
from logs.signals import run_answered, run_finished
from workflows import definition as definitions
from workflows import expressions
from workflows.actions import StepContext, registry
from workflows.models import Workflow

logger = logging.getLogger(__name__)


# The run whose step is executing, so that what the step causes (a record trigger, a scheduled run)
# joins its run tree: parent, root, depth and chain length come from here.
current_run: ContextVar[WorkflowRun | None] = ContextVar("current_run", default=None)


class LostClaim(Exception):
    """Another worker took the run over (our lease expired); stop without writing anything more."""


# How long a run waits before it resumes after this worker lost its database connection.
DATABASE_RETRY_SECONDS = 2


def definition_for(run: WorkflowRun) -> definitions.Definition:
    """The definition a run executes: its published version (cached) or the draft it was started with."""
    from workflows.selectors import version_definition

    if run.version_id is not None:
        return version_definition(run.version_id)
    return definitions.parse(run.draft_definition)


def _held(run: WorkflowRun):
    """The run's row while this worker's claim on it holds (an UPDATE of it matches nothing otherwise)."""
    return WorkflowRun.objects.filter(status_is(RunStatus.RUNNING), id=run.id, claim=run.claim)


def _lease_until():
    return timezone.now() + timedelta(seconds=settings.ENGINE_ROOM_LEASE_SECONDS)


@functools.lru_cache(maxsize=64)
def _claim_statement(db) -> tuple[str, list[str], list[tuple]]:
    """queued → running for a run with no max_concurrency, returning the whole row (SQLite ≥ 3.35 too):
    the SQL, the attribute per column, and what Django converts each column's value with. Built once
    per database connection wrapper (one per thread)."""
    qn = db.ops.quote_name
    fields = WorkflowRun._meta.concrete_fields
    sql = (
        f"UPDATE {qn(WorkflowRun._meta.db_table)} SET status = %s, claim = claim + 1, lease_expires_at = %s, "
        "started_at = COALESCE(started_at, %s), waits_for_slot = %s, resends = 0 "
        f"WHERE id = %s AND {STATUS_IS_SQL} AND max_concurrency = 0 AND (not_before IS NULL OR not_before <= %s) "
        f"RETURNING {', '.join(qn(field.column) for field in fields)}"
    )
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(WorkflowRun._meta.db_table)
        found = db.ops.get_db_converters(column) + column.get_db_converters(db)
        if found:
            converters.append((position, column, found))
    return sql, [field.attname for field in fields], converters


def _claim_params(db, run_id, now) -> list:
    """The parameters of _claim_statement for the run `run_id`, claimed at `now`."""
    when = WorkflowRun._meta.get_field("lease_expires_at")
    return [
        RunStatus.RUNNING, when.get_db_prep_value(_lease_until(), db), when.get_db_prep_value(now, db), False,
        WorkflowRun._meta.pk.get_db_prep_value(run_id, db), RunStatus.QUEUED,
        # A second of slack: a countdown message may arrive a moment before its not_before.
        when.get_db_prep_value(now + timedelta(seconds=1), db),
    ]


class NextRun:
    """The run a drainer (or a message of several runs) executes after `after`: taken (by `take`, from the
    run list or the message) just before the end of `after` is written, and on PostgreSQL claimed in that
    end's statement, a statement and a commit fewer per run (docs/engine.md, "Run lists"). The caller then
    executes `claimed`, or claims `run_id` itself when the end did not carry the claim (the end lost or
    failed, the run not claimable there, the step's transaction rolled back): taken, it is the caller's."""

    def __init__(self, after, take: Callable[[], str | None]):
        self.after = after
        self.take = take
        self.tried = False
        self.run_id: str | None = None
        self.claimed: WorkflowRun | None = None
        # Claimed by a statement inside the step's transaction: `claimed` once that has committed.
        self.uncommitted: WorkflowRun | None = None

    def committed(self) -> None:
        """The step's transaction that carried the claim has committed: the claim holds."""
        if self.uncommitted is not None:
            self.claimed, self.uncommitted = self.uncommitted, None

    def release(self) -> str | None:
        """The taken run's id, given up unstarted (an error escaped the run before it): its claim, if the
        end carried one, is undone, so that whoever gets the id next can claim it (a first attempt also
        loses the start time that claim gave it, which its timeout counts from)."""
        if self.claimed is not None:
            run = self.claimed
            undone = {"status": RunStatus.QUEUED, "lease_expires_at": None}
            if run.current_step == 0 and run.attempt == 1:
                undone["started_at"] = None
            try:
                _held(run).update(**undone)
            except Exception:  # the database away too: the run resumes once its lease expires
                logger.warning("Could not release the claim of run %s", self.run_id, exc_info=True)
            self.claimed = None
        return self.run_id


# The NextRun offered while the drainer executes the run before it.
next_run: ContextVar[NextRun | None] = ContextVar("next_run", default=None)


def _next_claim(db, run: WorkflowRun, changes: dict, own_blocks: int) -> tuple[NextRun, list] | None:
    """The drainer's NextRun whose claim rides on this write of `run`'s end, its run taken now, and the
    claim's parameters; None when there is none. Nothing about the next run may fail this end: an id
    that cannot be taken or claimed here is left to the drainer, which executes it as it would any.
    `own_blocks`: the atomic blocks the engine opened around the write (its step's transaction, or none);
    inside anyone else's the claim could stay uncommitted while the drainer believed it, so none rides."""
    offer = next_run.get()
    if (offer is None or offer.tried or str(offer.after) != str(run.id) or "finished_at" not in changes
            or db.vendor != "postgresql" or len(db.atomic_blocks) != own_blocks):
        return None
    offer.tried = True
    try:
        offer.run_id = offer.take()
        return (offer, _claim_params(db, offer.run_id, timezone.now())) if offer.run_id is not None else None
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # Redis away, or not a run's id: the drainer meets it again on its own
        logger.warning("Run %s could not take or claim the run after it", run.id, exc_info=True)
        return None


# Writes other apps add to the statement that ends a run on PostgreSQL (every end the engine writes: with
# step logs or without), by name: each a function (db, run) -> (SQL, params) or None, the SQL being
# data-modifying WITH items that read the ended run's id from `claimed` (so they write only if the end
# does) and commit with it. The scheduler counts a list item in its batch this way: a statement and a
# commit fewer per item (bench O28). Ends the engine does not write (a run cancelled or failed before it
# started) and SQLite leave those writes to run_finished's receivers.
ENDING_WRITES: dict[str, Callable[..., tuple[str, list] | None]] = {}


def ending_write(name: str):
    """Register an ENDING_WRITES function under `name`; a run whose end carried it lists the name in
    `run.written_at_end`, so that the receiver of run_finished that would write it again can skip."""
    def register(function):
        ENDING_WRITES[name] = function
        return function
    return register


@functools.lru_cache(maxsize=256)
def _progress_statement(db, columns: tuple[str, ...], with_rows: bool, extra: tuple[str, ...] = (),
                        claim_next: bool = False) -> str:
    """The UPDATE of a claimed run's columns (and `wu = wu + %s`) that holds only while this worker has
    the claim, returning cancel_requested; with_rows or `extra`, a data-modifying WITH that also inserts the
    step logs of one JSON parameter and runs the `extra` WITH items of ENDING_WRITES, only if the UPDATE
    matched, so that one statement, one round trip, is the whole transaction. Built once per connection
    wrapper, columns and extras: through the ORM it cost more than it ran."""
    qn = db.ops.quote_name
    meta = WorkflowRun._meta
    sets = ", ".join(f"{qn(meta.get_field(name).column)} = %s" for name in columns)
    update = (f"UPDATE {qn(meta.db_table)} SET {sets}, wu = wu + %s "
              f"WHERE id = %s AND claim = %s AND {STATUS_IS_SQL} RETURNING cancel_requested")
    if not with_rows and not extra and not claim_next:
        return update
    logged = (f", logged AS (INSERT INTO {qn(StepRun._meta.db_table)} ({columns_sql(db, StepRun)}) "
              f"SELECT step.* FROM claimed, {recordset_sql(db, StepRun, 'step')})") if with_rows else ""
    sql = f"WITH claimed AS ({update}, id){logged}{''.join(f', {item}' for item in extra)}"
    if not claim_next:
        return f"{sql} SELECT cancel_requested FROM claimed"
    # The next run is claimed only if this end is written: both commit, or neither.
    claim = _claim_statement(db)[0].replace(" RETURNING ", " AND EXISTS (SELECT 1 FROM claimed) RETURNING ", 1)
    return f"{sql}, following AS ({claim}) SELECT claimed.cancel_requested, following.* FROM claimed LEFT JOIN following ON true"


def _write_claimed(run: WorkflowRun, changes: dict, wu_add: float, rows: list[StepRun],
                   own_blocks: int = 0) -> bool | None:
    """Write `changes` (and add `wu_add`) to the run, and insert the step log `rows`, while this worker
    holds its claim; None when it does not (nothing written), else whether someone asked to cancel the run.
    PostgreSQL does it in one statement, with the ENDING_WRITES of an end; elsewhere the caller's
    transaction holds the two."""
    db = connections[router.db_for_write(WorkflowRun)]
    meta = WorkflowRun._meta
    params = [meta.get_field(name).get_db_prep_save(value, db) for name, value in changes.items()]
    params += [wu_add, meta.pk.get_db_prep_value(run.id, db), run.claim, RunStatus.RUNNING]
    together = _one_statement(db, rows)
    if together:
        params.append(rows_json(StepRun, rows))
    extra, names = [], []
    if db.vendor == "postgresql" and "finished_at" in changes:
        for name, write in ENDING_WRITES.items():
            found = write(db, run)
            if found is not None:
                extra.append(found[0])
                params += found[1]
                names.append(name)
    following = _next_claim(db, run, changes, own_blocks)
    if following is not None:
        following, claim_params = following
        params += claim_params
    with db.cursor() as cursor:
        cursor.execute(_progress_statement(db, tuple(changes), together, tuple(extra), following is not None), params)
        found = cursor.fetchone()
    if found is None:
        return None
    if following is not None and found[1] is not None:
        _, names_next, converters = _claim_statement(db)
        claimed = WorkflowRun.from_db(db.alias, names_next, converted(found[1:], converters, db))
        if own_blocks:
            # Inside the step's transaction the claim holds only once that commits (Execution calls
            # committed()); rolled back, the drainer finds no claimed run and claims it itself.
            following.uncommitted = claimed
        else:
            following.claimed = claimed
    if together:
        mark_written(rows, db)
    elif rows:
        insert_rows(StepRun, rows)
    # Every write says what it carried: an end written here and then rolled back (its step's transaction
    # failed to commit) must not leave the name behind for the end written after it.
    run.written_at_end = names
    return bool(found[0])


def _one_statement(db, rows: list) -> bool:
    """Whether a commit of these step logs is one statement (PostgreSQL's data-modifying WITH)."""
    return db.vendor == "postgresql" and bool(rows)


def _claim_fast(run_id, now) -> WorkflowRun | None:
    """The common claim in one statement, read straight from the cursor: a raw queryset's per-call
    setup cost as much as the statement itself."""
    db = connections[router.db_for_write(WorkflowRun)]
    sql, names, converters = _claim_statement(db)
    with db.cursor() as cursor:
        cursor.execute(sql, _claim_params(db, run_id, now))
        row = cursor.fetchone()
    if row is None:
        return None
    return WorkflowRun.from_db(db.alias, names, converted(row, converters, db))


def _claim(run_id) -> WorkflowRun | None:
    """queued → running with a fresh lease and claim number; None when someone else has it, it is done,
    not yet due, or its workflow's max_concurrency slots are all taken."""
    now = timezone.now()
    # The common case: an unlimited run that is queued and due.
    claimed = _claim_fast(run_id, now)
    if claimed is not None:
        return claimed
    # Everything else reads the row first: gone, claimed, finished, not yet due, or limited.
    run = WorkflowRun.objects.filter(id=run_id).first()
    if run is None or run.status != RunStatus.QUEUED or (run.not_before and run.not_before > now + timedelta(seconds=1)):
        return None
    limit = definition_for(run).max_concurrency
    if not limit:
        return _claim_row(run, now)
    with transaction.atomic():
        # Locking the workflow row serialises the count-then-claim of its runs across workers.
        Workflow.objects.select_for_update().filter(id=run.workflow_id).first()
        running = WorkflowRun.objects.filter(workflow_id=run.workflow_id, status=RunStatus.RUNNING).count()
        if running >= limit:
            # Wait for a slot: the run that finishes next resends this one (the sweeper is the safety net).
            WorkflowRun.objects.filter(status_is(RunStatus.QUEUED), id=run.id).update(
                waits_for_slot=True,
                not_before=now + timedelta(seconds=settings.ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS),
                resends=0,  # the sweeper's safety net starts over from this wait
            )
            return None
        return _claim_row(run, now)


def _lease_renewed(run: WorkflowRun) -> WorkflowRun | None:
    """The claimed run with a fresh lease; None if its claim is no longer this worker's."""
    lease = _lease_until()
    if not _held(run).update(lease_expires_at=lease):
        return None
    run.lease_expires_at = lease
    return run


def _claim_row(run: WorkflowRun, now) -> WorkflowRun | None:
    """The conditional update that makes a run ours; it fails if anyone claimed it since we read it."""
    lease = _lease_until()
    claimed = WorkflowRun.objects.filter(status_is(RunStatus.QUEUED), id=run.id, claim=run.claim).update(
        status=RunStatus.RUNNING,
        claim=F("claim") + 1,
        lease_expires_at=lease,
        started_at=Coalesce(F("started_at"), now),
        waits_for_slot=False,
        resends=0,
    )
    if not claimed:
        return None
    run.status, run.claim, run.lease_expires_at = RunStatus.RUNNING, run.claim + 1, lease
    run.started_at = run.started_at or now
    return run


def announce_finished(run: WorkflowRun) -> None:
    """Send logs.signals.run_finished; a receiver's error is logged, never the run's problem."""
    for receiver, result in run_finished.send_robust(sender=WorkflowRun, run=run):
        if isinstance(result, Exception):
            logger.error("run_finished receiver %r failed for run %s", receiver, run.id, exc_info=result)


def _release_slot(run: WorkflowRun) -> None:
    """A finished run of a max_concurrency workflow sends the oldest run waiting for a slot."""
    from workflows.services.runs import dispatch

    waiting = (
        WorkflowRun.objects.filter(workflow_id=run.workflow_id, status=RunStatus.QUEUED, waits_for_slot=True)
        .order_by("created")
        .values_list("id", "queue")
        .first()
    )
    if waiting and WorkflowRun.objects.filter(status_is(RunStatus.QUEUED), id=waiting[0], waits_for_slot=True).update(
        not_before=None, waits_for_slot=False
    ):
        dispatch(*waiting)


class _LeaseKeeper:
    """Renews the leases of the runs this process is executing, from one thread per process, so that a
    long step is not taken for a dead worker. One thread for all (not one per run): starting and joining
    a thread for every run cost more than a short run's own steps."""

    def __init__(self):
        self.lock = threading.Lock()
        self.held: dict = {}
        self.thread: threading.Thread | None = None
        self.pid = None

    @contextlib.contextmanager
    def holding(self, run: WorkflowRun):
        key = object()  # this execution's own entry (a run may be claimed again while an old pass ends)
        with self.lock:
            if self.pid != os.getpid():  # a forked child (Celery's pool) inherits the dict, not the thread
                self.pid, self.held, self.thread = os.getpid(), {}, None
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._renew, name="lease-keeper", daemon=True)
                self.thread.start()
            self.held[key] = (run, time.monotonic())
        try:
            yield
        finally:
            with self.lock:
                self.held.pop(key, None)

    def _renew(self):
        while True:
            interval = settings.ENGINE_ROOM_LEASE_SECONDS / 3
            time.sleep(min(interval, 1.0))
            now = time.monotonic()
            with self.lock:
                # Each run is renewed a third of a lease after it was claimed or last renewed.
                due = [(key, run) for key, (run, since) in self.held.items() if now - since >= interval]
                for key, run in due:
                    self.held[key] = (run, now)
            for _, run in due:
                try:
                    _held(run).update(lease_expires_at=_lease_until())
                except Exception:  # the next renewal tries again; the step itself is unaffected
                    logger.warning("Could not renew the lease of run %s", run.id, exc_info=True)
            if due:
                try:
                    # Renewals are rare (only steps longer than a third of the lease): no connection kept between.
                    connection.close()
                except Exception:  # the keeper must outlive any error: every long step depends on it
                    logger.warning("Lease keeper could not close its connection", exc_info=True)


_leases = _LeaseKeeper()


def run_execute(run_id, *, claimed: WorkflowRun | None = None, then: NextRun | None = None) -> WorkflowRun | None:
    """Execute a queued run if this worker can claim it (or `claimed`, claimed already); a message for a
    claimed or finished run does nothing. `then`: the drainer's next run, for the end to claim."""
    run = claimed
    if run is not None and timezone.now() >= run.lease_expires_at - timedelta(seconds=settings.ENGINE_ROOM_LEASE_SECONDS * 2 / 3):
        # Claimed by the end of the run before it, whose aftermath took a third of a lease: renew the lease
        # before the first step, which a lapsed one would let another worker run too.
        run = _lease_renewed(run)
    elif run is None:
        try:
            run = _claim(run_id)
        except (OperationalError, InterfaceError) as exc:
            if not connection_lost(exc):
                raise
            # The connection died while idle (workers skip Django's per-task health check, a round trip per
            # run, config/celery.py): the claim is the first statement, so it is the check; retry it on a new one.
            connections[router.db_for_write(WorkflowRun)].close()
            run = _claim(run_id)
    if run is None:
        return None
    token, offered = current_run.set(run), next_run.set(then)
    try:
        with _leases.holding(run):
            execution = Execution(run)
            masking = expressions.current_secrets.set(execution.secrets)
            try:
                return execution.execute()
            finally:
                expressions.current_secrets.reset(masking)
    finally:
        next_run.reset(offered)
        current_run.reset(token)


def run_execute_many(run_ids: list, queue: str, timeout_seconds: int) -> None:
    """Execute the runs one message carries, in turn. Those not started ENGINE_ROOM_MESSAGE_SECONDS after
    the message began go back to the queue, sent by a timer while the slow run goes on, so that an idle
    worker takes them rather than wait behind it. One run's unexpected error does not stop the others."""
    from workflows.services.runs import dispatch_many

    waiting = collections.deque(run_ids)
    lock = threading.Lock()

    def take() -> str | None:
        with lock:
            return waiting.popleft() if waiting else None

    def hand_back():
        with lock:
            rest = list(waiting)
            waiting.clear()
        if rest:
            dispatch_many(rest, queue, None, timeout_seconds)

    timer = threading.Timer(settings.ENGINE_ROOM_MESSAGE_SECONDS, hand_back)
    timer.daemon = True
    timer.start()
    following = None
    try:
        while True:
            claimed = None
            if following is not None and following.run_id is not None:
                # Taken by the last run's end (and claimed with it, unless that could not be done).
                run_id, claimed = following.run_id, following.claimed
            else:
                run_id = take()
                if run_id is None:
                    return
            following = NextRun(run_id, take)
            try:
                run_execute(run_id, claimed=claimed, then=following)
            except SoftTimeLimitExceeded:
                raise
            except Exception:  # logged; this run's lease or queued row brings the sweeper back to it
                logger.exception("Run %s, one of %s in a message, raised", run_id, len(run_ids))
    finally:
        timer.cancel()
        timer.join()  # a hand-back under way is sent before the message is acknowledged
        if following is not None and following.run_id is not None:
            # Taken by the end of the run an error escaped from, and not started: it goes back with the rest.
            owed = following.release()
            with lock:
                waiting.appendleft(owed)
        hand_back()  # what an escaping error left unstarted (nothing, when the loop ran out)


# What a log row's values are encoded with (anything JSON lacks as its str()), built once.
_LOG_ENCODER = json.JSONEncoder(default=str)


def _json_size_capped(value):
    """A value as stored in a log row: its JSON text if at most ENGINE_ROOM_STEP_OUTPUT_LIMIT characters,
    else a preview of it. The text is written as it is: decoding it to store it cost as much as encoding."""
    text = _LOG_ENCODER.encode(value)
    limit = settings.ENGINE_ROOM_STEP_OUTPUT_LIMIT
    if len(text) <= limit:
        return EncodedJSON(text), False
    return {"truncated": True, "size": len(text), "preview": text[:limit]}, True


class Execution:
    """One worker's pass over a claimed run, from its current step to the end (or a retry wait).

    A step whose action writes (a record, a message, a call out) commits its effects, its log row and
    the run's progress in one transaction. A step that only reads or computes (Action.writes False) is
    logged in memory and committed with the next write: the next writing step, the run's end, a
    response for a sync caller, or ENGINE_ROOM_PROGRESS_SECONDS after the last commit. A worker that
    dies in between loses nothing but that work, which the resumed run repeats (it changed nothing).
    """

    def __init__(self, run: WorkflowRun):
        from workflows.selectors import secret_reveal

        self.run = run
        self.definition = definition_for(run)
        self.secrets = expressions.SecretScope(secret_reveal)
        self.outputs = self._previous_outputs()
        elapsed = (timezone.now() - run.started_at).total_seconds()
        self.deadline = time.monotonic() + self.definition.timeout_seconds - elapsed
        # Logged but not yet committed: step rows, their workload units, a response for the caller.
        self.pending: list[StepRun] = []
        self.wu_pending = 0.0
        self.answer_pending = False
        self.committed_at = time.monotonic()
        # Inside the transaction of a step that writes (its effects, its log and the progress commit together).
        self.in_step_transaction = False

    # --- scope ----------------------------------------------------------------------------
    def _previous_outputs(self) -> dict:
        """Outputs of the steps an earlier claim already committed, for a resumed run's expressions."""
        if self.run.current_step == 0:
            return {}
        outputs = {}
        for key, status, output in (
            StepRun.objects.filter(run=self.run, index__lt=self.run.current_step)
            .order_by("index", "attempt")
            .values_list("key", "status", "output")
        ):
            outputs[key] = output if status == StepStatus.SUCCEEDED else None
        return outputs

    def scope(self) -> dict:
        from workflows.selectors import version_number

        run = self.run
        return {
            "params": run.params,
            "steps": self.outputs,
            "run": {"id": str(run.id), "trigger": run.trigger, "depth": run.depth, "started_at": run.started_at},
            "workflow": {"name": run.workflow_name,
                         "version": version_number(run.version_id) if run.version_id else "draft"},
            "now": timezone.now(),
            "request": run.request or {},
            "secrets": self.secrets,
            "record": run.params.get("record"),
            "before": run.params.get("before"),
        }

    # --- the run --------------------------------------------------------------------------
    def execute(self) -> WorkflowRun | None:
        run, definition = self.run, self.definition
        try:
            if run.current_step == 0 and run.attempt == 1:
                self.wu_pending += settings.ENGINE_ROOM_WU_COSTS["run"]
                if definition.only_when and not expressions.evaluate_condition(definition.only_when, self.scope()):
                    return self._finish(RunStatus.SKIPPED, "", f"only_when was false: {definition.only_when}")
            for step in definition.steps[run.current_step :]:
                # Noticed by the last commit (_commit): no query of its own.
                if run.cancel_requested:
                    return self._finish(RunStatus.CANCELLED, ErrorCode.CANCELLED, "Cancelled while running.")
                if time.monotonic() > self.deadline:
                    return self._timeout()
                outcome = self._run_step(step)
                if outcome is not None:
                    return outcome
            return self._finish(RunStatus.SUCCEEDED)
        except LostClaim:
            logger.warning("Run %s was claimed by another worker; this worker stops", run.id)
            return None
        except (OperationalError, InterfaceError) as exc:
            if not connection_lost(exc):
                raise
            logger.warning("Run %s lost its database connection at step %s; it will resume there",
                           run.id, run.current_step, exc_info=True)
            self._release_after_database_loss()
            return None
        except SoftTimeLimitExceeded:
            return self._timeout()
        except ApplicationError as exc:  # a run-level error outside any step (e.g. only_when)
            return self._finish(RunStatus.FAILED, exc.code, self.secrets.mask(exc.message))

    def _timeout(self):
        return self._finish(
            RunStatus.FAILED,
            ErrorCode.TIMEOUT,
            f"The run exceeded its timeout of {self.definition.timeout_seconds} s.",
        )

    def _run_step(self, step: definitions.Step):
        """Run one step attempt; None to go on, or the run as it stands when the loop must stop."""
        run = self.run
        action = registry.get(step.action)
        last = step.index == len(self.definition.steps) - 1
        context = StepContext(
            run=run,
            step=step,
            attempt=run.attempt,
            deadline=self.deadline,
            dry_run=run.dry_run,
            run_child=lambda name, params: self._run_child(step, name, params),
            secrets=self.secrets,
        )
        started, clock = timezone.now(), time.perf_counter()
        rendered = None
        scope = self.scope()
        before = self._snapshot()
        try:
            if step.only_when and not expressions.evaluate_condition(step.only_when, scope):
                self._log(step, context, started, clock, StepStatus.SKIPPED, None, None,
                          skipped_reason=f"only_when was false: {step.only_when}")
                self.outputs[step.key] = None
                self._commit_if_due(last)
                return None
            rendered = expressions.render(step.config, scope)
            config = action.validate_runtime(rendered)
            if not action.writes:
                output = action.run(config=config, context=context)
                self._log(step, context, started, clock, StepStatus.SUCCEEDED, rendered, output)
            elif action.transactional:
                with transaction.atomic():
                    self.in_step_transaction = True
                    try:
                        output = action.run(config=config, context=context)
                        self._log(step, context, started, clock, StepStatus.SUCCEEDED, rendered, output)
                        # The last step's commit is also the run's end: one transaction, not two.
                        self._commit(**(self._ending(RunStatus.SUCCEEDED) if last and not context.terminated else {}))
                    finally:
                        self.in_step_transaction = False
                offer = next_run.get()
                if offer is not None:  # the block committed: a next run's claim it carried holds
                    offer.committed()
            else:
                output = action.run(config=config, context=context)
                # The commit is a transaction of its own (one statement on PostgreSQL).
                self._log(step, context, started, clock, StepStatus.SUCCEEDED, rendered, output)
                self._commit(**(self._ending(RunStatus.SUCCEEDED) if last and not context.terminated else {}))
        except LostClaim:
            raise
        except SoftTimeLimitExceeded:
            self._restore(before)
            self._record_failure(step, context, started, clock, rendered,
                                 ActionError("The run's timeout was reached during this step.", code=ErrorCode.TIMEOUT),
                                 advance=False)
            raise
        except ApplicationError as exc:
            self._restore(before)
            return self._step_failed(step, context, started, clock, rendered, exc)
        except Exception as exc:  # a bug or an outside failure we did not foresee: logged, retryable
            self._restore(before)
            if connection_lost(exc):
                # Not the step's failure: nothing of it committed, and the run resumes at this step.
                raise
            # Its text may hold a secret the step revealed: logged masked, with the traceback's frames.
            logger.error("Step %s of run %s raised %s\n%s", step.key, run.id,
                         self.secrets.mask(f"{type(exc).__name__}: {exc}"),
                         "".join(traceback.format_tb(exc.__traceback__)))
            error = ActionError(f"Unexpected error: {type(exc).__name__}: {exc}", retryable=True)
            return self._step_failed(step, context, started, clock, rendered, error)
        self.outputs[step.key] = output
        if context.terminated:
            return self._finish(RunStatus.TERMINATED)
        if run.finished_at is not None:  # the step's commit ended the run
            return self._finished()
        if not action.writes:
            self._commit_if_due(last)
        return None

    def _step_failed(self, step, context, started, clock, rendered, error: ApplicationError):
        if time.monotonic() > self.deadline:
            # The step failed because the run's own time ran out (its HTTP timeout was capped by it).
            self._record_failure(step, context, started, clock, rendered, error, advance=False)
            return self._timeout()
        retry = self.definition.step_retry(step)
        retryable = getattr(error, "retryable", False)
        if retryable and self.run.attempt < retry.max_attempts:
            self._record_failure(step, context, started, clock, rendered, error, advance=False)
            return self._wait_and_retry(retry.backoff_seconds * 2 ** (self.run.attempt - 1))
        if step.on_error == "continue":
            self._record_failure(step, context, started, clock, rendered, error, advance=True)
            self.outputs[step.key] = {"error": self.secrets.mask(error.message), "error_code": str(error.code)}
            return None
        self._record_failure(step, context, started, clock, rendered, error, advance=False)
        return self._finish(
            RunStatus.FAILED,
            ErrorCode.STEP_FAILED,
            f"Step {step.index + 1} '{step.key}' ({step.action}) failed: {self.secrets.mask(error.message)}",
        )

    # --- writes ---------------------------------------------------------------------------
    _RUN_STATE = ("current_step", "attempt", "response", "wu", "cancel_requested", "status", "error_code", "error",
                  "finished_at", "duration_ms", "lease_expires_at")

    def _snapshot(self) -> tuple:
        """What a step attempt changes in memory before its commit succeeds (_log, _commit, _ending)."""
        run = self.run
        return (list(self.pending), self.wu_pending, self.answer_pending, self.committed_at,
                {name: getattr(run, name) for name in self._RUN_STATE})

    def _restore(self, snapshot: tuple) -> None:
        """Undo a failed step attempt in memory, as its rolled-back transaction undid it in the database:
        its failure is then logged with the rows still pending, at the step it failed."""
        self.pending, self.wu_pending, self.answer_pending, self.committed_at, fields = snapshot
        for name, value in fields.items():
            setattr(self.run, name, value)

    def _log(self, step, context, started, clock, status, rendered, output, *, skipped_reason="", error=None):
        """The step attempt's StepRun, kept for the next commit; a success or skip moves the run past it."""
        if status == StepStatus.SKIPPED:
            step_wu = 0.0
        elif status == StepStatus.FAILED:
            step_wu = settings.ENGINE_ROOM_WU_COSTS["step"] + context.wu
        else:
            step_wu = settings.ENGINE_ROOM_WU_COSTS["step"] + registry.get(step.action).wu_cost + context.wu
        if context.response is not None:
            # A sync caller may have its answer at the next commit, before the run's later steps.
            self.run.response = self.secrets.mask(context.response)
            self.answer_pending = True
        if context.captured:
            # Dry-run captures (emails and calls not sent) are part of what the editor shows.
            output = {"output": output, "captured": context.captured}
        stored_output, truncated = (_json_size_capped(self.secrets.mask(output, copy=False)) if output is not None
                                     else (None, False))
        self.pending.append(built(
            StepRun,
            run_id=self.run.id,
            index=step.index,
            key=step.key,
            action=step.action,
            attempt=self.run.attempt,
            status=status,
            started_at=started,
            duration_ms=(time.perf_counter() - clock) * 1000,
            input=_json_size_capped(self.secrets.mask(rendered, copy=False))[0] if rendered is not None else None,
            output=stored_output,
            output_truncated=truncated,
            skipped_reason=skipped_reason,
            error_code=str(error.code) if error is not None else "",
            error=self.secrets.mask(error.message) if error is not None else "",
            wu=step_wu,
        ))
        self.wu_pending += step_wu
        if status != StepStatus.FAILED:
            self.run.current_step, self.run.attempt = step.index + 1, 1

    def _commit_if_due(self, last: bool) -> None:
        """Commit what read-only steps logged when a caller waits for its answer or progress is overdue;
        the last step's rows wait for the run's end, a moment later."""
        if last:
            return
        if self.answer_pending or time.monotonic() - self.committed_at >= settings.ENGINE_ROOM_PROGRESS_SECONDS:
            self._commit()

    def _commit(self, **ending) -> None:
        """Write the pending StepRuns and the run's progress (and its end, when given), only while this
        worker holds the claim: on PostgreSQL one statement (its own transaction, or part of the caller's),
        elsewhere one UPDATE and one multi-row INSERT in a transaction. A cancel request is noticed here,
        for the loop to stop before the next step."""
        run = self.run
        changes = {"current_step": run.current_step, "attempt": run.attempt, **ending}
        answered = self.answer_pending
        if answered:
            changes["response"] = run.response
        db = connections[router.db_for_write(WorkflowRun)]
        two_statements = self.pending and not _one_statement(db, self.pending)
        with transaction.atomic(using=db.alias, savepoint=False) if two_statements else contextlib.nullcontext():
            cancel_requested = _write_claimed(run, changes, self.wu_pending, self.pending,
                                              own_blocks=1 if self.in_step_transaction else 0)
            if cancel_requested is None:
                raise LostClaim(str(run.id))
            if not ending:
                # Cancelled since the last commit (this one still commits): the loop stops before the next step.
                run.cancel_requested = cancel_requested
            if answered and not ending:
                # Outside a transaction on_commit runs at once: the statement has committed.
                transaction.on_commit(lambda: run_answered.send_robust(sender=WorkflowRun, run=run), using=db.alias)
        run.wu += self.wu_pending
        self.pending, self.wu_pending, self.answer_pending = [], 0.0, False
        self.committed_at = time.monotonic()

    def _record_failure(self, step, context, started, clock, rendered, error, *, advance: bool):
        """Commit the failed attempt's StepRun with what was pending; on_error continue moves past it."""
        self._log(step, context, started, clock, StepStatus.FAILED, rendered, None, error=error)
        if advance:
            self.run.current_step, self.run.attempt = step.index + 1, 1
        self._commit()

    def _wait_and_retry(self, backoff: float) -> WorkflowRun:
        """Put the run back in the queue with a countdown: a backoff is never slept inside a worker."""
        from workflows.services.runs import dispatch

        not_before = timezone.now() + timedelta(seconds=backoff)
        with transaction.atomic():
            updated = _held(self.run).update(
                status=RunStatus.QUEUED, attempt=F("attempt") + 1, not_before=not_before, lease_expires_at=None)
            if not updated:
                raise LostClaim(str(self.run.id))
            transaction.on_commit(
                lambda: dispatch(self.run.id, self.run.queue, backoff, self.definition.timeout_seconds)
            )
        self.run.refresh_from_db()
        return self.run

    def _release_after_database_loss(self) -> None:
        """Put the run back in the queue to resume at its last committed step; if the database is still
        away, the lease expires instead and the sweeper resends the run."""
        from workflows.services.runs import dispatch

        connection.close()  # the broken connection: the next query opens a new one
        try:
            released = _held(self.run).update(
                status=RunStatus.QUEUED, lease_expires_at=None,
                not_before=timezone.now() + timedelta(seconds=DATABASE_RETRY_SECONDS),
            )
        except (OperationalError, InterfaceError):
            logger.warning("Run %s stays with the sweeper: the database is still unavailable", self.run.id)
            return
        if released:
            dispatch(self.run.id, self.run.queue, DATABASE_RETRY_SECONDS, self.definition.timeout_seconds)

    def _ending(self, status, error_code="", error="") -> dict:
        """The columns that end the run, also set on the run object (only this worker writes it now)."""
        now = timezone.now()
        ending = {
            "status": status,
            "error_code": str(error_code),
            "error": error,
            "finished_at": now,
            "duration_ms": (now - self.run.started_at).total_seconds() * 1000,
            "lease_expires_at": None,
        }
        for name, value in ending.items():
            setattr(self.run, name, value)
        return ending

    def _finish(self, status, error_code="", error="") -> WorkflowRun:
        self._commit(**self._ending(status, error_code, error))
        return self._finished()

    def _finished(self) -> WorkflowRun:
        """What follows a committed end: a waiting run gets the slot, receivers hear, on_failure starts."""
        run = self.run
        if self.definition.max_concurrency:
            _release_slot(run)
        announce_finished(run)
        if run.status == RunStatus.FAILED and self.definition.on_failure:
            self._start_failure_workflow()
        return run

    def _start_failure_workflow(self) -> None:
        """n8n's error workflow: start `on_failure` with the failed run's id, workflow and error."""
        from workflows.services.runs import run_enqueue

        workflow = Workflow.objects.filter(name=self.definition.on_failure, enabled=True).first()
        if workflow is None or workflow.live_version_id is None:
            logger.warning("on_failure workflow %r of %s is missing or unpublished",
                           self.definition.on_failure, self.run.workflow_name)
            return
        params = {
            "failed_run_id": str(self.run.id),
            "failed_workflow": self.run.workflow_name,
            "error": self.run.error,
            "error_code": self.run.error_code,
        }
        try:
            with transaction.atomic():
                run_enqueue(workflow=workflow, params=params, trigger=RunTrigger.WORKFLOW, parent=self.run)
        except ApplicationError:  # the failed run is already stored; its error workflow is best effort
            logger.exception("Could not start on_failure workflow %r of run %s", workflow.name, self.run.id)

    # --- child runs -----------------------------------------------------------------------
    def _chain(self) -> str:
        names, run = [], self.run
        while run is not None and len(names) < settings.ENGINE_ROOM_MAX_CALL_DEPTH + 2:
            names.append(run.workflow_name)
            run = run.parent_run
        return " → ".join(reversed(names))

    def _run_child(self, step: definitions.Step, name: str, params: dict) -> dict:
        """run_workflow: start (or, after a worker died, pick up) the child run and execute it inline."""
        from workflows.parameters import coerce_params
        from workflows.selectors import workflow_definition
        from workflows.services.runs import run_enqueue

        run = self.run
        limit = settings.ENGINE_ROOM_MAX_CALL_DEPTH
        if run.depth + 1 > limit:
            raise ActionError(
                f"Call depth {run.depth + 1} exceeds MAX_CALL_DEPTH={limit}: {self._chain()} → {name}",
                code=ErrorCode.DEPTH_LIMIT,
            )
        workflow = Workflow.objects.select_related("live_version").filter(name=name).first()
        if workflow is None or not workflow.enabled:
            raise ActionError(f"No enabled workflow named {name!r}.")
        key = f"{run.id}:{step.index}"
        child = WorkflowRun.objects.filter(parent_run=run, idempotency_key=key).first()
        if child is None:
            draft = run.version_id is None
            try:
                target = workflow_definition(workflow, draft=draft)
                coerced = coerce_params(target.parameters, params, source="json")
            except NotFoundError as exc:
                raise ActionError(exc.message) from exc
            except ParameterError as exc:
                detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
                raise ActionError(f"Bad parameters for {name!r}: {detail}") from exc
            with transaction.atomic():
                child = run_enqueue(
                    workflow=workflow, params=coerced, trigger=RunTrigger.WORKFLOW, draft=draft, parent=run,
                    queue=run.queue, idempotency_key=key, dry_run=run.dry_run, dispatch_on_commit=False,
                )
        if not child.finished:
            run_execute(child.id)
        child.refresh_from_db()
        while not child.finished and time.monotonic() < self.deadline:
            # Another worker holds the child (this parent was resumed after a crash): wait for it.
            time.sleep(0.5)
            child.refresh_from_db()
        output = {"run_id": str(child.id), "status": child.status, "response": child.response}
        if child.status == RunStatus.FAILED:
            raise ActionError(f"Workflow {name!r} failed ({child.error_code}): {child.error}", extra=output)
        return output

