"""A secret this run revealed is never passed to another run as a parameter: the step fails, nothing is stored."""
import pytest

from logs.models import StepRun, WorkflowRun
from scheduler.models import Batch, RecurringEvent, ScheduledRun
from workflows.expressions import SecretScope
from workflows.services import secret_set

pytestmark = pytest.mark.django_db

SECRET = "sk_live_very/secret value"


@pytest.fixture
def api_key(db):
    secret_set(name="API_KEY", value=SECRET)


@pytest.fixture
def callee(make_workflow):
    return make_workflow("callee", parameters=[{"name": "k", "type": "text"}, {"name": "n", "type": "integer"}],
                         steps=[{"key": "echo", "action": "set_values", "config": {"values": {"k": "{{ params.k }}"}}}])


def caller(make_workflow, action, config):
    return make_workflow("caller", steps=[
        {"key": "read", "action": "set_values", "config": {"values": {"len": "{{ secrets.API_KEY | length }}"}}},
        {"key": "pass", "action": action, "config": {"workflow": "callee", **config}},
    ])


def stored_by(run) -> str:
    """Everything the run stored that a user can read: its steps' inputs, outputs, errors and its own error."""
    rows = StepRun.objects.filter(run=run).values_list("input", "output", "error")
    return repr(list(rows)) + run.error + repr(run.response) + repr(run.params)


def assert_refused(run, parameter):
    assert run.status == "failed"
    step = StepRun.objects.get(run=run, key="pass")
    assert step.status == "failed" and step.error_code == "action_failed"
    assert step.error.startswith(f"Parameter '{parameter}' holds the secret API_KEY: secrets are not passed")
    assert "{{ secrets.API_KEY }}" in step.error
    assert StepRun.objects.filter(run=run, key="pass").count() == 1  # not retried
    assert "'pass' (" in run.error and "holds the secret API_KEY" in run.error
    assert SECRET not in stored_by(run)


ACTIONS = [
    ("run_workflow", {}),
    ("schedule_workflow", {"delay_seconds": 60}),
    ("schedule_recurring", {"frequency": "daily"}),
]


@pytest.mark.parametrize(("action", "config"), ACTIONS)
def test_a_revealed_secret_in_a_parameter_fails_the_step_and_stores_nothing(
    make_workflow, run_now, api_key, callee, action, config
):
    workflow = caller(make_workflow, action, {"params": {"n": 1, "k": "{{ secrets.API_KEY }}"}, **config})
    run = run_now(workflow)
    assert_refused(run, "k")
    assert WorkflowRun.objects.filter(workflow=callee).count() == 0
    assert not ScheduledRun.objects.exists() and not RecurringEvent.objects.exists()


def test_a_secret_inside_a_longer_or_nested_value_is_found_in_its_encoded_forms(
    make_workflow, run_now, api_key, callee
):
    workflow = caller(make_workflow, "schedule_workflow", {"delay_seconds": 60, "params": {
        "k": "https://example.com/?token={{ secrets.API_KEY | urlencode }}",
        "n": 2,
    }})
    run = run_now(workflow)
    assert_refused(run, "k")
    assert not ScheduledRun.objects.exists()


def test_a_secret_in_one_item_of_a_list_fails_the_step_naming_the_item_parameter(
    make_workflow, run_now, api_key, callee
):
    workflow = caller(make_workflow, "schedule_workflow_on_list", {
        "list": ["a", "b", "{{ secrets.API_KEY }}", "d"], "item_param": "k", "params": {"n": 3},
    })
    run = run_now(workflow)
    assert_refused(run, "k")
    assert not Batch.objects.exists() and not ScheduledRun.objects.exists()


def test_every_parameter_holding_a_secret_is_named(make_workflow, run_now, api_key, callee):
    secret_set(name="OTHER", value="another-secret-value")
    workflow = caller(make_workflow, "run_workflow", {"params": {
        "k": "{{ secrets.API_KEY }}", "n": "{{ secrets.OTHER | length }}", "extra": "{{ secrets.OTHER }}",
    }})
    run = run_now(workflow)
    step = StepRun.objects.get(run=run, key="pass")
    assert step.error == (
        "Parameter 'k' holds the secret API_KEY; parameter 'extra' holds the secret OTHER: secrets are not passed "
        "between runs; read them in the called workflow with {{ secrets.API_KEY }}, {{ secrets.OTHER }}"
    )
    assert "another-secret-value" not in stored_by(run)
    assert WorkflowRun.objects.filter(workflow=callee).count() == 0


def test_a_dry_run_fails_the_same_way(make_workflow, run_now, api_key, callee):
    workflow = caller(make_workflow, "schedule_workflow", {"params": {"k": "{{ secrets.API_KEY }}"}, "delay_seconds": 1})
    run = run_now(workflow, dry_run=True)
    assert_refused(run, "k")


@pytest.mark.parametrize(("action", "config"), ACTIONS)
def test_ordinary_parameters_still_pass_in_a_run_that_read_a_secret(
    make_workflow, run_now, api_key, callee, action, config
):
    workflow = caller(make_workflow, action, {"params": {"k": "plain", "n": "{{ steps.read.len }}"}, **config})
    run = run_now(workflow)
    assert run.status == "succeeded", run.error
    stored = [
        *WorkflowRun.objects.filter(workflow=callee).values_list("params", flat=True),
        *ScheduledRun.objects.values_list("params", flat=True),
        *RecurringEvent.objects.values_list("params", flat=True),
    ]
    assert stored == [{"k": "plain", "n": len(SECRET)}]


def test_a_list_of_ordinary_items_is_scheduled(make_workflow, run_now, api_key, callee):
    workflow = caller(make_workflow, "schedule_workflow_on_list", {
        "list": ["a", "b"], "item_param": "k", "params": {"n": "{{ steps.read.len }}"},
    })
    run = run_now(workflow)
    assert run.status == "succeeded", run.error
    assert sorted(ScheduledRun.objects.values_list("params", flat=True), key=str) == [
        {"k": "a", "n": len(SECRET)}, {"k": "b", "n": len(SECRET)}
    ]


def test_the_called_workflow_reads_the_secret_itself_and_masks_it(make_workflow, run_now, api_key):
    callee = make_workflow("callee", steps=[
        {"key": "use", "action": "set_values", "config": {"values": {"k": "{{ secrets.API_KEY }}"}}},
    ])
    run = run_now(make_workflow("caller", steps=[
        {"key": "pass", "action": "run_workflow", "config": {"workflow": "callee", "params": {}}},
    ]))
    assert run.status == "succeeded", run.error
    child = WorkflowRun.objects.get(workflow=callee)
    assert StepRun.objects.get(run=child).output == {"k": "••••"}


def test_a_scope_that_revealed_nothing_never_reads_the_params():
    class Unreadable(dict):
        def items(self):
            raise AssertionError("walked")

    scope = SecretScope(lambda name: {"A": "abcdef"}.get(name))
    assert scope.holders(Unreadable(k="abcdef")) == {}
    scope.get("MISSING")
    assert scope.holders(Unreadable(k="abcdef")) == {}
    scope.get("A")
    assert scope.holders({"k": ["x", {"y": "..abcdef.."}], "n": 1, "key": {"abcdef": 1}}) == {"k": ["A"], "key": ["A"]}


def test_a_short_secret_is_found_only_as_a_whole_value():
    scope = SecretScope(lambda name: {"PIN": "42", "REGION": "EU"}.get(name))
    scope.get("PIN"), scope.get("REGION")
    # As part of ordinary values it would refuse what is not the secret ("42" in 1420, "EU" in "EUR").
    assert scope.holders({"count": 1420, "currency": "EUR", "note": "see page 42"}) == {}
    assert scope.holders({"pin": 42, "codes": ["x", "EU"], "n": 1}) == {"pin": ["PIN"], "codes": ["REGION"]}
    assert not scope.appears_in("application/json") and scope.appears_in(b"EU")
