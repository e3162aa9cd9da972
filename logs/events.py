"""Bubble-style log events, derived from runs and steps when they are read (no extra rows on the hot path).

A run and its StepRuns already say everything: a step skipped with an `only_when` reason is a failed
condition, an `http_request` step is a request and (when it has an output) a response, and so on.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from .models import RunStatus, RunTrigger, StepRun, StepStatus, WorkflowRun

EVENT_TYPES = {
    "workflow_started": "Workflow started",
    "workflow_finished": "Workflow finished",
    "condition_passed": "Condition passed",
    "condition_failed": "Condition failed",
    "action_started": "Action started",
    "action_finished": "Action finished",
    "workflow_error": "Workflow error",
    "scheduled_task": "Scheduled task",
    "http_request": "HTTP request",
    "http_response": "HTTP response",
    "email_failed": "Email failed",
}
SCHEDULED_TRIGGERS = (RunTrigger.SCHEDULE, RunTrigger.LIST, RunTrigger.RECURRING)
CONDITION_REASON = "only_when was false"
_WorkflowVersion = WorkflowRun._meta.get_field("version").related_model


@dataclass
class Event:
    """One line of the event log."""

    at: datetime
    type: str
    workflow: str
    run_id: object
    message: str
    step_key: str = ""
    step_index: int | None = None
    status: str = ""
    # The stream pages by this (an indexed column), which may differ a little from `at`.
    sort_key: datetime | None = None

    @property
    def label(self) -> str:
        return EVENT_TYPES[self.type]


def _step_end(step: StepRun) -> datetime:
    return step.started_at + timedelta(milliseconds=step.duration_ms or 0)


def _http_request_text(step: StepRun) -> str:
    config = step.input if isinstance(step.input, dict) else {}
    return f"{str(config.get('method') or 'GET').upper()} {config.get('url', '')}".strip()


def _http_response_text(step: StepRun) -> str:
    output = step.output if isinstance(step.output, dict) else {}
    status = output.get("status") or output.get("status_code")
    return f"{status} from {_http_request_text(step)}" if status else f"answer to {_http_request_text(step)}"


def _step_events(step: StepRun, workflow: str, conditional: bool) -> list[Event]:
    """The events one step attempt stands for."""
    where = f"step {step.index + 1} '{step.key}' ({step.action})"
    common = {"workflow": workflow, "run_id": step.run_id, "step_key": step.key, "step_index": step.index}
    end = _step_end(step)
    if step.status == StepStatus.SKIPPED:
        if step.skipped_reason.startswith(CONDITION_REASON):
            return [Event(step.started_at, "condition_failed", message=f"{where}: {step.skipped_reason}",
                          status="skipped", **common)]
        return []
    events = []
    if conditional:
        events.append(Event(step.started_at, "condition_passed", message=f"{where}: only_when was true", **common))
    events.append(Event(step.started_at, "action_started", message=f"{where}, attempt {step.attempt}", **common))
    if step.action == "http_request":
        events.append(Event(step.started_at, "http_request", message=_http_request_text(step), **common))
        if step.status == StepStatus.SUCCEEDED:
            events.append(Event(end, "http_response", message=_http_response_text(step), **common))
    finished = f"{where} {step.status} in {step.duration_ms:,.0f} ms"
    if step.error:
        finished += f": {step.error}"
    events.append(Event(end, "action_finished", message=finished, status=step.status, **common))
    if step.action == "send_email" and step.status == StepStatus.FAILED:
        events.append(Event(end, "email_failed", message=f"{where}: {step.error}", status="failed", **common))
    return events


def _run_start_events(run: WorkflowRun, definition: dict | None) -> list[Event]:
    common = {"workflow": run.workflow_name, "run_id": run.id}
    events = []
    if run.trigger in SCHEDULED_TRIGGERS:
        events.append(Event(run.created, "scheduled_task", message=f"{run.trigger} run queued", **common))
    if run.started_at:
        caller = f" by {run.caller}" if run.caller else ""
        events.append(Event(run.started_at, "workflow_started",
                            message=f"{run.trigger} run started{caller}", **common))
        condition = (definition or {}).get("only_when")
        if run.status == RunStatus.SKIPPED and run.error.startswith(CONDITION_REASON):
            events.append(Event(run.started_at, "condition_failed", message=run.error, status="skipped", **common))
        elif condition:
            events.append(Event(run.started_at, "condition_passed",
                                message=f"only_when was true: {condition}", **common))
    return events


def _run_end_events(run: WorkflowRun) -> list[Event]:
    if not run.finished:
        return []
    # A run refused before it started (a trigger's depth limit) may have no finished_at.
    at = run.finished_at or run.created
    common = {"workflow": run.workflow_name, "run_id": run.id, "status": run.status}
    events = []
    if run.status == RunStatus.FAILED:
        events.append(Event(at, "workflow_error", message=f"{run.error_code}: {run.error}", **common))
    took = f" in {run.duration_ms:,.0f} ms" if run.duration_ms is not None else ""
    events.append(Event(at, "workflow_finished", message=f"{run.status}{took}", **common))
    return events


def run_events(*, run: WorkflowRun, steps: list[StepRun], definition: dict | None) -> list[Event]:
    """Every event of one run, in time order; `definition` tells which steps had a condition."""
    steps_defined = (definition or {}).get("steps") or []
    conditional = {index for index, step in enumerate(steps_defined) if isinstance(step, dict) and step.get("only_when")}
    events = _run_start_events(run, definition)
    for step in steps:
        events.extend(_step_events(step, run.workflow_name, step.index in conditional))
    events.extend(_run_end_events(run))
    order = list(EVENT_TYPES)
    # Stable: a step's "started" comes before its request, its response before "finished".
    return sorted(events, key=lambda event: (event.at, order.index(event.type) if event.type in (
        "workflow_started", "scheduled_task") else 50))


# --- The stream: newest events first, across runs ---------------------------------------------------
# Each event type is one indexed query, newest first, LIMIT n; the page merges them. Run events page
# by the run's `created` (indexed), step events by the step's `started_at` (indexed).


@dataclass(frozen=True)
class StreamFilters:
    types: tuple[str, ...]
    workflow: str | None = None
    since: datetime | None = None
    before: datetime | None = None


def _conditional_versions() -> tuple[set, dict]:
    """Published versions with a workflow-level only_when, and version → indexes of conditional steps."""
    with_condition, steps = set(), {}
    for version_id, definition in _WorkflowVersion.objects.values_list("id", "definition").iterator():
        definition = definition or {}
        if definition.get("only_when"):
            with_condition.add(version_id)
        indexes = [i for i, step in enumerate(definition.get("steps") or []) if isinstance(step, dict) and step.get("only_when")]
        if indexes:
            steps[version_id] = indexes
    return with_condition, steps


def _runs(filters: StreamFilters, limit: int, **conditions):
    runs = WorkflowRun.objects.defer("request", "response", "draft_definition", "params").filter(**conditions)
    if filters.workflow:
        runs = runs.filter(workflow_name=filters.workflow)
    if filters.since:
        runs = runs.filter(created__gte=filters.since)
    if filters.before:
        runs = runs.filter(created__lt=filters.before)
    return list(runs.order_by("-created")[:limit])


def _steps(filters: StreamFilters, limit: int, extra: Q | None = None, **conditions):
    steps = StepRun.objects.select_related("run").only(
        "run_id", "index", "key", "action", "attempt", "status", "started_at", "duration_ms", "input",
        "output", "error", "skipped_reason", "run__workflow_name", "run__version_id",
    ).filter(**conditions)
    if extra is not None:
        steps = steps.filter(extra)
    if filters.workflow:
        steps = steps.filter(run__workflow_name=filters.workflow)
    if filters.since:
        steps = steps.filter(started_at__gte=filters.since)
    if filters.before:
        steps = steps.filter(started_at__lt=filters.before)
    return list(steps.order_by("-started_at")[:limit])


def _with_key(events: list[Event], key: datetime) -> list[Event]:
    for event in events:
        event.sort_key = key
    return events


def event_stream(*, filters: StreamFilters, limit: int = 100) -> tuple[list[Event], datetime | None]:
    """The newest `limit` events of the chosen types, and the cursor for the next (older) page."""
    wanted = set(filters.types)
    batches: list[list[Event]] = []
    fetch = limit + 1  # one more than shown: whether there is an older page
    step_wanted = wanted & {"action_started", "action_finished", "http_request", "http_response", "email_failed",
                            "condition_passed", "condition_failed"}
    if wanted & {"workflow_started", "workflow_finished", "workflow_error", "scheduled_task", "condition_passed",
                 "condition_failed"}:
        queries = []
        if "workflow_started" in wanted:
            queries.append(_runs(filters, fetch, started_at__isnull=False))
        if "workflow_finished" in wanted:
            queries.append(_runs(filters, fetch, status__in=[s for s in RunStatus if s not in ("queued", "running")]))
        if "workflow_error" in wanted:
            queries.append(_runs(filters, fetch, status=RunStatus.FAILED))
        if "scheduled_task" in wanted:
            queries.append(_runs(filters, fetch, trigger__in=SCHEDULED_TRIGGERS))
        if "condition_failed" in wanted:
            queries.append(_runs(filters, fetch, status=RunStatus.SKIPPED, error__startswith=CONDITION_REASON))
        conditional_runs, conditional_steps = _conditional_versions() if "condition_passed" in wanted else (set(), {})
        if conditional_runs:
            passed = [RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.TERMINATED, RunStatus.FAILED, RunStatus.CANCELLED]
            queries.append(_runs(filters, fetch, version_id__in=conditional_runs, started_at__isnull=False,
                                 status__in=passed))
        seen = set()
        for runs in queries:
            for run in runs:
                if run.id in seen:
                    continue
                seen.add(run.id)
                definition = {"only_when": True} if run.version_id in conditional_runs else None
                events = [event for event in _run_start_events(run, definition) + _run_end_events(run)
                          if event.type in wanted]
                batches.append(_with_key(events, run.created))
    if step_wanted:
        queries = []
        if step_wanted & {"action_started", "action_finished"}:
            queries.append(_steps(filters, fetch, status__in=[StepStatus.SUCCEEDED, StepStatus.FAILED]))
        if "http_request" in step_wanted:
            queries.append(_steps(filters, fetch, action="http_request"))
        elif "http_response" in step_wanted:
            # Only a succeeded call has a response: every row fetched must yield an event (see the cut below).
            queries.append(_steps(filters, fetch, action="http_request", status=StepStatus.SUCCEEDED))
        if "email_failed" in step_wanted:
            queries.append(_steps(filters, fetch, action="send_email", status=StepStatus.FAILED))
        if "condition_failed" in step_wanted:
            queries.append(_steps(filters, fetch, status=StepStatus.SKIPPED, skipped_reason__startswith=CONDITION_REASON))
        if "condition_passed" in step_wanted:
            conditional_steps = _conditional_versions()[1]
            if conditional_steps:
                match = Q()
                for version_id, indexes in conditional_steps.items():
                    match |= Q(run__version_id=version_id, index__in=indexes)
                queries.append(_steps(filters, fetch, match, status__in=[StepStatus.SUCCEEDED, StepStatus.FAILED]))
        seen = set()
        for steps in queries:
            for step in steps:
                if step.pk in seen:
                    continue
                seen.add(step.pk)
                conditional = "condition_passed" in wanted and step.index in conditional_steps.get(step.run.version_id, ())
                events = [event for event in _step_events(step, step.run.workflow_name, conditional) if event.type in wanted]
                batches.append(_with_key(events, step.started_at))
    events = sorted((event for batch in batches for event in batch),
                    key=lambda event: (event.sort_key, event.at), reverse=True)
    if len(events) <= limit:
        return events, None
    # Cut at a whole sort key, so that the next page (strictly older keys) neither skips nor repeats one.
    cut = events[limit - 1].sort_key
    page = [event for event in events if event.sort_key >= cut]
    if len(page) > limit * 2:
        page = events[:limit]
    return page, cut
