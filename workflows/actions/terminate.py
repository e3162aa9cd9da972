"""terminate: stop the run here, as a success (Bubble's "Terminate this workflow")."""
from .base import Action, ActionConfig


class Terminate(Action):
    """End the run successfully without running the later steps."""

    type = "terminate"
    writes = False
    label = "Terminate"
    description = "Stops the run here; it ends as 'terminated', which counts as a success."
    group = "Flow"
    example = {}

    class Config(ActionConfig):
        pass

    def run(self, *, config, context):
        context.terminated = True
        return {"terminated": True}
