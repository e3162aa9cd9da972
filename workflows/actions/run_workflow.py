"""run_workflow: call another workflow now, in the same run tree (Bubble's "Trigger a custom event")."""
from rest_framework import serializers

from .base import Action, ActionConfig, ValueField


class RunWorkflow(Action):
    """Run another workflow inline and wait for it; its own steps commit on their own."""

    type = "run_workflow"
    label = "Run a workflow"
    description = (
        "Runs another workflow now, in this worker, as a child of this run; outputs {run_id, status, "
        "response}. A failed child fails this step."
    )
    group = "Flow"
    # Not transactional: the child commits its own steps, and this step's StepRun commits after it ends.
    transactional = False
    example = {"workflow": "send_welcome_email", "params": {"email": "{{ params.email }}"}}

    class Config(ActionConfig):
        workflow = serializers.RegexField(r"^[a-z][a-z0-9_]{0,62}$", help_text="The workflow's name.")
        params = serializers.DictField(
            child=ValueField(), required=False, default=dict, help_text="Its parameters."
        )

    def run(self, *, config, context):
        context.refuse_secrets(config["params"])
        return context.run_child(config["workflow"], config["params"])
