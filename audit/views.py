"""The audit log page: admins only, newest first, filtered by action."""
from django.conf import settings
from django.core.paginator import Paginator
from django.views.decorators.http import require_GET

from workflows.views.access import ADMIN, page, role_required

from .models import AuditAction, AuditEvent

PAGE_SIZE = 100


@require_GET
@role_required(ADMIN, section="settings")
def audit_list(request):
    """Sign-ins, token, secret and role changes, publishes; ?action= narrows it to one kind."""
    events = AuditEvent.objects.all()
    action = request.GET.get("action", "")
    if action in AuditAction.values:
        events = events.filter(action=action)
    else:
        action = ""
    events_page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return page(request, "audit/list.html", {
        "events": events_page, "actions": AuditAction.choices, "action": action,
        "retention_days": settings.AUDIT_RETENTION_DAYS,
    }, section="settings")
