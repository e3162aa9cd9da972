"""Run writes: enqueue, cancel, re-run, and the sweeper that recovers runs nobody is working on."""
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.errors import NotFoundError
from config.sql import GroupInsert, built, insert_row, insert_rows
from logs.budget import check_wu_budget
from logs.models import RunStatus, RunTrigger, WorkflowRun, status_is
from workflows.models import Workflow
from workflows.selectors import runs_stale_q, version_definition

logger = logging.getLogger(__name__)

# Webhook calls outside a transaction write their runs together when they come at the same moment.
_run_inserts = GroupInsert(WorkflowRun)

_QUEUE_BY_TRIGGER = {
    RunTrigger.WEBHOOK: "interactive",
    RunTrigger.MANUAL: "interactive",
    RunTrigger.LIST: "bulk",
}


def queue_name(kind: str) -> str:
    """The Celery queue for a queue kind (interactive, default, bulk), with the deployment's prefix."""
    return f"{settings.QUEUE_PREFIX}{kind}"


def dispatch(run_id, queue: str, countdown: float | None = None, timeout_seconds: int | None = None) -> bool:
    """Send a run's task to the broker (False if it could not be sent); a broker that is down loses
    nothing, the sweeper resends. A run due now with a known timeout goes on its queue's list instead,
    when lists are enabled (workflows/run_lists.py)."""
    from workflows import run_lists
    from workflows.tasks import run_execute

    if not countdown and timeout_seconds and run_lists.enabled() and run_lists.push(run_id, queue, timeout_seconds):
        return True
    return _send(run_execute, [str(run_id)], queue, countdown, timeout_seconds, f"run {run_id}")


def send_drainer(queue: str, timeout_seconds: int, token: str) -> bool:
    """Send a message that starts a drainer of the list of `queue` and `timeout_seconds` (False if it
    could not be sent). It starts no run after ENGINE_ROOM_MESSAGE_SECONDS, and may wait the linger after it."""
    from workflows.tasks import runs_drain

    return _send(runs_drain, [queue, timeout_seconds, token], queue, None, timeout_seconds, f"a drainer of {queue}",
                 margin=settings.ENGINE_ROOM_MESSAGE_SECONDS + settings.ENGINE_ROOM_DRAINER_LINGER_SECONDS)


def dispatch_many(run_ids: list, queue: str, countdown: float | None, timeout_seconds: int) -> bool:
    """Send several runs in one message (dispatch for each when there is one); False if it could not be
    sent, and the sweeper resends them. `timeout_seconds` is their timeout (they share it)."""
    from workflows.tasks import run_execute_many

    if len(run_ids) == 1:
        return dispatch(run_ids[0], queue, countdown, timeout_seconds)
    # A message starts no run after ENGINE_ROOM_MESSAGE_SECONDS, so its limits are one run's and that.
    return _send(run_execute_many, [[str(run_id) for run_id in run_ids], queue, timeout_seconds], queue, countdown,
                 timeout_seconds, f"{len(run_ids)} runs", margin=settings.ENGINE_ROOM_MESSAGE_SECONDS)


def _send(task, args: list, queue: str, countdown: float | None, timeout_seconds: int | None, what: str,
          margin: float = 0.0) -> bool:
    # The run's timeout becomes Celery's soft time limit too, so even a step stuck in code that
    # never returns ends as a `timeout` failure (checked between steps as well).
    limits = ({"soft_time_limit": timeout_seconds + margin + 5, "time_limit": timeout_seconds + margin + 60}
              if timeout_seconds else {})
    try:
        task.apply_async(args=args, queue=queue_name(queue), countdown=countdown, **limits)
    except Exception:  # any broker/transport error: the rows are committed, the sweeper resends them
        logger.exception("Could not enqueue %s; the sweeper will retry", what)
        return False
    return True


def _messages(runs: list[tuple[WorkflowRun, int]]) -> list[list[tuple[WorkflowRun, int]]]:
    """Runs that start together (same queue, same not_before) grouped into messages: up to
    ENGINE_ROOM_RUNS_PER_MESSAGE each, and an eighth of a smaller group each (one run to a message below
    sixteen), so that a few runs due together still run side by side on the workers. Runs share a
    message only with runs of the same timeout, whose limits the message carries."""
    together: dict[tuple, list] = {}
    for run, timeout in runs:
        together.setdefault((run.queue, run.not_before, timeout), []).append((run, timeout))
    messages = []
    for group in together.values():
        size = max(1, min(settings.ENGINE_ROOM_RUNS_PER_MESSAGE, len(group) // 8))
        messages += [group[start:start + size] for start in range(0, len(group), size)]
    return messages


def _queued_run(
    *, workflow: Workflow, params: dict, trigger: str, draft: bool = False, request: dict | None = None,
    parent: WorkflowRun | None = None, caller: str = "", queue: str | None = None, not_before=None,
    idempotency_key: str = "", chain_length: int = 0, depth: int | None = None, dry_run: bool = False,
    run_id=None,
) -> tuple[WorkflowRun, int]:
    """An unsaved queued run of the live version (or the draft), and the timeout its message carries."""
    if draft:
        version, draft_definition = None, workflow.definition
    else:
        version, draft_definition = workflow.live_version, None
        if version is None:
            raise NotFoundError(f"Workflow {workflow.name!r} has no published version; publish it first.")
    if version is not None:
        # The published definition is cached per process, so this costs no query on the webhook path.
        definition = version_definition(version.id)
        timeout, max_concurrency = definition.timeout_seconds, definition.max_concurrency
    else:
        timeout, max_concurrency = draft_definition["timeout_seconds"], draft_definition.get("max_concurrency")
    run = built(
        WorkflowRun,
        workflow=workflow,
        workflow_name=workflow.name,
        version=version,
        draft_definition=draft_definition,
        trigger=trigger,
        queue=queue or _QUEUE_BY_TRIGGER.get(trigger, "default"),
        params=params,
        request=request,
        caller=caller,
        not_before=not_before,
        parent_run=parent,
        # By id: reading parent.root_run would load that row.
        root_run_id=(parent.root_run_id or parent.id) if parent else None,
        # A nested call or trigger cascade is one level deeper; a scheduled hop passes its depth on.
        depth=depth if depth is not None else (parent.depth + 1 if parent else 0),
        chain_length=chain_length,
        idempotency_key=idempotency_key,
        dry_run=dry_run,
        max_concurrency=max_concurrency or 0,
    )
    if run_id is not None:
        # A sync caller subscribes to its run's channel before the run exists.
        run.id = run_id
    return run, timeout


def run_enqueue(*, trigger: str, dispatch_on_commit: bool = True, together: bool = False, **fields) -> WorkflowRun:
    """Write a queued run of the live version (or the draft) and send its task once the write commits;
    `together` (outside a transaction only): in one INSERT with the runs other threads write meanwhile.

    `depth` defaults to the parent's + 1; a scheduled hop passes the parent's own depth, since a run
    that starts later is not nested in its parent (chain_length counts those hops)."""
    if trigger != RunTrigger.WORKFLOW:
        # Children and on_failure runs belong to a run already admitted; everything else is refused
        # once an enforced monthly WU budget is used up (no query when there is no budget).
        check_wu_budget()
    run, timeout = _queued_run(trigger=trigger, **fields)
    if together:
        _run_inserts.insert(run)
    else:
        insert_row(WorkflowRun, run)
    if dispatch_on_commit:
        not_before = run.not_before
        countdown = (not_before - timezone.now()).total_seconds() if not_before else None
        transaction.on_commit(lambda: dispatch(run.id, run.queue, countdown, timeout))
    return run


def runs_enqueue_many(*, specs: list[dict]) -> list[WorkflowRun]:
    """run_enqueue for many runs at once (the scheduler's dispatcher): one INSERT, and their messages
    sent once it commits, several runs to a message (_messages), with the countdown to their
    `not_before` if they have one. Each spec holds run_enqueue's arguments; none may be a draft."""
    if any(spec["trigger"] != RunTrigger.WORKFLOW for spec in specs):
        check_wu_budget()
    built = [_queued_run(**spec) for spec in specs]
    runs = [run for run, _ in built]
    insert_rows(WorkflowRun, runs)

    def send():
        now = timezone.now()
        for message in _messages(built):
            first = message[0][0]
            countdown = (first.not_before - now).total_seconds() if first.not_before else 0
            dispatch_many([run.id for run, _ in message], first.queue, countdown if countdown > 0 else None,
                          message[0][1])

    transaction.on_commit(send)
    return runs


def run_cancel(*, run: WorkflowRun) -> WorkflowRun:
    """Cancel a queued run at once; a running one stops before its next step."""
    if not run_cancel_queued(run_id=run.id):
        WorkflowRun.objects.filter(status_is(RunStatus.RUNNING), id=run.id).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def run_cancel_queued(*, run_id) -> bool:
    """Cancel a queued run (False when it is not queued, or is gone), and say so to whoever waits on it."""
    cancelled = WorkflowRun.objects.filter(status_is(RunStatus.QUEUED), id=run_id).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now(), error_code="cancelled",
        error="Cancelled before it started.",
    )
    if cancelled:
        from workflows.engine import announce_finished

        announce_finished(WorkflowRun.objects.get(id=run_id))
    return bool(cancelled)


def run_rerun(*, run: WorkflowRun, caller: str = "") -> WorkflowRun:
    """Start the same workflow again with the same parameters, as a new manual run."""
    if run.workflow is None:
        raise NotFoundError("The workflow of this run no longer exists.")
    with transaction.atomic():
        return run_enqueue(
            workflow=run.workflow,
            params=run.params,
            trigger=RunTrigger.MANUAL,
            draft=run.version_id is None,
            request=run.request,
            caller=caller or run.caller,
        )


def runs_sweep(*, batch_size: int = 500) -> dict[str, int]:
    """Resend runs whose lease expired (their worker died) or that sat queued past the threshold."""
    now = timezone.now()
    expired = list(
        WorkflowRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
        .values_list("id", "queue")[:batch_size]
    )
    if expired:
        WorkflowRun.objects.filter(
            id__in=[run_id for run_id, _ in expired], status=RunStatus.RUNNING, lease_expires_at__lt=now
        ).update(status=RunStatus.QUEUED, lease_expires_at=None, not_before=now, resends=0)
    stale = list(WorkflowRun.objects.filter(runs_stale_q(now)).values_list("id", "queue")[:batch_size])
    for run_id, queue in expired:
        dispatch(run_id, queue)
    # Only a message that was sent counts as a resend: while the broker is down the wait does not grow.
    sent = [run_id for run_id, queue in stale if dispatch(run_id, queue)]
    if sent:
        # The resend is the new starting point of the wait, and the next one waits twice as long.
        WorkflowRun.objects.filter(id__in=sent, status=RunStatus.QUEUED).update(
            not_before=now, resends=F("resends") + 1
        )
    if expired or stale:
        logger.warning("Sweeper resent %d expired and %d stale runs", len(expired), len(stale))
    return {"expired": len(expired), "stale": len(stale)}
