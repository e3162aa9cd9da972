"""Admin for run logs: read-only, since a log that can be edited is not evidence."""
import json

from django.contrib import admin
from django.utils.html import format_html

from logs.models import FailureAlert, RunDailyStat, StepRun, WorkflowRun


def _pretty_json(value) -> str:
    """JSON indented inside <pre>, escaped, for read-only admin fields."""
    if value is None:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, default=str))


class ReadOnlyAdminMixin:
    """View-only: runs are written by the engine alone; retention deletes them, not people."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StepRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StepRun
    fields = ["index", "key", "action", "attempt", "status", "started_at", "duration_ms", "wu", "error_code", "error"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "workflow_name",
        "status",
        "trigger",
        "created",
        "duration_ms",
        "current_step",
        "wu",
        "error_code",
    ]
    list_filter = ["status", "trigger", "queue", "created"]
    # "id" matches a pasted (part of a) run id.
    search_fields = ["id", "workflow_name", "idempotency_key", "caller", "error_code"]
    # Counting every run for "N total" is a full scan on a table that grows with every call.
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["id", "workflow", "workflow_name", "version", "status", "trigger", "queue", "caller"]}),
        ("Timing", {"fields": ["created", "started_at", "finished_at", "duration_ms", "not_before"]}),
        ("Result", {"fields": ["error_code", "error", "current_step", "wu", "response_pretty"]}),
        ("Input", {"fields": ["params_pretty", "request_pretty", "idempotency_key"]}),
        ("Run tree", {"fields": ["parent_run", "root_run", "depth", "chain_length"]}),
        (
            "Execution",
            {
                "classes": ["collapse"],
                "fields": [
                    "attempt",
                    "claim",
                    "lease_expires_at",
                    "cancel_requested",
                    "draft_definition_pretty",
                ],
            },
        ),
    ]
    readonly_fields = [
        "params_pretty",
        "request_pretty",
        "response_pretty",
        "draft_definition_pretty",
    ]
    inlines = [StepRunInline]

    @admin.display(description="params")
    def params_pretty(self, obj):
        return _pretty_json(obj.params)

    @admin.display(description="request")
    def request_pretty(self, obj):
        return _pretty_json(obj.request)

    @admin.display(description="response")
    def response_pretty(self, obj):
        return _pretty_json(obj.response)

    @admin.display(description="draft definition")
    def draft_definition_pretty(self, obj):
        return _pretty_json(obj.draft_definition)


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["run", "index", "key", "action", "attempt", "status", "started_at", "duration_ms"]
    list_filter = ["status", "action", "started_at"]
    list_select_related = ["run"]
    search_fields = ["=run__id", "key", "action", "error_code"]
    show_full_result_count = False
    fields = [
        "run",
        "index",
        "key",
        "action",
        "attempt",
        "status",
        "started_at",
        "duration_ms",
        "wu",
        "skipped_reason",
        "error_code",
        "error",
        "input_pretty",
        "output_pretty",
        "output_truncated",
    ]
    readonly_fields = ["input_pretty", "output_pretty"]

    @admin.display(description="input (secrets masked)")
    def input_pretty(self, obj):
        return _pretty_json(obj.input)

    @admin.display(description="output")
    def output_pretty(self, obj):
        return _pretty_json(obj.output)


@admin.register(RunDailyStat)
class RunDailyStatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Runs that retention deleted, rolled up per day and workflow (the charts read them)."""

    list_display = ["day", "workflow_name", "succeeded", "terminated", "failed", "cancelled", "skipped", "wu",
                    "duration_count", "duration_max_ms"]
    list_filter = ["day"]
    search_fields = ["workflow_name"]


@admin.register(FailureAlert)
class FailureAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """When each workflow's failure was last mailed (one alert per workflow per LOG_ALERT_PERIOD_SECONDS)."""

    list_display = ["workflow_name", "last_sent_at", "last_run_id"]
    search_fields = ["workflow_name"]
