"""delete_record: delete one record (Bubble's "Delete a thing")."""
from django.conf import settings
from rest_framework import serializers

from config.errors import ActionError, NotFoundError

from .base import Action, ActionConfig
from .records import data_type_or_fail, type_field


class DeleteRecord(Action):
    """Delete one record by id."""

    type = "delete_record"
    label = "Delete a record"
    description = "Deletes one record, found by id."
    group = "Data"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["record_written"]
    example = {"type": "lead", "id": "{{ params.lead.id }}"}

    class Config(ActionConfig):
        type = type_field()
        id = serializers.CharField(help_text="The record's id.")

    def run(self, *, config, context):
        from datastore.selectors import record_get
        from datastore.services import record_delete

        data_type = data_type_or_fail(config["type"])
        try:
            record = record_get(data_type=data_type, id=config["id"])
        except NotFoundError as exc:
            raise ActionError(exc.message) from exc
        record_delete(record=record)
        return {"id": config["id"], "deleted": True}
