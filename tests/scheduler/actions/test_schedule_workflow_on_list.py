"""schedule_workflow_on_list: its Config and run()."""
import pytest

from config.errors import ActionError
from scheduler.actions.schedule_workflow_on_list import ScheduleWorkflowOnList
from scheduler.models import Batch, ScheduledRun

action = ScheduleWorkflowOnList()


def test_example_is_valid():
    assert ScheduleWorkflowOnList.Config(data={**ScheduleWorkflowOnList.example, "list": [1, 2]}).is_valid()


@pytest.mark.parametrize("config, field", [
    ({"workflow": "x", "item_param": "n"}, "list"),
    ({"workflow": "x", "list": "1,2", "item_param": "n"}, "list"),
    ({"workflow": "x", "list": [1], "item_param": "N-1"}, "item_param"),
    ({"workflow": "x", "list": [1], "item_param": "n", "interval_seconds": -1}, "interval_seconds"),
])
def test_bad_configs_name_the_field(config, field):
    serializer = ScheduleWorkflowOnList.Config(data=config)
    assert not serializer.is_valid()
    assert field in serializer.errors


def test_a_list_over_the_limit_is_refused(settings):
    settings.ENGINE_ROOM_LIST_MAX_ITEMS = 2
    serializer = ScheduleWorkflowOnList.Config(data={"workflow": "x", "list": [1, 2, 3], "item_param": "n"})
    assert not serializer.is_valid()
    assert "At most 2 items" in str(serializer.errors["list"])


@pytest.fixture
def square(make_workflow):
    return make_workflow("square", parameters=[{"name": "n", "type": "integer", "required": True},
                                               {"name": "unit", "type": "text"}])


@pytest.mark.django_db
def test_run_writes_a_batch_and_returns_its_id_and_count(square, make_context, settings):
    context = make_context()
    output = action.run(config=action.validate_runtime(
        {"workflow": "square", "list": [1, 2, 3], "item_param": "n", "params": {"unit": "m"}, "interval_seconds": 2}
    ), context=context)
    batch = Batch.objects.get()
    assert output == {"batch_id": str(batch.id), "count": 3}
    rows = list(ScheduledRun.objects.filter(batch=batch).order_by("item_index"))
    assert [r.params for r in rows] == [{"n": 1, "unit": "m"}, {"n": 2, "unit": "m"}, {"n": 3, "unit": "m"}]
    assert (rows[2].due_at - rows[0].due_at).total_seconds() == 4
    # One schedule's WU per item: the base cost covers the first.
    assert action.wu_cost + context.wu == pytest.approx(3 * settings.ENGINE_ROOM_WU_COSTS["schedule"])


@pytest.mark.django_db
def test_items_that_do_not_fit_fail_the_step_naming_the_item(square, make_context):
    with pytest.raises(ActionError, match=r"Bad parameters for 'square': list\[1\]"):
        action.run(config=action.validate_runtime({"workflow": "square", "list": [1, "two"], "item_param": "n"}),
                   context=make_context())
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_an_empty_list_is_a_finished_batch(square, make_context):
    output = action.run(config=action.validate_runtime({"workflow": "square", "list": [], "item_param": "n"}),
                        context=make_context())
    assert output["count"] == 0 and Batch.objects.get().finished_at is not None


@pytest.mark.django_db
def test_a_dry_run_schedules_nothing(square, make_context):
    context = make_context(dry_run=True)
    output = action.run(config=action.validate_runtime({"workflow": "square", "list": [1], "item_param": "n"}),
                        context=context)
    assert output == {"batch_id": None, "count": 1, "dry_run": True} and not Batch.objects.exists()
