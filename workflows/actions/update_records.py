"""update_records: change every matching record in bulk (Bubble's "Make changes to a list of things")."""
from django.conf import settings

from config.errors import ApplicationError

from .base import Action, ActionConfig
from .records import as_action_error, data_type_or_fail, fields_field, filter_field, type_field


class UpdateRecords(Action):
    """Change the same fields on every record that matches a filter."""

    type = "update_records"
    label = "Update matching records"
    description = "Sets the given fields on every record of a type that matches the filter; outputs the count."
    group = "Data"
    wu_cost = 0.0
    example = {"type": "account", "filter": {"expires_at__lt": "{{ now }}"}, "fields": {"plan": "free"}}

    class Config(ActionConfig):
        type = type_field()
        filter = filter_field()
        fields = fields_field()

    def run(self, *, config, context):
        from datastore.services import records_update

        data_type = data_type_or_fail(config["type"])
        try:
            count = records_update(data_type=data_type, filter=config["filter"], fields=config["fields"])
        except ApplicationError as exc:
            raise as_action_error(exc) from exc
        context.add_wu(count * settings.ENGINE_ROOM_WU_COSTS["record_written"])
        return {"count": count}
