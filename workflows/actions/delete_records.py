"""delete_records: delete every matching record (Bubble's "Delete a list of things")."""
from django.conf import settings

from config.errors import ApplicationError

from .base import Action, ActionConfig
from .records import as_action_error, data_type_or_fail, filter_field, type_field


class DeleteRecords(Action):
    """Delete every record that matches a filter."""

    type = "delete_records"
    label = "Delete matching records"
    description = "Deletes every record of a type that matches the filter; outputs the count."
    group = "Data"
    wu_cost = 0.0
    example = {"type": "session", "filter": {"created__lt": "{{ now | add_days(-30) }}"}}

    class Config(ActionConfig):
        type = type_field()
        filter = filter_field()

    def run(self, *, config, context):
        from datastore.services import records_delete

        data_type = data_type_or_fail(config["type"])
        try:
            count = records_delete(data_type=data_type, filter=config["filter"])
        except ApplicationError as exc:
            raise as_action_error(exc) from exc
        context.add_wu(count * settings.ENGINE_ROOM_WU_COSTS["record_written"])
        return {"count": count}
