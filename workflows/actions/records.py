"""Config fields the record actions share."""
from rest_framework import serializers

from config.errors import ActionError, ApplicationError, NotFoundError

from .base import ValueField


def type_field():
    return serializers.CharField(help_text="The data type's name.")


def fields_field():
    return serializers.DictField(
        child=ValueField(), help_text="Field values by name; each may be an expression."
    )


def filter_field():
    return serializers.DictField(
        child=ValueField(),
        required=False,
        default=dict,
        help_text='Lookups on record fields, e.g. {"plan": "pro", "score__gte": 50}.',
    )


def data_type_or_fail(name: str):
    """The data type, or a non-retryable step error naming it."""
    from datastore.selectors import data_type_get

    try:
        return data_type_get(name=name)
    except NotFoundError as exc:
        raise ActionError(exc.message) from exc


def as_action_error(exc: ApplicationError) -> ActionError:
    """A datastore validation error as a step error that keeps its field-by-field detail."""
    fields = getattr(exc, "fields", {}) or {}
    detail = "; ".join(f"{key}: {message}" for key, message in fields.items())
    return ActionError(f"{exc.message} {detail}".strip(), extra={"fields": fields})
