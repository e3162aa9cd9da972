"""Reads of the workflows app: workflows, their parsed definitions (cached), secrets."""
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db.models import Q

from config.errors import NotFoundError
from datastore.models import DataType
from logs.models import RunStatus
from workflows import definition as definitions
from workflows.crypto import decrypt
from workflows.models import Secret, Workflow, WorkflowVersion


def workflow_get(*, name: str) -> Workflow:
    try:
        return Workflow.objects.select_related("live_version").get(name=name)
    except Workflow.DoesNotExist:
        raise NotFoundError(f"No workflow named {name!r}.") from None


def workflow_list():
    return Workflow.objects.select_related("live_version").order_by("name")


@lru_cache(maxsize=512)
def version_definition(version_id: int) -> definitions.Definition:
    """A published version's parsed definition; versions never change, so the cache needs no expiry."""
    version = WorkflowVersion.objects.only("definition").get(id=version_id)
    return definitions.parse(version.definition)


@lru_cache(maxsize=512)
def version_number(version_id: int) -> int:
    """A published version's number, for the run's scope (workflow.version); cached like its definition."""
    return WorkflowVersion.objects.values_list("number", flat=True).get(id=version_id)


def secret_reveal(name: str) -> str | None:
    """A secret's plain value, for the one expression that uses it; None when there is no such secret."""
    ciphertext = Secret.objects.filter(name=name).values_list("ciphertext", flat=True).first()
    if ciphertext is None:
        return None
    try:
        return decrypt(ciphertext)
    except InvalidToken:
        return None


def bundle_export(*, workflows=None) -> dict:
    """The bundle of data types and workflow drafts, ready to import elsewhere."""
    workflows = Workflow.objects.order_by("name") if workflows is None else workflows
    return {
        "format": definitions.FORMAT,
        "data_types": [{"name": dt.name, "fields": dt.fields} for dt in DataType.objects.order_by("name")],
        "workflows": [workflow.definition for workflow in workflows],
    }


def workflow_definition(workflow: Workflow, *, draft: bool = False) -> definitions.Definition:
    """What a new run of the workflow would execute: the live version's definition, or the draft's."""
    if draft:
        return definitions.parse(workflow.definition)
    if workflow.live_version_id is None:
        raise NotFoundError(f"Workflow {workflow.name!r} has no published version; publish it first.")
    return version_definition(workflow.live_version_id)


# Past this many resends the wait stops doubling (threshold × 2^10: about 17 hours at the default 60 s).
MAX_RESEND_DOUBLINGS = 10


def runs_stale_q(now) -> Q:
    """Queued runs the sweeper resends: waiting past the threshold since they were due (or last resent),
    the threshold doubling with each resend, so a run whose message is merely waiting behind a long
    backlog is resent once, then after 2, 4, 8 … thresholds, not once per threshold."""
    threshold = timedelta(seconds=settings.ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS)
    due = Q()
    for resends in range(MAX_RESEND_DOUBLINGS + 1):
        before = now - threshold * 2**resends
        waited = Q(not_before__lt=before) | Q(not_before__isnull=True, created__lt=before)
        count = Q(resends__gte=resends) if resends == MAX_RESEND_DOUBLINGS else Q(resends=resends)
        due |= count & waited
    return Q(status=RunStatus.QUEUED) & due
