"""Writes of the scheduler: scheduled runs and batches, recurring events, record triggers."""
from .recurring import (
    recurring_event_create,
    recurring_event_delete,
    recurring_event_fire,
    recurring_event_set_enabled,
    recurring_event_update,
    recurring_events_cancel,
    recurring_events_fire_overdue,
    recurring_events_pause,
)
from .scheduled import (
    batch_cancel,
    batch_create,
    batches_recount,
    scheduled_run_create,
    scheduled_runs_cancel,
    scheduled_runs_dispatch,
    scheduled_runs_pause,
    scheduled_runs_resume,
)
from .triggers import record_change_collect, record_changes_commit

__all__ = [
    "batch_cancel",
    "batch_create",
    "batches_recount",
    "record_change_collect",
    "record_changes_commit",
    "recurring_event_create",
    "recurring_event_delete",
    "recurring_event_fire",
    "recurring_event_set_enabled",
    "recurring_event_update",
    "recurring_events_cancel",
    "recurring_events_fire_overdue",
    "recurring_events_pause",
    "scheduled_run_create",
    "scheduled_runs_cancel",
    "scheduled_runs_dispatch",
    "scheduled_runs_pause",
    "scheduled_runs_resume",
]
