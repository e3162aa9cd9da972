"""find_records: search records (Bubble's "Do a search for")."""
from django.conf import settings
from rest_framework import serializers

from config.errors import ApplicationError

from .base import Action, ActionConfig
from .records import as_action_error, data_type_or_fail, filter_field, type_field

MAX_LIMIT = 10_000


class FindRecords(Action):
    """Find the records of a type that match a filter, ordered and limited."""

    type = "find_records"
    writes = False
    label = "Find records"
    description = (
        "Searches records of a type with a filter; outputs {records, count}, where count is the number "
        "of all matches, also beyond the limit."
    )
    group = "Data"
    wu_cost = 0.0
    example = {"type": "subscription", "filter": {"customer_id": "{{ params.customer }}"}, "limit": 1}

    class Config(ActionConfig):
        type = type_field()
        filter = filter_field()
        order_by = serializers.CharField(
            required=False, allow_blank=True, default="", help_text="A field name; '-' first for descending."
        )
        limit = serializers.IntegerField(
            required=False, min_value=1, max_value=MAX_LIMIT, default=100, help_text="At most this many records."
        )

    def run(self, *, config, context):
        from datastore.selectors import record_find, record_to_dict

        data_type = data_type_or_fail(config["type"])
        try:
            queryset = record_find(data_type=data_type, filter=config["filter"], order_by=config["order_by"] or None)
            # One row past the limit says whether there are more: only then is a COUNT query needed.
            rows = list(queryset[: config["limit"] + 1])
        except ApplicationError as exc:
            raise as_action_error(exc) from exc
        count = len(rows) if len(rows) <= config["limit"] else queryset.count()
        records = [record_to_dict(record) for record in rows[: config["limit"]]]
        context.add_wu(len(records) * settings.ENGINE_ROOM_WU_COSTS["record_read"])
        return {"records": records, "count": count}
