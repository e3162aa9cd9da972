"""Signal receivers of the scheduler: record triggers, batch progress, and beat tasks that go with their event."""
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django_celery_beat.models import PeriodicTask

from datastore.signals import record_changed
from logs.signals import run_finished
from scheduler.models import RecurringEvent
from scheduler.services.scheduled import batch_item_ending, batch_item_finished
from scheduler.services.triggers import record_change_collect
from workflows.engine import ending_write

BATCH_COUNT = "scheduler.batch_count"


@receiver(record_changed, dispatch_uid="scheduler.record_triggers")
def record_changed_collect(sender, *, kind, record, before, data_type, **kwargs):
    """Collect the change for the record triggers that run once its transaction commits."""
    record_change_collect(kind=kind, record=record, before=before, data_type=data_type)


@ending_write(BATCH_COUNT)
def batch_count_at_end(db, run):
    """A list item's run that ends in the engine's one statement counts its item in that statement."""
    return batch_item_ending(db=db, run=run)


@receiver(run_finished, dispatch_uid="scheduler.batch_counts")
def run_finished_count(sender, *, run, **kwargs):
    """A finished list item's run moves its batch's progress at once, unless its end already did."""
    if BATCH_COUNT not in getattr(run, "written_at_end", ()):
        batch_item_finished(run=run)


@receiver(post_delete, sender=RecurringEvent, dispatch_uid="scheduler.recurring_event_deleted")
def recurring_event_deleted(sender, instance, **kwargs):
    """An event deleted with its workflow (a cascade) must not leave beat firing its PeriodicTask."""
    if instance.periodic_task_id is not None:
        task = PeriodicTask.objects.filter(id=instance.periodic_task_id).first()
        if task is not None:
            task.delete()  # PeriodicTask.delete() tells beat the schedule changed
