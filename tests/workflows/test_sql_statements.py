"""config.sql's statements built once: compiled_once tells a queryset's parameters apart by their sentinels."""
import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from config.sql import EncodedJSON, _filled, built, compiled_once, insert_rows, row_params
from logs.models import RunStatus, StepRun, WorkflowRun
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def test_a_compiled_queryset_reruns_with_new_values_and_keeps_its_constants(make_workflow):
    make_workflow("alpha", steps=[])
    make_workflow("beta", steps=[])
    Workflow.objects.filter(name="beta").update(enabled=False)
    # enabled=True and LIMIT stay constants; only the name changes between runs.
    queryset = Workflow.objects.filter(enabled=True, name="sentinel").order_by().values_list("name", "enabled")[:1]
    statement = compiled_once(queryset, {"name": "sentinel"})

    assert statement.rows(connection, {"name": "alpha"}) == [("alpha", True)]
    assert statement.rows(connection, {"name": "beta"}) == []  # disabled: the constant still applies
    assert statement.rows(connection, {"name": "nobody"}) == []


def test_a_sentinel_that_cannot_be_told_apart_is_refused():
    # The sentinel equals another of the query's values: which parameter is which cannot be known.
    queryset = Workflow.objects.filter(name="same", trigger_type="same")
    with pytest.raises(AssertionError, match="apart"):
        compiled_once(queryset, {"name": "same"})


def test_a_boolean_constant_is_not_taken_for_an_integer_sentinel(make_workflow):
    from django.db.models import Value

    workflow = make_workflow("alpha", steps=[])
    # SELECT %s (True) … WHERE id = %s (the sentinel 1): True == 1 in Python, but they are not the same value.
    queryset = Workflow.objects.annotate(flag=Value(True)).filter(id=1).values_list("flag", "name")
    statement = compiled_once(queryset, {"id": 1})

    assert [item for named, item in statement.slots if named] == ["id"]
    assert statement.rows(connection, {"id": workflow.id}) == [(True, "alpha")]



def test_inserted_rows_hold_values_converted_as_save_would():
    # Values of other types than the fields' own take Django's conversion (only a field's own type is
    # passed as it is): a numeric string into an integer, an int into a float and into a boolean.
    one = WorkflowRun(workflow_name="a", trigger="api", depth="3", wu=2, dry_run=1, caller="x")
    several = [WorkflowRun(workflow_name=name, trigger="api", depth=1, wu=0.5) for name in "bc"]
    insert_rows(WorkflowRun, [one])
    insert_rows(WorkflowRun, several)

    stored = {run.workflow_name: run for run in WorkflowRun.objects.all()}
    assert (stored["a"].depth, stored["a"].wu, stored["a"].dry_run, stored["a"].status) == (3, 2.0, True, "queued")
    assert stored["a"].created is not None and stored["a"].max_concurrency == 0  # auto_now_add, db_default
    assert [(stored[name].depth, stored[name].wu) for name in "bc"] == [(1, 0.5), (1, 0.5)]


@pytest.mark.parametrize("values", [
    {"depth": 2, "wu": 1.5, "dry_run": True, "params": {"a": 1}, "request": None, "caller": "token"},
    {"depth": "3", "wu": 2, "dry_run": 1, "params": {}, "error": RunStatus.FAILED, "not_before": None},
])
def test_a_rows_parameters_are_what_djangos_own_preparation_gives(values):
    run = WorkflowRun(workflow_name="a", trigger="api", **values)

    fields = WorkflowRun._meta.concrete_fields
    # Django's own way, value by value (what insert_rows did before its plan); `created` is stamped anew by
    # each preparation, so it is left out.
    slow = [field.get_db_prep_save(_filled(field, run), connection) for field in fields]
    fast = row_params(WorkflowRun, [run], connection)

    def shown(values):
        # Same value and same type: PostgreSQL's prepared statements are keyed on the parameters' types
        # (Int4 and a plain int differ there); JSON goes in as an adapter around the value.
        return [(field.name, type(value), getattr(value, "obj", value))
                for field, value in zip(fields, values, strict=True) if field.name != "created"]

    assert shown(fast) == shown(slow)


@pytest.mark.parametrize("count", [1, 3])
def test_encoded_json_is_stored_as_the_value_it_encodes_beside_plain_json(count):
    # One row goes through row_params, several through rows_json (one JSON parameter on PostgreSQL): in
    # both, an EncodedJSON column holds the value its text encodes, not a string of that text, and the
    # plain JSON column beside it in the same row is encoded as before.
    run = WorkflowRun.objects.create(workflow_name="a", trigger="api")
    value = {"name": "Zoë \"quoted\"", "items": [1, 2.5, None, True], "nested": {"at": "2026-11-28"}}
    steps = [StepRun(run=run, index=i, key=f"s{i}", action="set_values", status="succeeded",
                     started_at=datetime(2026, 11, 28, tzinfo=UTC), input=EncodedJSON(json.dumps(value)),
                     output={"plain": [i]}) for i in range(count)]
    steps.append(StepRun(run=run, index=count, key="text", action="set_values", status="succeeded",
                         started_at=datetime(2026, 11, 28, tzinfo=UTC), input=EncodedJSON(json.dumps("just text")),
                         output=EncodedJSON("null")))
    insert_rows(StepRun, steps if count > 1 else steps[:1])
    if count == 1:
        insert_rows(StepRun, steps[1:])

    stored = {step.key: step for step in StepRun.objects.filter(run=run)}
    assert [stored[f"s{i}"].input for i in range(count)] == [value] * count
    assert [stored[f"s{i}"].output for i in range(count)] == [{"plain": [i]} for i in range(count)]
    assert stored["text"].input == "just text"
    # JSON null is stored as no value (SQL NULL), as a None is, on either path.
    assert list(StepRun.objects.filter(run=run, output__isnull=True).values_list("key", flat=True)) == ["text"]


def test_built_gives_the_instance_the_keyword_path_gives(make_workflow, django_assert_num_queries):
    # By attname, by a foreign key's object (cached: reading it back costs no query) and by default,
    # every field ends as Model.__init__'s keyword path leaves it.
    workflow = make_workflow("built")
    parent = WorkflowRun.objects.create(workflow=workflow, workflow_name="built", trigger="api")
    given = dict(workflow=workflow, workflow_name="built", trigger="api", params={"a": 1}, parent_run=parent,
                 root_run_id=parent.id, depth=1)
    fast, slow = built(WorkflowRun, **given), WorkflowRun(**given)

    assert isinstance(fast.id, type(slow.id)) and fast.id != slow.id  # each its own uuid4 default
    assert {field.attname: getattr(fast, field.attname) for field in WorkflowRun._meta.concrete_fields
            if field.attname != "id"} == {field.attname: getattr(slow, field.attname)
                                          for field in WorkflowRun._meta.concrete_fields if field.attname != "id"}
    with django_assert_num_queries(0):
        assert (fast.workflow, fast.parent_run, fast.version) == (workflow, parent, None)
    fast.save(force_insert=True)
    assert WorkflowRun.objects.get(id=fast.id).max_concurrency == 0  # a db_default left to the database
    with pytest.raises(TypeError, match="no field nonsense"):
        built(WorkflowRun, workflow_name="x", nonsense=1)
