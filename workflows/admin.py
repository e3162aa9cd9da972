"""Admin for workflows, their published versions and secrets: for looking, not for editing."""
import json

from django.contrib import admin
from django.utils.html import format_html

from workflows.models import Secret, Workflow, WorkflowVersion


def _pretty_json(value) -> str:
    """JSON indented inside <pre>, escaped, for read-only admin fields."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, default=str))


class ReadOnlyAdminMixin:
    """View-only: a definition is validated as a whole and its denormalised columns (enabled, auth,
    trigger) kept in step by workflows' services; versions are frozen; secrets are write-only by design."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WorkflowVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WorkflowVersion
    fields = ["number", "published", "published_by"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "enabled", "auth", "trigger", "live_version", "revision", "modified", "modified_by"]
    list_filter = ["enabled", "auth", "trigger_on"]
    list_select_related = ["live_version", "modified_by"]
    search_fields = ["name"]
    fields = [
        "name",
        "enabled",
        "auth",
        "trigger_on",
        "trigger_type",
        "live_version",
        "revision",
        "created",
        "modified",
        "modified_by",
        "definition_pretty",
    ]
    readonly_fields = ["definition_pretty"]
    inlines = [WorkflowVersionInline]

    @admin.display(description="trigger")
    def trigger(self, obj):
        return f"{obj.trigger_on} {obj.trigger_type}" if obj.trigger_on else "—"

    @admin.display(description="definition (draft)")
    def definition_pretty(self, obj):
        return _pretty_json(obj.definition)


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "workflow", "number", "published", "published_by"]
    list_filter = ["published"]
    list_select_related = ["workflow", "published_by"]
    search_fields = ["workflow__name"]
    fields = ["workflow", "number", "published", "published_by", "definition_pretty"]
    readonly_fields = ["definition_pretty"]

    @admin.display(description="definition")
    def definition_pretty(self, obj):
        return _pretty_json(obj.definition)


@admin.register(Secret)
class SecretAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Never the ciphertext, not even in a form field: only names and dates leave the database here.
    list_display = ["name", "description", "created", "modified"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "created", "modified"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("ciphertext")
