"""The engine with real processes: a Celery worker on Redis and PostgreSQL, HTTP and SMTP on loopback."""
import threading
import time

import pytest
from django.db import transaction
from werkzeug import Response

from datastore.models import Record
from datastore.services import data_type_create
from logs.models import StepRun, WorkflowRun
from tests.integration.conftest import wait_until
from workflows.services import run_enqueue, workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def publish(definition: dict):
    workflow = workflow_create(definition=definition)
    workflow_publish(workflow=workflow)
    return workflow


def enqueue(workflow, params=None):
    with transaction.atomic():
        return run_enqueue(workflow=workflow, params=params or {}, trigger="manual")


def test_three_step_workflow_runs_on_a_real_worker(processes, httpserver, smtp_server):
    data_type_create(name="lead", fields=[{"name": "email", "type": "email"}, {"name": "crm_id", "type": "text"}])
    httpserver.expect_request("/crm", method="POST").respond_with_json({"id": "crm-42"}, status=201)
    workflow = publish({
        "name": "onboard",
        "parameters": [{"name": "email", "type": "email", "required": True}],
        "steps": [
            {"key": "lead", "action": "create_record", "config": {"type": "lead", "fields": {"email": "{{ params.email }}"}}},
            {"key": "crm", "action": "http_request",
             "config": {"method": "POST", "url": httpserver.url_for("/crm"), "json": {"email": "{{ steps.lead.email }}"},
                        "expect_status": 201}},
            {"key": "mail", "action": "send_email",
             "config": {"to": "{{ params.email }}", "subject": "Welcome", "body": "CRM id {{ steps.crm.body.id }}"}},
        ],
    })
    processes.worker(env={"EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}"})

    run = enqueue(workflow, {"email": "ada@example.com"})
    run = wait_until(lambda: WorkflowRun.objects.filter(id=run.id, status__in=["succeeded", "failed"]).first(),
                     timeout=60, message="the run to finish")

    assert run.status == "succeeded", (run.error, processes.logs())
    steps = list(StepRun.objects.filter(run=run).order_by("index"))
    assert [(s.key, s.status) for s in steps] == [("lead", "succeeded"), ("crm", "succeeded"), ("mail", "succeeded")]
    assert all(s.duration_ms > 0 for s in steps) and run.duration_ms >= sum(s.duration_ms for s in steps)
    assert Record.objects.get().data["email"] == "ada@example.com"
    (request, _), = httpserver.log
    assert request.json == {"email": "ada@example.com"}
    assert request.headers["Idempotency-Key"] == f"{run.id}:1"
    (message,) = smtp_server.envelopes
    assert message.rcpt_tos == ["ada@example.com"] and b"CRM id crm-42" in message.content


def test_a_killed_worker_loses_no_run_and_repeats_no_committed_step(processes, httpserver):
    """SIGKILL mid-step: the sweeper hands the run to another worker within a lease period."""
    data_type_create(name="mark", fields=[{"name": "step", "type": "integer"}])
    arrived, release = threading.Event(), threading.Event()
    received = []

    def slow(request):
        received.append(request.headers.get("Idempotency-Key"))
        arrived.set()
        release.wait(timeout=30)
        from werkzeug import Response

        return Response("{}", content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    workflow = publish({
        "name": "crashy",
        "steps": [
            {"key": "one", "action": "create_record", "config": {"type": "mark", "fields": {"step": 1}}},
            {"key": "call", "action": "http_request", "config": {"url": httpserver.url_for("/slow"), "timeout_seconds": 60}},
            {"key": "three", "action": "create_record", "config": {"type": "mark", "fields": {"step": 3}}},
        ],
    })
    fast = {"ENGINE_ROOM_LEASE_SECONDS": "3", "ENGINE_ROOM_SWEEP_SECONDS": "1"}
    doomed = processes.worker(env=fast, name="doomed")
    run = enqueue(workflow)
    assert arrived.wait(timeout=60), processes.logs()
    processes.kill(doomed)
    release.set()
    assert WorkflowRun.objects.get(id=run.id).status == "running"

    processes.worker(env=fast, name="rescuer")
    processes.beat(env=fast)
    run = wait_until(lambda: WorkflowRun.objects.filter(id=run.id, status="succeeded").first(),
                     timeout=60, message="the rescued run to succeed")

    assert run.claim == 2
    marks = sorted(record.data["step"] for record in Record.objects.all())
    assert marks == [1, 3], "a committed step ran twice, or a step was lost"
    assert StepRun.objects.filter(run=run, index=0).count() == 1
    assert list(StepRun.objects.filter(run=run).order_by("index").values_list("key", "status")) == [
        ("one", "succeeded"), ("call", "succeeded"), ("three", "succeeded")
    ]
    # The step in flight when the worker died is repeated (at-least-once) with the same key.
    assert received == [f"{run.id}:1", f"{run.id}:1"]


def _enqueue_together(workflow, params: list[dict]) -> list[WorkflowRun]:
    """Runs written and sent as the dispatcher sends runs that start together."""
    from workflows.services.runs import runs_enqueue_many

    with transaction.atomic():
        return runs_enqueue_many(specs=[{"workflow": workflow, "params": p, "trigger": "schedule"} for p in params])


def test_runs_that_start_together_share_messages_and_all_finish(processes):
    """100 runs due at once travel ten to a message, and each is still claimed and logged on its own."""
    workflow = publish({"name": "tick", "parameters": [{"name": "n", "type": "integer"}],
                        "steps": [{"key": "double", "action": "set_values", "config": {"values": {"v": "{{ params.n * 2 }}"}}}]})
    processes.worker(concurrency=2)

    runs = _enqueue_together(workflow, [{"n": n} for n in range(100)])
    wait_until(lambda: WorkflowRun.objects.filter(status="succeeded").count() == 100, timeout=60,
               message="the 100 runs to finish")

    assert processes.logs().count("workflows.tasks.run_execute_many[") >= 10
    outputs = dict(StepRun.objects.filter(run__in=runs).values_list("run_id", "output"))
    assert [outputs[run.id]["v"] for run in runs] == [n * 2 for n in range(100)]


def test_runs_behind_a_slow_run_in_their_message_go_to_an_idle_worker(processes, httpserver):
    """A message's runs not started after ENGINE_ROOM_MESSAGE_SECONDS go back to the queue: the run that
    shares a message with a 4-second call finishes long before it, on the other worker process."""
    def answer(request):
        time.sleep(float(request.args["seconds"]))
        return Response("ok")

    httpserver.expect_request("/wait").respond_with_handler(answer)
    workflow = publish({"name": "call", "timeout_seconds": 30, "parameters": [{"name": "seconds", "type": "number"}],
                        # Only the slow run calls: the test server answers one request at a time.
                        "steps": [{"key": "call", "action": "http_request", "only_when": "{{ params.seconds > 0 }}",
                                   "config": {"url": httpserver.url_for("/wait") + "?seconds={{ params.seconds }}"}}]})
    processes.worker(concurrency=2, env={"ENGINE_ROOM_MESSAGE_SECONDS": "0.5"})

    # Sixteen runs go two to a message: the slow one and the one after it share the first.
    slow, behind, *others = _enqueue_together(workflow, [{"seconds": 4}] + [{"seconds": 0}] * 15)
    wait_until(lambda: WorkflowRun.objects.filter(status="succeeded").count() == 16, timeout=60,
               message="the 16 runs to finish")

    slow.refresh_from_db()
    behind.refresh_from_db()
    assert (slow.finished_at - behind.finished_at).total_seconds() > 2, (slow.finished_at, behind.finished_at)
