"""API tokens, idempotency keys of webhook calls, and the sample requests "Detect data" records."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A bearer credential: the clear `prefix` finds it, the SHA-256 `digest` of the whole token checks it.

    An admin token is good for every workflow and the whole management API; the others may only call
    the workflows listed in `workflows` and read their runs (DESIGN.md, "HTTP surface").
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, unique=True)
    # SHA-256, not a password hasher: tokens are long random strings checked on every call.
    digest = models.CharField(max_length=64)
    admin = models.BooleanField(default=True)
    workflows = models.ManyToManyField("workflows.Workflow", blank=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.name} (er_{self.prefix}_…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """A webhook call's idempotency key; a repeat within the window answers with `run` and starts nothing."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    run = models.ForeignKey("logs.WorkflowRun", null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # The constraint, not a read-then-write, is what makes two simultaneous deliveries start one run.
        constraints = [models.UniqueConstraint(fields=["workflow", "key"], name="idempotency_key_unique")]

    def __str__(self):
        return f"{self.workflow_id}:{self.key}"


class SampleRequest(models.Model):
    """The last request sent to a workflow's `/initialize` URL, with the parameters proposed from it."""

    workflow = models.OneToOneField("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    request = models.JSONField()
    parameters = models.JSONField(default=list)
    created = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"sample request of {self.workflow_id}"
