"""One-off scheduled runs, batches over a list, and recurring events (the ledger beat's clock wakes)."""
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class ScheduledRunStatus(models.TextChoices):
    PENDING = "pending"
    PAUSED = "paused"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


class Batch(models.Model):
    """One schedule-on-a-list call: how many item runs it wrote, and how many have finished."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey("workflows.Workflow", null=True, on_delete=models.SET_NULL, related_name="+")
    workflow_name = models.CharField(max_length=63)
    item_param = models.CharField(max_length=63)
    interval_seconds = models.FloatField(default=0)
    total = models.PositiveIntegerField(default=0)
    # Item runs finished well (succeeded, terminated, skipped), badly (failed, or could not start),
    # or cancelled: counted as each run finishes (logs.signals.run_finished) and reconciled by a
    # periodic recount (scheduler.tasks.batches_recount) for what no signal reports.
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    parent_run = models.ForeignKey("logs.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    caller = models.CharField(max_length=200, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    counted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["finished_at", "-created"], name="batch_open")]

    def __str__(self):
        return f"{self.workflow_name} ×{self.total}"

    @property
    def settled(self) -> int:
        return self.done + self.failed + self.cancelled

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.settled / self.total))


class ScheduledRun(models.Model):
    """A run of a workflow due at a time: durable, listable, pausable and cancellable until dispatched."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="scheduled_runs")
    workflow_name = models.CharField(max_length=63)
    params = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=ScheduledRunStatus.choices, default=ScheduledRunStatus.PENDING)
    # "schedule" or "list": the trigger its WorkflowRun will carry.
    trigger = models.CharField(max_length=16, default="schedule")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="items")
    item_index = models.PositiveIntegerField(null=True, blank=True)
    # The run it became (set in the same transaction that marks it dispatched).
    run = models.ForeignKey("logs.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The run whose step scheduled it: the new run joins that run's tree, one link further down the chain.
    parent_run = models.ForeignKey("logs.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    chain_length = models.PositiveIntegerField(default=0)
    caller = models.CharField(max_length=200, blank=True, default="")
    # Why it could not start (e.g. its workflow was unpublished meanwhile), when dispatched without a run.
    error = models.TextField(blank=True, default="")
    # For a batch item, how it ended once counted in its batch: done, failed or cancelled ("" until then).
    # Set once, conditionally, so a finished run is never counted twice.
    outcome = models.CharField(max_length=16, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # SQLite has no FOR UPDATE SKIP LOCKED: there a dispatcher claims rows by writing its token.
    claim_token = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="scheduled_status_due"),
            models.Index(fields=["workflow", "status", "due_at"], name="scheduled_workflow_status"),
            models.Index(fields=["batch", "status"], name="scheduled_batch_status"),
            models.Index(fields=["batch", "outcome"], name="scheduled_batch_outcome"),
        ]

    def __str__(self):
        return f"{self.workflow_name} at {self.due_at:%Y-%m-%d %H:%M:%S} ({self.status})"


class MissedPolicy(models.TextChoices):
    CATCH_UP = "catch_up", "Run once to catch up"
    SKIP = "skip", "Skip"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip while the previous run is unfinished"
    ALLOW = "allow", "Allow"


class RecurringEvent(models.Model):
    """A workflow run on a frequency in a timezone; the row is the ledger of which slot fired last."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="recurring_events")
    name = models.CharField(max_length=100, blank=True, default="")
    params = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # As the definition format writes it: {"every", "unit"}, "daily" … "yearly", or {"cron"}.
    frequency = models.JSONField()
    timezone = models.CharField(max_length=63, default="UTC")
    start = models.DateTimeField()
    # The start as a wall-clock time in `timezone` (ISO, no offset): calendar slots repeat it.
    anchor = models.CharField(max_length=32)
    end = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    missed = models.CharField(max_length=16, choices=MissedPolicy.choices, default=MissedPolicy.CATCH_UP)
    overlap = models.CharField(max_length=16, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    # The ledger: the last slot taken (run or skipped) and the next one; next_slot null = no more fires.
    last_slot = models.DateTimeField(null=True, blank=True)
    next_slot = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey("logs.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    fire_count = models.PositiveIntegerField(default=0)
    # Why the last slot started no run (its workflow was disabled or unpublished), shown on the page.
    last_error = models.TextField(blank=True, default="")
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")
    created_by_run = models.ForeignKey("logs.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workflow__name", "created"]
        indexes = [models.Index(fields=["enabled", "next_slot"], name="recurring_enabled_next")]

    def __str__(self):
        return self.name or f"{self.workflow.name} ({self.id})"

    @property
    def finished(self) -> bool:
        return self.next_slot is None
