"""set_values: named values for later steps (n8n's "Set")."""
from rest_framework import serializers

from .base import Action, ActionConfig, ValueField


class SetValues(Action):
    """Compute named values once, for later steps to use as steps.<key>.<name>."""

    type = "set_values"
    writes = False
    label = "Set values"
    description = "Evaluates named values (each may be an expression) for later steps; the output is the values."
    group = "Flow"
    example = {"values": {"total": "{{ params.amount * 2 }}", "label": "Order {{ params.id }}"}}

    class Config(ActionConfig):
        values = serializers.DictField(child=ValueField(), help_text="Values by name.")

    def run(self, *, config, context):
        return dict(config["values"])
