"""The management commands people use from a shell: import/export, secrets, run_workflow, bootstrap."""
import io
import json

import pytest
from django.core.management import CommandError, call_command

from datastore.models import DataType
from logs.models import WorkflowRun
from workflows.models import Secret, Workflow
from workflows.selectors import secret_reveal

pytestmark = pytest.mark.django_db

BUNDLE = {
    "format": 1,
    "data_types": [{"name": "lead", "fields": [{"name": "email", "type": "email"}, {"name": "score", "type": "integer"}]}],
    "workflows": [
        {"format": 1, "name": "score_lead", "parameters": [{"name": "email", "type": "email", "required": True}],
         "steps": [{"key": "lead", "action": "create_record",
                    "config": {"type": "lead", "fields": {"email": "{{ params.email }}", "score": 10}}}]},
        {"format": 1, "name": "ping", "steps": [{"action": "set_values", "config": {"values": {"pong": True}}}]},
    ],
}


def run_command(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_import_loads_types_first_then_publishes_workflows(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    output = run_command("workflows", "import", str(path))
    assert "Imported score_lead and published." in output
    assert DataType.objects.get(name="lead").field_map()["score"]["type"] == "integer"
    workflow = Workflow.objects.get(name="score_lead")
    assert workflow.live_version.number == 1


def test_import_with_draft_does_not_publish(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(BUNDLE["workflows"][1]))
    run_command("workflows", "import", str(path), "--draft")
    assert Workflow.objects.get(name="ping").live_version is None


def test_a_bad_file_names_every_error_and_saves_nothing(tmp_path):
    bad = json.loads(json.dumps(BUNDLE))
    bad["workflows"][0]["steps"][0]["action"] = "create_recrod"
    bad["workflows"][1]["parameters"] = [{"name": "x", "type": "money"}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(CommandError) as error:
        run_command("workflows", "import", str(path))
    message = str(error.value)
    assert "workflows[0].steps[0].action: unknown action 'create_recrod'" in message
    assert "workflows[1].parameters[0].type" in message
    assert not Workflow.objects.exists() and not DataType.objects.exists()


def test_export_all_round_trips_through_import(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    run_command("workflows", "import", str(path))
    exported = json.loads(run_command("workflows", "export", "--all"))
    assert [w["name"] for w in exported["workflows"]] == ["ping", "score_lead"]
    assert exported["workflows"][1]["auth"] == "token"  # defaults are written out
    Workflow.objects.all().delete()
    DataType.objects.all().delete()
    again = tmp_path / "again.json"
    again.write_text(json.dumps(exported))
    run_command("workflows", "import", str(again))
    assert Workflow.objects.count() == 2


def test_secret_set_reads_standard_input_and_stores_it_encrypted():
    output = run_command("secret", "set", "STRIPE_KEY", stdin=io.StringIO("sk_test_123\n"))
    assert "sk_test_123" not in output
    assert b"sk_test_123" not in bytes(Secret.objects.get(name="STRIPE_KEY").ciphertext)
    assert secret_reveal("STRIPE_KEY") == "sk_test_123"
    assert run_command("secret", "list") == "STRIPE_KEY\n"


def test_run_workflow_inline_prints_the_outcome_and_its_steps(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    run_command("workflows", "import", str(path))
    output = run_command("run_workflow", "score_lead", "--param", "email=ada@example.com", "--inline")
    assert "Status: succeeded" in output
    assert "lead  create_record  1    succeeded" in output
    assert WorkflowRun.objects.get().trigger == "manual"


def test_run_workflow_names_bad_parameters(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    run_command("workflows", "import", str(path))
    with pytest.raises(CommandError) as error:
        run_command("run_workflow", "score_lead", "--param", "email=not-an-address", "--inline")
    assert "email:" in str(error.value)
    assert not WorkflowRun.objects.exists()


def test_bootstrap_creates_the_admin_and_demo_once(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run_command("bootstrap")
    assert "Created the admin account" in first and "Loaded the demo workspace" in first
    assert (tmp_path / "admin-password.txt").exists()
    names = set(Workflow.objects.values_list("name", flat=True))
    assert names == {"send_welcome_email", "process_stripe_payment", "nightly_aggregation"}
    second = run_command("bootstrap")
    assert "Created" not in second and "Loaded" not in second


def test_a_bundle_with_the_wrong_shape_is_refused_clearly(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"data_types": ["lead"], "workflows": {"name": "x"}}))
    with pytest.raises(CommandError) as error:
        run_command("workflows", "import", str(path))
    assert "data_types: must be a list of objects" in str(error.value)
    assert "workflows: must be a list of objects" in str(error.value)
