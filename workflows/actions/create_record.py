"""create_record: one new record (Bubble's "Create a new thing")."""
from django.conf import settings

from config.errors import ApplicationError

from .base import Action, ActionConfig
from .records import as_action_error, data_type_or_fail, fields_field, type_field


class CreateRecord(Action):
    """Create one record of a data type."""

    type = "create_record"
    label = "Create a record"
    description = "Creates one record of a data type with the given field values; the output is the record."
    group = "Data"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["record_written"]
    example = {"type": "invoice", "fields": {"amount": "{{ params.amount }}", "status": "paid"}}

    class Config(ActionConfig):
        type = type_field()
        fields = fields_field()

    def run(self, *, config, context):
        from datastore.selectors import record_to_dict
        from datastore.services import record_create

        data_type = data_type_or_fail(config["type"])
        try:
            record = record_create(data_type=data_type, fields=config["fields"])
        except ApplicationError as exc:
            raise as_action_error(exc) from exc
        return record_to_dict(record)
