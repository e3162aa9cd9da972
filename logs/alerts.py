"""Failure alerts: an email to the admins when a live run fails, at most once per workflow per period."""
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from .models import RunStatus, WorkflowRun
from .services import failure_alert_claim

logger = logging.getLogger(__name__)


def alert_recipients() -> list[str]:
    """LOG_ALERT_EMAILS, or else every active superuser's email address."""
    if settings.LOG_ALERT_EMAILS:
        return list(settings.LOG_ALERT_EMAILS)
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def run_wants_alert(run: WorkflowRun) -> bool:
    """A failed run of a published version; editor test runs (drafts, dry runs) never page anyone."""
    return (
        settings.LOG_FAILURE_ALERTS
        and run.status == RunStatus.FAILED
        and run.version_id is not None
        and not run.dry_run
    )


def failure_alert_decide(run: WorkflowRun) -> bool:
    """True when this failure should be mailed: alerts are on, and it is the first of its period."""
    return run_wants_alert(run) and failure_alert_claim(workflow_name=run.workflow_name, run_id=run.id)


def _absolute(path: str) -> str:
    return settings.ENGINE_ROOM_BASE_URL.rstrip("/") + path


def failure_alert_send(*, run_id) -> bool:
    """Mail the alert for a failed run (already claimed); False when there is nobody to tell or no run."""
    run = WorkflowRun.objects.filter(id=run_id).first()
    recipients = alert_recipients()
    if run is None or not recipients:
        return False
    period = settings.LOG_ALERT_PERIOD_SECONDS
    since = timezone.now() - timedelta(seconds=period)
    failures = WorkflowRun.objects.filter(workflow_id=run.workflow_id, status=RunStatus.FAILED, created__gte=since)
    count = failures.count() if run.workflow_id else 1
    run_url = _absolute(reverse("logs-run", args=[run.id]))
    list_url = _absolute(f"{reverse('logs-page')}?workflow={run.workflow_name}&status=failed")
    minutes = max(1, round(period / 60))
    body = "\n".join([
        f"The workflow {run.workflow_name!r} failed.",
        "",
        f"Run:      {run.id}",
        f"Trigger:  {run.trigger}{f' ({run.caller})' if run.caller else ''}",
        f"Finished: {run.finished_at:%Y-%m-%d %H:%M:%S} UTC" if run.finished_at else "Finished: -",
        f"Error:    {run.error_code}: {run.error}",
        "",
        f"See the run, its steps and its parameters: {run_url}",
        f"Failed runs of this workflow in the last {minutes} minutes: {count} — {list_url}",
        "",
        f"Further failures of {run.workflow_name!r} are not mailed for {minutes} minutes "
        "(LOG_ALERT_PERIOD_SECONDS).",
    ])
    send_mail(f"[Engine Room] Workflow {run.workflow_name} failed", body, None, recipients)
    logger.info("Sent a failure alert for run %s of %s to %d recipient(s)", run.id, run.workflow_name, len(recipients))
    return True
