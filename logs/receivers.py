"""Receivers of logs.signals, connected in LogsConfig.ready()."""
import logging

from django.db import transaction
from django.dispatch import receiver

from .alerts import failure_alert_decide
from .models import WorkflowRun
from .signals import run_finished

logger = logging.getLogger(__name__)


@receiver(run_finished, dispatch_uid="logs.failure_alert")
def failure_alert_on_run_finished(sender, run: WorkflowRun, **kwargs) -> None:
    """A failed run claims its workflow's alert for the period; the email goes out from a task."""
    if not failure_alert_decide(run):
        return
    from .tasks import failure_alert_send

    # SMTP may take seconds: not in the worker that runs workflows, and only once the claim is committed.
    transaction.on_commit(lambda: failure_alert_send.delay(str(run.id)))
