"""Admin for data types and records: for looking, not for editing."""
import json

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from datastore.models import DataType, Record


def _pretty_json(value) -> str:
    """JSON indented inside <pre>, escaped, for read-only admin fields."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: writes go through datastore's services, which validate fields, store values
    canonically and send the record-change signal that triggers workflows. The admin would bypass all three."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DataType)
class DataTypeAdmin(ReadOnlyAdmin):
    list_display = ["name", "field_count", "record_count", "created", "modified"]
    search_fields = ["name"]
    fields = ["name", "fields_pretty", "created", "modified"]
    readonly_fields = ["fields_pretty"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_record_count=Count("records"))

    @admin.display(description="fields")
    def field_count(self, obj):
        return len(obj.fields or [])

    @admin.display(description="records", ordering="_record_count")
    def record_count(self, obj):
        return obj._record_count

    @admin.display(description="fields")
    def fields_pretty(self, obj):
        return _pretty_json(obj.fields)


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "data_type", "summary", "created", "modified"]
    list_filter = ["data_type", "created"]
    list_select_related = ["data_type"]
    # "id" matches a pasted (part of a) record id; "data" searches the values as JSON text.
    search_fields = ["id", "data"]
    # Counting every record for "N total" is a full scan on a large table.
    show_full_result_count = False
    fields = ["id", "data_type", "data_pretty", "created", "modified"]
    readonly_fields = ["data_pretty"]

    @admin.display(description="data")
    def summary(self, obj):
        text = json.dumps(obj.data, ensure_ascii=False, default=str)
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="data")
    def data_pretty(self, obj):
        return _pretty_json(obj.data)
