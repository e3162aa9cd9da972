"""Reads of the run log: the filtered run list with keyset pages and capped counts, one run and its tree."""
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from config.errors import NotFoundError

from .models import RunStatus, RunTrigger, StepRun, WorkflowRun

PAGE_SIZE = 50
# Counting every matching run would scan the whole table on each refresh; past this we say "10,000+".
COUNT_CAP = 10_000
# Columns the list never shows; leaving them out keeps a page of big webhook bodies cheap to read.
_LIST_DEFERRED = ("request", "response", "draft_definition")
# The models of `workflows`, reached through the foreign keys: logs refers to them, never imports them.
_Workflow = WorkflowRun._meta.get_field("workflow").related_model
_WorkflowVersion = WorkflowRun._meta.get_field("version").related_model


@dataclass(frozen=True)
class RunFilters:
    """What the run list is narrowed to; None or "" means no filter on that field."""

    workflow: str | None = None
    status: str | None = None
    trigger: str | None = None
    version: str | None = None  # a version number, or "draft"
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""
    parent: uuid.UUID | None = None
    # Looked up once from `workflow` and `version` (run_filters_resolve), so that the page and its
    # counts do not each query the workflows' tables again.
    resolved: bool = False
    workflow_id: int | None = None
    version_ids: tuple[int, ...] = ()

    def without_status(self) -> "RunFilters":
        return replace(self, status=None)


def workflow_names() -> list[str]:
    """Every workflow's name, for the filters."""
    return list(_Workflow.objects.order_by("name").values_list("name", flat=True))


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def run_filters_resolve(filters: RunFilters) -> RunFilters:
    """The filters with the workflow's and versions' ids looked up (one query each, when filtered by them)."""
    if filters.resolved:
        return filters
    workflow_id = None
    if filters.workflow:
        # An id, so that the planner sees `workflow_id = N` and uses the composite index.
        workflow_id = _Workflow.objects.filter(name=filters.workflow).values_list("id", flat=True).first()
    version_ids = ()
    if filters.version and filters.version != "draft":
        versions = _WorkflowVersion.objects.filter(number=int(filters.version))
        if workflow_id:
            versions = versions.filter(workflow_id=workflow_id)
        version_ids = tuple(versions.values_list("id", flat=True)[:1000])
    return replace(filters, resolved=True, workflow_id=workflow_id, version_ids=version_ids)


def run_filter(*, filters: RunFilters) -> QuerySet[WorkflowRun]:
    """Runs matching the filters, unordered; every equality filter has an index that ends in `created`."""
    filters = run_filters_resolve(filters)
    runs = WorkflowRun.objects.all()
    if filters.workflow:
        # A workflow deleted since keeps its runs under its name (without the index; rare).
        runs = runs.filter(workflow_id=filters.workflow_id) if filters.workflow_id else runs.filter(
            workflow_name=filters.workflow)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.trigger:
        runs = runs.filter(trigger=filters.trigger)
    if filters.version == "draft":
        runs = runs.filter(version__isnull=True)
    elif filters.version:
        runs = runs.filter(version_id__in=filters.version_ids)
    if filters.since:
        runs = runs.filter(created__gte=filters.since)
    if filters.until:
        runs = runs.filter(created__lte=filters.until)
    if filters.parent:
        runs = runs.filter(parent_run_id=filters.parent)
    if filters.q:
        text = Q(error__icontains=filters.q) | Q(params__icontains=filters.q) | Q(caller__icontains=filters.q)
        pasted_id = _as_uuid(filters.q)
        runs = runs.filter(text | Q(id=pasted_id) if pasted_id else text)
    return runs


def run_list(*, filters: RunFilters) -> QuerySet[WorkflowRun]:
    """Matching runs, newest first (ties broken by id, so keyset pages never skip or repeat a run)."""
    return (
        run_filter(filters=filters)
        .select_related("version")
        .defer(*_LIST_DEFERRED, "version__definition")
        .order_by("-created", "-id")
    )


@dataclass
class RunPage:
    """One page of the run list with the cursors to its neighbours (None: there is none)."""

    runs: list[WorkflowRun]
    older: str | None = None
    newer: str | None = None

    @property
    def in_flight(self) -> bool:
        return any(run.status in (RunStatus.QUEUED, RunStatus.RUNNING) for run in self.runs)


def _cursor(run: WorkflowRun) -> str:
    return f"{run.created.isoformat()}~{run.id}"


def _parse_cursor(text: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not text or "~" not in text:
        return None
    moment, _, run_id = text.rpartition("~")
    parsed, parsed_id = parse_datetime(moment.replace(" ", "+")), _as_uuid(run_id)
    return (parsed, parsed_id) if parsed and parsed_id else None


def run_page(*, filters: RunFilters, before: str | None = None, after: str | None = None,
             size: int | None = None) -> RunPage:
    """A page of runs older than `before` or newer than `after` (keyset: no OFFSET, no COUNT)."""
    size = size or PAGE_SIZE
    runs = run_list(filters=filters)
    older_than, newer_than = _parse_cursor(before), _parse_cursor(after)
    if newer_than:
        moment, run_id = newer_than
        rows = list(
            runs.filter(Q(created__gt=moment) | Q(created=moment, id__gt=run_id)).order_by("created", "id")[: size + 1]
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return RunPage(rows, older=_cursor(rows[-1]) if rows else None,
                       newer=_cursor(rows[0]) if rows and more_newer else None)
    if older_than:
        moment, run_id = older_than
        runs = runs.filter(Q(created__lt=moment) | Q(created=moment, id__lt=run_id))
    rows = list(runs[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return RunPage(rows, older=_cursor(rows[-1]) if more_older else None,
                   newer=_cursor(rows[0]) if older_than and rows else None)


@dataclass
class StatusCount:
    status: str
    count: int
    capped: bool

    @property
    def label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.capped else f"{self.count:,}"


def run_status_counts(*, filters: RunFilters, cap: int = COUNT_CAP) -> list[StatusCount]:
    """How many runs of each status match the other filters; each count stops at `cap` (an index range)."""
    runs = run_filter(filters=filters.without_status()).order_by()
    counts = []
    for status in RunStatus:
        # Newest first, as the page reads them: a walk down the (…, status, created) index that stops at the cap.
        count = runs.filter(status=status).order_by("-created").values("created")[: cap + 1].count()
        counts.append(StatusCount(status.value, min(count, cap), count > cap))
    return counts


def run_get(*, id) -> WorkflowRun:
    """One run with its version, workflow and tree neighbours."""
    run_id = _as_uuid(str(id))
    run = (
        WorkflowRun.objects.select_related("version", "workflow", "parent_run", "root_run").filter(id=run_id).first()
        if run_id else None
    )
    if run is None:
        raise NotFoundError(f"No run with id {id!r}; it may have been pruned by log retention.")
    return run


def run_steps(*, run: WorkflowRun) -> list[StepRun]:
    """Every step attempt of a run, in order."""
    return list(StepRun.objects.filter(run=run).order_by("index", "attempt"))


def run_definition(run: WorkflowRun) -> dict:
    """The definition document the run executed (published version or draft), as stored JSON."""
    if run.version_id is not None:
        return run.version.definition or {}
    return run.draft_definition or {}


def _is_failure_run_of(child: WorkflowRun, failed_id) -> bool:
    # The engine starts on_failure as a child of the failed run, with trigger "workflow", no
    # idempotency key (run_workflow children carry "<run id>:<step>") and failed_run_id set.
    return (
        child.trigger == RunTrigger.WORKFLOW
        and not child.idempotency_key
        and isinstance(child.params, dict)
        and child.params.get("failed_run_id") == str(failed_id)
    )


def on_failure_runs(*, run_ids) -> dict:
    """For failed runs, the on_failure run the engine started for each (by failed run id)."""
    if not run_ids:
        return {}
    children = (
        WorkflowRun.objects.filter(parent_run_id__in=run_ids, trigger=RunTrigger.WORKFLOW, idempotency_key="")
        .only("id", "parent_run_id", "workflow_name", "status", "trigger", "idempotency_key", "params", "created")
        .order_by("created")
    )
    return {child.parent_run_id: child for child in children if _is_failure_run_of(child, child.parent_run_id)}


@dataclass
class RunTree:
    """Where a run sits: the root and parent that started it, the runs it started, and failure links."""

    root: WorkflowRun | None
    parent: WorkflowRun | None
    children: list[WorkflowRun] = field(default_factory=list)
    more_children: bool = False
    failure_run: WorkflowRun | None = None  # the on_failure run this failed run started
    failed_run_id: str | None = None  # for an on_failure run: the run whose failure started it
    failed_run: WorkflowRun | None = None


CHILDREN_SHOWN = 50


def run_tree(*, run: WorkflowRun) -> RunTree:
    children = list(
        run.children.defer(*_LIST_DEFERRED).order_by("created", "id")[: CHILDREN_SHOWN + 1]
    )
    tree = RunTree(
        root=run.root_run if run.root_run_id and run.root_run_id != run.parent_run_id else None,
        parent=run.parent_run,
        children=children[:CHILDREN_SHOWN],
        more_children=len(children) > CHILDREN_SHOWN,
    )
    if run.status == RunStatus.FAILED:
        tree.failure_run = next((child for child in children if _is_failure_run_of(child, run.id)), None)
        if tree.failure_run is None and tree.more_children:
            tree.failure_run = on_failure_runs(run_ids=[run.id]).get(run.id)
    failed_id = run.params.get("failed_run_id") if isinstance(run.params, dict) else None
    if run.trigger == RunTrigger.WORKFLOW and failed_id and not run.idempotency_key:
        tree.failed_run_id = str(failed_id)
        if run.parent_run_id and str(run.parent_run_id) == str(failed_id):
            tree.failed_run = run.parent_run
    return tree
