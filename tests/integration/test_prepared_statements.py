"""On PostgreSQL a worker's repeated statements are prepared once per connection (bench O22)."""
import os
import subprocess
import sys

import pytest
from django.db import connection, transaction

from tests.test_structure import workspace  # noqa: F401  (the benchmark's bundle, as a fixture)
from workflows import engine
from workflows.models import Workflow
from workflows.services import run_enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_runs_claim_and_commit_are_prepared_after_their_second_use(workspace):  # noqa: F811
    """Parsing and planning the claim and the commit once per connection is what O22 saves; runs stay exact."""
    workflow = Workflow.objects.select_related("live_version").get(name="bench_steps3")
    runs = []
    for n in range(3):
        with transaction.atomic():
            run = run_enqueue(workflow=workflow, params={"n": n}, trigger="manual", dispatch_on_commit=False)
        engine.run_execute(run.id)
        run.refresh_from_db()
        runs.append(run)
    assert [run.status for run in runs] == ["succeeded"] * 3
    assert [run.steps.count() for run in runs] == [3, 3, 3]
    prepared = _prepared()
    assert any(sql.startswith('UPDATE "logs_workflowrun"') and "RETURNING" in sql for sql in prepared), prepared
    assert any(sql.startswith("WITH") and "logs_steprun" in sql for sql in prepared), prepared


def test_prepared_statements_can_be_turned_off_for_a_transaction_mode_pooler():
    """ENGINE_ROOM_DB_PREPARED=false goes back to client-side binding, which any pooler accepts."""
    code = ("import django; django.setup(); from django.conf import settings; "
            "o = settings.DATABASES['default']['OPTIONS']; "
            "print(o.get('server_side_binding'), o.get('prepare_threshold'))")
    inherited = {name: value for name, value in os.environ.items() if name != "ENGINE_ROOM_DB_PREPARED"}
    env = {**inherited, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], env={**env, "ENGINE_ROOM_DB_PREPARED": "false"},
                         capture_output=True, text=True, check=True)
    assert on.stdout.split() == ["True", "2"]
    assert off.stdout.split() == ["None", "None"]
