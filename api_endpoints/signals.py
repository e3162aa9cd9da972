"""Receivers: cache invalidation for the hot-path lookups (a saved or deleted workflow or token is
re-read), and the wake-up of sync callers when their run finishes."""
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from logs.models import RunTrigger
from logs.signals import run_answered, run_finished
from workflows.models import Workflow
from workflows.selectors import version_definition

from .models import ApiToken
from .selectors import cache_delete_many, cache_get, token_key, workflow_key, workflow_name_key
from .waiting import run_changed


def _forget(keys: list[str]) -> None:
    # Now, and again after commit: a request between the two could have cached the old row.
    cache_delete_many(keys)
    transaction.on_commit(lambda: cache_delete_many(keys))


@receiver(post_save, sender=Workflow, dispatch_uid="api_endpoints.workflow_saved")
@receiver(post_delete, sender=Workflow, dispatch_uid="api_endpoints.workflow_deleted")
def workflow_changed(sender, instance, **kwargs):
    keys = [workflow_key(instance.name), workflow_name_key(instance.pk)]
    previous_name = cache_get(workflow_name_key(instance.pk))
    if previous_name and previous_name != instance.name:
        # A rename: the old name must stop answering at once.
        keys.append(workflow_key(previous_name))
    _forget(keys)


@receiver(post_save, sender=ApiToken, dispatch_uid="api_endpoints.token_saved")
@receiver(post_delete, sender=ApiToken, dispatch_uid="api_endpoints.token_deleted")
def token_changed(sender, instance, **kwargs):
    _forget([token_key(instance.prefix)])


@receiver(m2m_changed, sender=ApiToken.workflows.through, dispatch_uid="api_endpoints.token_workflows")
def token_workflows_changed(sender, instance, **kwargs):
    if isinstance(instance, ApiToken):
        _forget([token_key(instance.prefix)])
    else:  # changed from the workflow's side: every token naming it
        prefixes = ApiToken.objects.filter(workflows=instance).values_list("prefix", flat=True)
        _forget([token_key(prefix) for prefix in prefixes])


@receiver(run_answered, dispatch_uid="api_endpoints.wake_answered_callers")
@receiver(run_finished, dispatch_uid="api_endpoints.wake_sync_callers")
def wake_sync_callers(sender, run, **kwargs):
    if run.trigger != RunTrigger.WEBHOOK:
        return  # only webhook calls wait for their run: no one listens on the others' channels
    if run.version_id is not None and version_definition(run.version_id).response != "sync":
        return  # an async call was answered 202 before its run started: a publish per run would wake no one
    # Runs in the worker that finished (or answered) the run; the waiting web process sleeps on this channel.
    # After commit: the message carries the committed state, and a caller woken without it reads the row.
    transaction.on_commit(lambda: run_changed(run))
