"""update_record: change one record (Bubble's "Make changes to a thing")."""
from django.conf import settings
from rest_framework import serializers

from config.errors import ActionError, ApplicationError, NotFoundError

from .base import Action, ActionConfig
from .records import as_action_error, fields_field, type_field


class UpdateRecord(Action):
    """Change some fields of one record."""

    type = "update_record"
    label = "Update a record"
    description = "Changes the given fields of one record, found by id; other fields keep their values."
    group = "Data"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["record_written"]
    example = {"type": "subscription", "id": "{{ steps.find.records[0].id }}", "fields": {"status": "active"}}

    class Config(ActionConfig):
        type = type_field()
        id = serializers.CharField(help_text="The record's id.")
        fields = fields_field()

    def run(self, *, config, context):
        from datastore.selectors import record_to_dict
        from datastore.services import record_update_by_id

        try:
            record = record_update_by_id(type_name=config["type"], id=config["id"], fields=config["fields"])
        except NotFoundError as exc:
            raise ActionError(exc.message) from exc
        except ApplicationError as exc:
            raise as_action_error(exc) from exc
        return record_to_dict(record)
