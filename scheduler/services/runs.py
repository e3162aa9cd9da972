"""Run-tree helpers for what the scheduler starts: the calling run, chain limits, runs that never execute."""
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import ActionError, ErrorCode
from logs.models import RunStatus, WorkflowRun
from workflows.models import Workflow

# How many workflow names an error message shows when it names a chain.
CHAIN_NAMES_SHOWN = 8


def calling_run() -> WorkflowRun | None:
    """The run whose step is executing in this thread, if any: what it causes joins its tree."""
    from workflows.engine import current_run

    return current_run.get()


def chain_description(run: WorkflowRun | None, then: str = "") -> str:
    """`a → b → c` for run and its ancestors (the last few), followed by `then`."""
    names, current = [], run
    while current is not None and len(names) <= CHAIN_NAMES_SHOWN:
        names.append(current.workflow_name)
        current = current.parent_run
    if len(names) > CHAIN_NAMES_SHOWN:
        names = names[:CHAIN_NAMES_SHOWN] + ["…"]
    names.reverse()
    if then:
        names.append(then)
    return " → ".join(names)


def next_chain_length(parent: WorkflowRun | None, target: str) -> int:
    """The chain length of a run that parent schedules; ActionError past MAX_CHAIN_LENGTH, naming the chain."""
    if parent is None:
        return 0
    length = parent.chain_length + 1
    limit = settings.ENGINE_ROOM_MAX_CHAIN_LENGTH
    if length > limit:
        root = parent.root_run_id or parent.id
        raise ActionError(
            f"Chain length {length} exceeds MAX_CHAIN_LENGTH={limit}: {chain_description(parent, target)} "
            f"(a workflow that keeps scheduling runs; chain started by run {root}).",
            code=ErrorCode.CHAIN_LIMIT,
        )
    return length


def run_write_finished(
    *,
    workflow: Workflow,
    params: dict,
    trigger: str,
    status: str,
    error: str,
    error_code: str = "",
    parent: WorkflowRun | None = None,
    caller: str = "",
    chain_length: int = 0,
    depth: int | None = None,
) -> WorkflowRun:
    """A run that is decided before it starts (skipped by a policy, failed by a limit): logged, never executed."""
    from workflows.engine import announce_finished
    from workflows.services.runs import run_enqueue

    run = run_enqueue(
        workflow=workflow, params=params, trigger=trigger, parent=parent, caller=caller,
        chain_length=chain_length, depth=depth, dispatch_on_commit=False,
    )
    now = timezone.now()
    WorkflowRun.objects.filter(id=run.id).update(
        status=status, error_code=str(error_code), error=error, finished_at=now, duration_ms=0
    )
    run.status, run.error_code, run.error, run.finished_at = status, str(error_code), error, now
    # Ended without executing, but ended all the same: alerts, sync waits and batch counts hear of it.
    transaction.on_commit(lambda: announce_finished(run))
    return run


def run_is_active(run: WorkflowRun | None) -> bool:
    return run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
