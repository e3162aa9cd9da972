"""Workflows (the editable draft), their published versions, and encrypted secrets."""
from django.conf import settings
from django.db import models


class Workflow(models.Model):
    """A named API workflow; `definition` is the validated draft, `live_version` what endpoints run."""

    name = models.CharField(max_length=63, unique=True)
    definition = models.JSONField()
    # Denormalised from the definition so that lookups (endpoint, triggers, lists) need no parsing.
    enabled = models.BooleanField(default=True)
    auth = models.CharField(max_length=16, default="token")
    trigger_on = models.CharField(max_length=32, blank=True, default="")
    trigger_type = models.CharField(max_length=63, blank=True, default="")
    live_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Bumped on every save, so that two editors saving the same draft get a conflict, not a silent loss.
    revision = models.PositiveIntegerField(default=1)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["trigger_type", "trigger_on"], name="workflow_trigger")]

    def __str__(self):
        return self.name


class WorkflowVersion(models.Model):
    """A frozen copy of a workflow's definition, made by publishing; runs execute one of these."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="version_number_unique")]

    def __str__(self):
        return f"{self.workflow.name} v{self.number}"


class Secret(models.Model):
    """A credential, encrypted at rest with the MultiFernet key list; decrypted only where used."""

    name = models.CharField(max_length=63, unique=True)
    ciphertext = models.BinaryField()
    description = models.CharField(max_length=200, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
