"""find_records: search records (Bubble's "Do a search for")."""
from django.conf import settings
from rest_framework import serializers

from config.errors import ApplicationError

from .base import Action, ActionConfig
from .records import as_action_error, filter_field, type_field

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
        from datastore.selectors import record_to_dict, records_search

        try:
            rows, count = records_search(type_name=config["type"], filter=config["filter"],
                                         order_by=config["order_by"] or None, limit=config["limit"])
        except ApplicationError as exc:  # an unknown type or field, a bad filter: named in the step's error
            raise as_action_error(exc) from exc
        records = [record_to_dict(record) for record in rows]
        context.add_wu(len(records) * settings.ENGINE_ROOM_WU_COSTS["record_read"])
        return {"records": records, "count": count}
