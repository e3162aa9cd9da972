"""Record triggers: collect a transaction's record changes, then start one run per record per workflow on commit."""
import functools
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router, transaction

from config.errors import ApplicationError, ErrorCode
from config.sql import Compiled, compiled_once
from logs.models import RunStatus, RunTrigger, WorkflowRun
from workflows.models import Workflow

from .runs import calling_run, chain_description, run_write_finished

logger = logging.getLogger(__name__)


@dataclass
class Change:
    """What one record went through in one transaction: the first `before`, the last state, the net kind."""

    kind: str
    data_type: str
    record: dict
    before: dict | None
    parent: WorkflowRun | None


@dataclass
class TransactionChanges:
    """The on-commit callback of one transaction, holding its record changes by record id."""

    changes: dict[str, Change] = field(default_factory=dict)
    # Whether a data type has any trigger at all, asked once per transaction and type.
    watched: dict[str, bool] = field(default_factory=dict)

    done: bool = False

    def __call__(self):
        # Registered robust: a failure to start triggered runs is logged, never raised into the
        # commit of the change that caused it.
        self.done = True
        record_changes_commit(changes=list(self.changes.values()))


def _watched(data_type: str) -> bool:
    """Whether an enabled workflow is triggered by changes of this type (a transaction keeps a yes for its
    later changes), through a statement compiled once per connection wrapper (bench O27)."""
    db = connections[router.db_for_read(Workflow)]
    return bool(_watched_statement(db).rows(db, {"type": data_type}))


@functools.lru_cache(maxsize=16)
def _watched_statement(db) -> Compiled:
    queryset = (Workflow.objects.db_manager(db.alias).filter(enabled=True, trigger_type="type")
                .exclude(trigger_on="").order_by().values_list("id")[:1])
    return compiled_once(queryset, {"type": "type"})


def _pending(connection) -> TransactionChanges | None:
    # The collector lives in the connection's own list of on-commit callbacks, so a rollback
    # (which empties that list, or drops a savepoint's part of it) throws its changes away too.
    for _sids, func, _robust in connection.run_on_commit:
        if isinstance(func, TransactionChanges) and not func.done:
            return func
    return None


def record_change_collect(*, kind: str, record: dict, before: dict | None, data_type: str) -> None:
    """Note one record change of the current transaction (the receiver of datastore's record_changed)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        # Sent outside a transaction (the record services never do): the change is committed already.
        if _watched(data_type):
            record_changes_commit(changes=[Change(kind, data_type, record, before, calling_run())])
        return
    pending = _pending(connection)
    if pending is None:
        if not _watched(data_type):
            return
        pending = TransactionChanges(watched={data_type: True})
        transaction.on_commit(pending, robust=True)
    elif data_type not in pending.watched:
        pending.watched[data_type] = _watched(data_type)
    if not pending.watched[data_type]:
        return
    key = f"{data_type}:{record['id']}"
    seen = pending.changes.get(key)
    if seen is None:
        pending.changes[key] = Change(kind, data_type, record, before, calling_run())
        return
    # Once per record per transaction: the first `before` and the last state; a delete wins and
    # a record created in this transaction stays "created" (it had no before).
    seen.record = record
    if kind == "deleted":
        seen.kind, seen.before = "deleted", None
    elif seen.kind == "deleted":
        seen.kind = kind
    seen.parent = seen.parent or calling_run()


def _matching(changes: list[Change]) -> dict[tuple[str, str], list[Workflow]]:
    wanted = {(change.data_type, f"record_{change.kind}") for change in changes}
    found: dict[tuple[str, str], list[Workflow]] = {}
    for workflow in Workflow.objects.select_related("live_version").filter(
        enabled=True,
        live_version__isnull=False,
        trigger_type__in={data_type for data_type, _ in wanted},
        trigger_on__in={on for _, on in wanted},
    ):
        found.setdefault((workflow.trigger_type, workflow.trigger_on), []).append(workflow)
    return found


def record_changes_commit(*, changes: list[Change]) -> list[WorkflowRun]:
    """Start the runs a committed transaction's changes trigger: live version, params record and before."""
    from workflows.services.runs import run_enqueue

    if not changes:
        return []
    matching = _matching(changes)
    limit = settings.ENGINE_ROOM_MAX_CALL_DEPTH
    runs = []
    with transaction.atomic():
        for change in changes:
            for workflow in matching.get((change.data_type, f"record_{change.kind}"), []):
                params = {"record": change.record, "before": change.before}
                parent = change.parent
                caller = f"record_{change.kind} {change.data_type} {change.record['id']}"
                chain_length = parent.chain_length if parent else 0
                if parent is not None and parent.depth + 1 > limit:
                    # A cascade (a trigger changing what triggers it): written failed, so the
                    # loop is visible in the log rather than silently dropped.
                    runs.append(run_write_finished(
                        workflow=workflow, params=params, trigger=RunTrigger.RECORD, parent=parent,
                        caller=caller, chain_length=chain_length, status=RunStatus.FAILED,
                        error_code=ErrorCode.DEPTH_LIMIT,
                        error=f"Call depth {parent.depth + 1} exceeds MAX_CALL_DEPTH={limit}: "
                              f"{chain_description(parent, workflow.name)} (record trigger {caller}).",
                    ))
                    continue
                try:
                    with transaction.atomic():
                        runs.append(run_enqueue(
                            workflow=workflow, params=params, trigger=RunTrigger.RECORD, parent=parent,
                            caller=caller, chain_length=chain_length,
                        ))
                except ApplicationError as exc:  # refused (e.g. a WU budget used up): the others still start
                    logger.warning("Record trigger %s of %s not started: %s", workflow.name, caller, exc.message)
    return runs
