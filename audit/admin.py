"""The audit log in the Django admin: read-only, since a log that can be edited is not evidence."""
from django.contrib import admin

from api_endpoints.permissions import ADMIN, user_role

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "action", "actor_name", "target", "ip"]
    list_filter = ["action", "at"]
    search_fields = ["actor_name", "target", "ip"]
    readonly_fields = ["at", "action", "actor", "actor_name", "ip", "target", "detail"]
    show_full_result_count = False

    # Every admin of the app (staff included, without per-model permissions) may read the log.
    def has_module_permission(self, request):
        return user_role(request.user) == ADMIN

    def has_view_permission(self, request, obj=None):
        return user_role(request.user) == ADMIN

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
