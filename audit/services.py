"""Audit writes: audit_record is the one way in; audit_prune drops events past the retention period."""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from .context import current_request
from .models import AuditEvent

logger = logging.getLogger(__name__)


def request_ip(request) -> str | None:
    """The client address as the rate limits see it (X-Forwarded-For only behind NUM_PROXIES)."""
    from rest_framework.throttling import BaseThrottle

    try:
        return BaseThrottle().get_ident(request) or None
    except Exception:  # a malformed header must not stop the audited action
        return request.META.get("REMOTE_ADDR") or None


def _actor_of(request):
    user = getattr(request, "user", None) if request is not None else None
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    if getattr(user, "pk", None) is None:  # an API token (api_endpoints.authentication.TokenUser)
        return None, str(user)[:150]
    return user, user.get_username()[:150]


def audit_record(*, action: str, target: str = "", detail: dict | None = None, actor=None,
                 actor_name: str | None = None, request=None) -> AuditEvent | None:
    """Write one audit event; who and from where come from the request the change happens in.

    An audit write that fails is logged and swallowed: it must never undo the change it describes.
    """
    request = request if request is not None else current_request.get()
    if actor is None and actor_name is None:
        actor, actor_name = _actor_of(request)
    elif actor is not None and actor_name is None:
        actor_name = actor.get_username()[:150]
    try:
        with transaction.atomic():
            return AuditEvent.objects.create(
                action=action, target=target[:200], detail=detail or {}, actor=actor,
                actor_name=(actor_name or "")[:150], ip=request_ip(request) if request is not None else None,
            )
    except DatabaseError:
        logger.exception("Could not write the audit event %s %s", action, target)
        return None


def audit_prune(*, now=None) -> int:
    """Delete events older than AUDIT_RETENTION_DAYS; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEvent.objects.filter(at__lt=cutoff).delete()
    return deleted
