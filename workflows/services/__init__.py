"""Writes of the workflows app: definitions and versions, secrets, runs."""
from .definitions import (
    bundle_import,
    workflow_create,
    workflow_delete,
    workflow_publish,
    workflow_restore,
    workflow_update,
)
from .runs import run_cancel, run_enqueue, run_rerun, runs_sweep
from .secrets import secret_delete, secret_set
from .templates import template_install

__all__ = [
    "bundle_import",
    "run_cancel",
    "run_enqueue",
    "run_rerun",
    "runs_sweep",
    "secret_delete",
    "secret_set",
    "template_install",
    "workflow_create",
    "workflow_delete",
    "workflow_publish",
    "workflow_restore",
    "workflow_update",
]
