"""Every run and every step attempt, with timings, inputs, outputs, errors and workload units."""
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.lookups import Exact


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    TERMINATED = "terminated"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


FINISHED_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.TERMINATED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED}
)


# A run found by its id must be found by its primary key. Compared as an expression, the status cannot pick
# an index that leads with it: on a small table (a new install) a prepared statement's one plan for all
# values could cost such an index as cheap as the key, and a connection kept that plan as the table grew,
# every lookup then reading each entry of that status, live or dead (bench O41).
STATUS_IS_SQL = "(status || '') = %s"


def status_is(status: str) -> Exact:
    """The ORM's form of STATUS_IS_SQL: the run's status equals `status`, through no index of it."""
    return Exact(Func(F("status"), Value(""), template="(%(expressions)s)", arg_joiner=" || ",
                      output_field=models.CharField()), status)


class RunTrigger(models.TextChoices):
    WEBHOOK = "webhook"
    MANUAL = "manual"
    SCHEDULE = "schedule"
    LIST = "list"
    RECURRING = "recurring"
    RECORD = "record"
    WORKFLOW = "workflow"


class WorkflowRun(models.Model):
    """One execution of a workflow version; the row is the run's state, lease and log header."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # String references: logs never imports workflows (DESIGN.md, dependencies point one way).
    # Foreign keys whose lookups an index below already serves have none of their own: every index is
    # written again on each insert and on each change of status (docs/scaling.md).
    workflow = models.ForeignKey(
        "workflows.Workflow", null=True, on_delete=models.SET_NULL, related_name="runs", db_index=False
    )
    workflow_name = models.CharField(max_length=63)
    version = models.ForeignKey(
        "workflows.WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    # The definition executed, when it is the draft (test runs); published runs read it from `version`.
    draft_definition = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    queue = models.CharField(max_length=32, default="default")
    params = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    request = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    caller = models.CharField(max_length=200, blank=True, default="")
    error_code = models.CharField(max_length=32, blank=True, default="")
    error = models.TextField(blank=True, default="")
    current_step = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    not_before = models.DateTimeField(null=True, blank=True)
    # Deferred by its workflow's max_concurrency (not by a retry backoff): a finishing run resends it.
    waits_for_slot = models.BooleanField(default=False)
    # The definition's max_concurrency when the run was queued (0: none), so that the claim of an
    # unlimited run is one statement (workflows/engine.py, _claim).
    max_concurrency = models.PositiveIntegerField(db_default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # How often the sweeper has resent this queued run; each resend doubles the wait before the next
    # (workflows/services/runs.py, runs_sweep).
    resends = models.PositiveSmallIntegerField(db_default=0)
    # Incremented on every claim; a worker whose claim was taken over cannot commit another step.
    claim = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # Editor test runs may capture emails and outbound HTTP instead of sending them.
    dry_run = models.BooleanField(default=False)
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", db_index=False
    )
    root_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 db_index=False)
    depth = models.PositiveIntegerField(default=0)
    chain_length = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    wu = models.FloatField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["-created"], name="run_created"),
            models.Index(fields=["workflow", "-created"], name="run_workflow_created"),
            models.Index(fields=["status", "-created"], name="run_status_created"),
            # The sweeper's two questions, indexed only over the rows they can be about.
            models.Index(fields=["not_before", "created"], condition=Q(status="queued"), name="run_queued_due"),
            models.Index(fields=["lease_expires_at"], condition=Q(status="running"), name="run_running_lease"),
            # Most runs have no parent: only the children are indexed.
            models.Index(fields=["parent_run"], condition=Q(parent_run__isnull=False), name="run_parent"),
            models.Index(fields=["root_run"], condition=Q(root_run__isnull=False), name="run_root"),
            # The run list's filters (docs/logs.md): each filtered page is an index range, newest first.
            models.Index(fields=["workflow", "status", "-created"], name="run_workflow_status_created"),
            models.Index(fields=["version", "-created"], name="run_version_created"),
            models.Index(fields=["trigger", "-created"], name="run_trigger_created"),
        ]

    def __str__(self):
        return f"{self.workflow_name} {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class StepStatus(models.TextChoices):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class StepRun(models.Model):
    """One attempt of one step: its rendered input (secrets masked), output, error and timing."""

    # Looked up through steprun_unique_attempt, whose first column it is.
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps", db_index=False)
    index = models.PositiveIntegerField()
    key = models.CharField(max_length=63)
    action = models.CharField(max_length=63)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=StepStatus.choices)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    input = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    output = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    output_truncated = models.BooleanField(default=False)
    error_code = models.CharField(max_length=32, blank=True, default="")
    error = models.TextField(blank=True, default="")
    skipped_reason = models.CharField(max_length=500, blank=True, default="")
    wu = models.FloatField(default=0)

    class Meta:
        ordering = ["run", "index", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index", "attempt"], name="steprun_unique_attempt"),
        ]
        indexes = [
            # The event stream and "slowest steps of the last day" read steps by time, not by run.
            models.Index(fields=["-started_at"], name="step_started"),
            models.Index(fields=["action", "-started_at"], name="step_action_started"),
            models.Index(fields=["status", "-started_at"], name="step_status_started"),
        ]

    def __str__(self):
        return f"{self.run_id} #{self.index} {self.key} ({self.status})"


# Upper bounds (ms) of the duration histogram's buckets; the last bucket has no upper bound.
DURATION_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000)


def _empty_histogram() -> list[int]:
    return [0] * (len(DURATION_BUCKETS_MS) + 1)


class RunDailyStat(models.Model):
    """Runs rolled up per UTC day and workflow just before retention deletes them, so charts outlive runs."""

    day = models.DateField()
    workflow_name = models.CharField(max_length=63)
    succeeded = models.PositiveIntegerField(default=0)
    terminated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    wu = models.FloatField(default=0)
    duration_count = models.PositiveIntegerField(default=0)
    duration_sum_ms = models.FloatField(default=0)
    duration_max_ms = models.FloatField(default=0)
    # Counts per DURATION_BUCKETS_MS bucket: unlike a stored percentile, histograms add up across batches.
    duration_histogram = models.JSONField(default=_empty_histogram)

    class Meta:
        ordering = ["-day", "workflow_name"]
        constraints = [models.UniqueConstraint(fields=["day", "workflow_name"], name="run_daily_stat_unique")]

    def __str__(self):
        return f"{self.day} {self.workflow_name}"

    @property
    def runs(self) -> int:
        return self.succeeded + self.terminated + self.failed + self.cancelled + self.skipped


class FailureAlert(models.Model):
    """When a workflow's failure was last mailed to the admins: at most one alert per workflow per period."""

    workflow_name = models.CharField(max_length=63, unique=True)
    last_sent_at = models.DateTimeField()
    # A plain id, not a foreign key: retention may delete the run long before this row goes.
    last_run_id = models.UUIDField(null=True, blank=True)

    def __str__(self):
        return f"{self.workflow_name} alerted {self.last_sent_at:%Y-%m-%d %H:%M}"
