"""Record triggers: one run per record per committed transaction, with record and before; cascades stop."""
import pytest
from django.db import transaction

from datastore.models import Record
from datastore.selectors import record_get
from datastore.services import data_type_create, record_create, record_delete, record_update, records_update
from logs.models import WorkflowRun


@pytest.fixture
def leads(db):
    return data_type_create(name="lead", fields=[{"name": "email", "type": "email"},
                                                 {"name": "score", "type": "integer"}])


@pytest.fixture
def on_update(make_workflow, leads):
    return make_workflow("lead_changed", trigger={"on": "record_updated", "type": "lead"},
                         steps=[{"action": "set_values", "config": {"values": {"was": "{{ before.score }}"}}}])


@pytest.mark.django_db
def test_three_updates_in_one_transaction_start_one_run_with_the_first_before(
    leads, on_update, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # its own committed transaction
        lead = record_create(data_type=leads, fields={"email": "a@example.com", "score": 1})
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            for score in (2, 3, 4):
                record_update(record=record_get(data_type=leads, id=lead.id), fields={"score": score})
    run = WorkflowRun.objects.get()
    assert (run.trigger, run.workflow_name, run.status) == ("record", "lead_changed", "queued")
    assert run.params["before"]["score"] == 1
    assert run.params["record"]["score"] == 4 and run.params["record"]["id"] == str(lead.id)
    assert run.version_id == on_update.live_version_id


@pytest.mark.django_db
def test_a_rolled_back_change_starts_nothing(leads, on_update, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        lead = record_create(data_type=leads, fields={"email": "a@example.com", "score": 1})
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            record_update(record=lead, fields={"score": 2})
            raise RuntimeError("changed my mind")
    assert not WorkflowRun.objects.exists()


@pytest.mark.django_db
def test_bulk_updates_start_one_run_per_record(leads, on_update, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            record_create(data_type=leads, fields={"email": f"{n}@example.com", "score": n})
    with django_capture_on_commit_callbacks(execute=True):
        records_update(data_type=leads, filter={}, fields={"score": 9})
    assert sorted(r.params["before"]["score"] for r in WorkflowRun.objects.all()) == [0, 1, 2]


@pytest.mark.django_db
def test_created_then_updated_is_one_created_and_a_delete_wins(
    make_workflow, leads, django_capture_on_commit_callbacks
):
    make_workflow("lead_created", trigger={"on": "record_created", "type": "lead"})
    make_workflow("lead_deleted", trigger={"on": "record_deleted", "type": "lead"})
    make_workflow("lead_updated", trigger={"on": "record_updated", "type": "lead"})
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            lead = record_create(data_type=leads, fields={"email": "a@example.com", "score": 1})
            record_update(record=lead, fields={"score": 2})
    created = WorkflowRun.objects.get()
    assert created.workflow_name == "lead_created"
    assert created.params == {"record": created.params["record"], "before": None}
    assert created.params["record"]["score"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            record_update(record=lead, fields={"score": 3})
            record_delete(record=Record.objects.get(id=lead.id))
    deleted = WorkflowRun.objects.exclude(id=created.id).get()
    assert deleted.workflow_name == "lead_deleted" and deleted.params["record"]["score"] == 3


@pytest.mark.django_db
def test_disabled_unpublished_and_other_type_workflows_are_not_started(
    make_workflow, leads, django_capture_on_commit_callbacks
):
    make_workflow("draft_only", trigger={"on": "record_created", "type": "lead"}, publish=False)
    make_workflow("off", trigger={"on": "record_created", "type": "lead"}, enabled=False)
    data_type_create(name="deal", fields=[])
    make_workflow("deals", trigger={"on": "record_created", "type": "deal"})
    with django_capture_on_commit_callbacks(execute=True):
        record_create(data_type=leads, fields={"email": "a@example.com"})
    assert not WorkflowRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_only_when_on_a_trigger_workflow_skips_its_run(make_workflow, leads, drain):
    make_workflow("big_scores", trigger={"on": "record_updated", "type": "lead"},
                  only_when="{{ record.score > 10 }}")
    lead = record_create(data_type=leads, fields={"email": "a@example.com", "score": 1})
    record_update(record=lead, fields={"score": 5})
    record_update(record=lead, fields={"score": 50})
    assert [r.status for r in drain()] == ["skipped", "succeeded"]


@pytest.mark.django_db(transaction=True)
def test_a_trigger_that_changes_its_own_record_stops_at_max_call_depth(make_workflow, leads, drain, settings):
    settings.ENGINE_ROOM_MAX_CALL_DEPTH = 3
    make_workflow("bump", trigger={"on": "record_updated", "type": "lead"}, steps=[
        {"action": "update_record",
         "config": {"type": "lead", "id": "{{ record.id }}", "fields": {"score": "{{ record.score + 1 }}"}}},
    ])
    lead = record_create(data_type=leads, fields={"email": "a@example.com", "score": 0})
    record_update(record=lead, fields={"score": 1})
    drain()
    runs = list(WorkflowRun.objects.order_by("depth"))
    assert [(r.depth, r.status) for r in runs] == [
        (0, "succeeded"), (1, "succeeded"), (2, "succeeded"), (3, "succeeded"), (4, "failed")
    ]
    stopped = runs[-1]
    assert stopped.error_code == "depth_limit"
    assert "exceeds MAX_CALL_DEPTH=3: bump → bump → bump → bump → bump" in stopped.error
    assert [r.parent_run_id for r in runs[1:]] == [r.id for r in runs[:-1]]
    assert Record.objects.get(id=lead.id).data["score"] == 5


@pytest.mark.django_db(transaction=True)
def test_a_change_signalled_outside_a_transaction_still_triggers(leads, on_update, sent):
    from datastore.models import Record as RecordModel
    from datastore.signals import record_changed

    record = {"id": "00000000-0000-0000-0000-000000000001", "type": "lead", "score": 2}
    record_changed.send(sender=RecordModel, kind="updated", record=record, before={**record, "score": 1},
                        data_type="lead")
    run = WorkflowRun.objects.get()
    assert run.params["before"]["score"] == 1 and sent == [str(run.id)]
