"""return_response: what a sync caller receives (Bubble's "Return data from API", with status codes)."""
from rest_framework import serializers

from .base import Action, ActionConfig, ValueField


class ReturnResponse(Action):
    """Set the HTTP answer of a sync call; the run goes on with its later steps."""

    type = "return_response"
    writes = False
    label = "Return a response"
    description = (
        "Sets the status, headers and body that a sync caller receives. The run continues with later steps."
    )
    group = "Flow"
    example = {"status": 200, "body": {"ok": True, "id": "{{ run.id }}"}}

    class Config(ActionConfig):
        status = serializers.IntegerField(default=200, min_value=100, max_value=599, help_text="HTTP status code.")
        headers = serializers.DictField(
            child=serializers.CharField(), required=False, default=dict, help_text="Extra response headers."
        )
        content_type = serializers.CharField(
            default="application/json", help_text="The body's content type; JSON bodies are serialised."
        )
        body = ValueField(required=False, default=None, help_text="The response body.")

    def run(self, *, config, context):
        response = {
            "status": config["status"],
            "headers": dict(config["headers"]),
            "content_type": config["content_type"],
            "body": config["body"],
        }
        context.response = response
        return response
