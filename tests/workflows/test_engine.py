"""The engine, run inline: step order, conditions, errors, retries, child runs, limits, secrets."""
import json
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from werkzeug import Response

from datastore.models import Record
from logs.models import StepRun, WorkflowRun
from workflows.engine import run_execute
from workflows.services import run_cancel, runs_sweep, secret_set

pytestmark = pytest.mark.django_db


def steps_of(run):
    return list(StepRun.objects.filter(run=run).order_by("index", "attempt"))


def test_steps_run_in_order_and_each_is_logged(make_workflow, run_now, invoices, settings):
    workflow = make_workflow(
        parameters=[{"name": "amount", "type": "number", "required": True}],
        steps=[
            {"key": "invoice", "action": "create_record",
             "config": {"type": "invoice", "fields": {"amount": "{{ params.amount }}", "status": "paid"}}},
            {"key": "totals", "action": "set_values",
             "config": {"values": {"double": "{{ steps.invoice.amount * 2 }}", "id": "{{ steps.invoice.id }}"}}},
            {"key": "answer", "action": "return_response",
             "config": {"status": 201, "body": {"invoice": "{{ steps.invoice.id }}", "double": "{{ steps.totals.double }}"}}},
        ],
    )
    run = run_now(workflow, {"amount": 21})

    assert run.status == "succeeded", run.error
    record = Record.objects.get()
    assert record.data == {"amount": 21, "status": "paid"}
    assert run.response["status"] == 201
    assert run.response["body"] == {"invoice": str(record.id), "double": 42}
    logged = steps_of(run)
    assert [(s.index, s.key, s.status) for s in logged] == [
        (0, "invoice", "succeeded"), (1, "totals", "succeeded"), (2, "answer", "succeeded")
    ]
    assert all(s.duration_ms > 0 for s in logged)
    assert logged[0].input == {"type": "invoice", "fields": {"amount": 21, "status": "paid"}}
    assert logged[1].output == {"double": 42, "id": str(record.id)}
    assert run.current_step == 3 and run.duration_ms > 0 and run.version.number == 1
    costs = settings.ENGINE_ROOM_WU_COSTS
    assert run.wu == pytest.approx(costs["run"] + 3 * costs["step"] + costs["record_written"])
    assert sum(s.wu for s in logged) + costs["run"] == pytest.approx(run.wu)


def test_a_false_only_when_skips_the_step_with_its_reason(make_workflow, run_now):
    workflow = make_workflow(
        parameters=[{"name": "n", "type": "integer"}],
        steps=[
            {"key": "big", "action": "set_values", "only_when": "{{ params.n > 10 }}", "config": {"values": {"a": 1}}},
            {"key": "after", "action": "set_values", "config": {"values": {"seen": "{{ steps.big }}"}}},
        ],
    )
    run = run_now(workflow, {"n": 3})
    skipped, after = steps_of(run)
    assert run.status == "succeeded"
    assert skipped.status == "skipped" and "only_when was false" in skipped.skipped_reason
    assert after.output == {"seen": None}


def test_a_workflow_level_only_when_skips_the_run(make_workflow, run_now):
    workflow = make_workflow(
        parameters=[{"name": "go", "type": "boolean"}],
        only_when="{{ params.go }}",
        steps=[{"action": "set_values", "config": {"values": {"a": 1}}}],
    )
    run = run_now(workflow, {"go": False})
    assert run.status == "skipped"
    assert steps_of(run) == []


def test_a_failing_step_fails_the_run_and_names_the_step(make_workflow, run_now, invoices):
    workflow = make_workflow(steps=[
        {"key": "first", "action": "set_values", "config": {"values": {"a": 1}}},
        {"key": "change", "action": "update_record",
         "config": {"type": "invoice", "id": "00000000-0000-0000-0000-000000000000", "fields": {"status": "x"}}},
        {"key": "never", "action": "set_values", "config": {"values": {"b": 2}}},
    ])
    run = run_now(workflow)
    assert run.status == "failed"
    assert run.error_code == "step_failed"
    assert "Step 2 'change' (update_record) failed" in run.error
    assert [s.status for s in steps_of(run)] == ["succeeded", "failed"]


def test_a_bad_rendered_value_fails_the_step_naming_the_field(make_workflow, run_now, invoices):
    workflow = make_workflow(
        parameters=[{"name": "amount", "type": "text"}],
        steps=[{"key": "invoice", "action": "create_record",
                "config": {"type": "invoice", "fields": {"amount": "{{ params.amount }}"}}}],
    )
    run = run_now(workflow, {"amount": "lots"})
    (step,) = steps_of(run)
    assert run.status == "failed"
    assert "amount" in step.error and "number" in step.error
    assert Record.objects.count() == 0


def test_on_error_continue_logs_the_error_and_goes_on(make_workflow, run_now, invoices):
    workflow = make_workflow(steps=[
        {"key": "broken", "action": "delete_record", "on_error": "continue",
         "config": {"type": "invoice", "id": "00000000-0000-0000-0000-000000000000"}},
        {"key": "after", "action": "set_values", "config": {"values": {"error": "{{ steps.broken.error }}"}}},
    ])
    run = run_now(workflow)
    broken, after = steps_of(run)
    assert run.status == "succeeded"
    assert broken.status == "failed"
    assert after.output["error"] == broken.error == "No invoice record with id '00000000-0000-0000-0000-000000000000'."


def test_terminate_stops_the_run_as_a_success(make_workflow, run_now):
    workflow = make_workflow(steps=[
        {"key": "stop", "action": "terminate"},
        {"key": "never", "action": "set_values", "config": {"values": {"a": 1}}},
    ])
    run = run_now(workflow)
    assert run.status == "terminated"
    assert [s.key for s in steps_of(run)] == ["stop"]


def test_a_retryable_failure_is_requeued_with_backoff_then_succeeds(make_workflow, run_now, httpserver):
    calls = []

    def flaky(request):
        calls.append(request.headers.get("Idempotency-Key"))
        return Response("busy", status=503) if len(calls) == 1 else Response('{"ok": true}', content_type="application/json")

    httpserver.expect_request("/hook").respond_with_handler(flaky)
    workflow = make_workflow(steps=[
        {"key": "call", "action": "http_request", "retry": {"max_attempts": 3, "backoff_seconds": 7},
         "config": {"method": "POST", "url": httpserver.url_for("/hook"), "json": {"a": 1}}},
    ])
    before = timezone.now()
    run = run_now(workflow)

    assert run.status == "queued" and run.attempt == 2
    assert run.not_before >= before + timedelta(seconds=7)
    # Not yet due: a message that arrives early claims nothing.
    assert run_execute(run.id) is None
    WorkflowRun.objects.filter(id=run.id).update(not_before=timezone.now())
    run_execute(run.id)
    run.refresh_from_db()

    assert run.status == "succeeded"
    first, second = steps_of(run)
    assert (first.attempt, first.status, second.attempt, second.status) == (1, "failed", 2, "succeeded")
    assert "503" in first.error
    assert second.output["body"] == {"ok": True}
    # Both attempts carried the same key, so the receiver can drop the repeat.
    assert calls == [f"{run.id}:0", f"{run.id}:0"]


def test_a_non_retryable_failure_is_not_retried(make_workflow, run_now, httpserver):
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    workflow = make_workflow(steps=[
        {"key": "call", "action": "http_request", "retry": {"max_attempts": 3, "backoff_seconds": 1},
         "config": {"url": httpserver.url_for("/missing")}},
    ])
    run = run_now(workflow)
    assert run.status == "failed"
    assert len(steps_of(run)) == 1


def test_run_workflow_runs_the_child_inline_in_the_same_tree(make_workflow, run_now):
    child = make_workflow("child", parameters=[{"name": "n", "type": "integer", "required": True}], steps=[
        {"key": "answer", "action": "return_response", "config": {"body": {"twice": "{{ params.n * 2 }}"}}},
    ])
    parent = make_workflow("parent", steps=[
        {"key": "call", "action": "run_workflow", "config": {"workflow": "child", "params": {"n": "4"}}},
        {"key": "use", "action": "set_values", "config": {"values": {"got": "{{ steps.call.response.body.twice }}"}}},
    ])
    run = run_now(parent)
    assert run.status == "succeeded", run.error
    child_run = WorkflowRun.objects.get(workflow=child)
    assert child_run.parent_run_id == run.id and child_run.root_run_id == run.id and child_run.depth == 1
    assert child_run.trigger == "workflow" and child_run.status == "succeeded"
    assert steps_of(run)[1].output == {"got": 8}


def test_bad_child_parameters_fail_the_calling_step(make_workflow, run_now):
    make_workflow("child", parameters=[{"name": "n", "type": "integer", "required": True}])
    parent = make_workflow("parent", steps=[
        {"key": "call", "action": "run_workflow", "config": {"workflow": "child", "params": {"n": "four"}}},
    ])
    run = run_now(parent)
    assert run.status == "failed"
    assert "Bad parameters for 'child'" in steps_of(run)[0].error


def test_nested_calls_stop_at_max_call_depth_naming_the_chain(make_workflow, run_now, settings):
    settings.ENGINE_ROOM_MAX_CALL_DEPTH = 3
    workflow = make_workflow("loop", steps=[
        {"key": "again", "action": "run_workflow", "config": {"workflow": "loop"}},
    ])
    run = run_now(workflow)
    assert run.status == "failed"
    deepest = WorkflowRun.objects.get(depth=3)
    assert deepest.error_code == "step_failed"
    assert "exceeds MAX_CALL_DEPTH=3: loop → loop → loop → loop → loop" in deepest.error
    assert WorkflowRun.objects.count() == 4


def test_a_queued_run_can_be_cancelled_and_then_never_runs(make_workflow, run_now):
    workflow = make_workflow(steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    run = run_now(workflow, execute=False)
    run_cancel(run=run)
    assert run_execute(run.id) is None
    run.refresh_from_db()
    assert run.status == "cancelled" and steps_of(run) == []


def test_a_running_run_stops_before_its_next_step_when_cancelled(make_workflow, run_now):
    workflow = make_workflow(steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    run = run_now(workflow, execute=False)
    WorkflowRun.objects.filter(id=run.id).update(cancel_requested=True)
    run_execute(run.id)
    run.refresh_from_db()
    assert run.status == "cancelled" and steps_of(run) == []


def test_a_run_past_its_timeout_fails_with_timeout(make_workflow, run_now):
    workflow = make_workflow(timeout_seconds=5, steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    run = run_now(workflow, execute=False)
    WorkflowRun.objects.filter(id=run.id).update(started_at=timezone.now() - timedelta(seconds=6))
    run_execute(run.id)
    run.refresh_from_db()
    assert run.status == "failed" and run.error_code == "timeout"


def test_a_finished_run_is_never_executed_again(make_workflow, run_now, invoices):
    workflow = make_workflow(steps=[
        {"action": "create_record", "config": {"type": "invoice", "fields": {"amount": 1}}},
    ])
    run = run_now(workflow)
    assert run_execute(run.id) is None
    assert Record.objects.count() == 1 and len(steps_of(run)) == 1


def test_secrets_are_used_but_never_stored(make_workflow, run_now, httpserver):
    secret_set(name="API_KEY", value="sk_live_very_secret")
    httpserver.expect_request("/echo", headers={"Authorization": "Bearer sk_live_very_secret"}).respond_with_json(
        {"echo": "sk_live_very_secret"}
    )
    workflow = make_workflow(steps=[
        {"key": "call", "action": "http_request",
         "config": {"url": httpserver.url_for("/echo"), "headers": {"Authorization": "Bearer {{ secrets.API_KEY }}"}}},
        {"key": "copy", "action": "set_values", "config": {"values": {"leak": "{{ secrets.API_KEY }}"}}},
        {"key": "fail", "action": "update_record",
         "config": {"type": "{{ secrets.API_KEY }}", "id": "x", "fields": {}}},
    ])
    run = run_now(workflow)
    assert run.status == "failed"
    stored = repr([(s.input, s.output, s.error) for s in steps_of(run)]) + run.error + repr(run.response)
    assert "sk_live_very_secret" not in stored
    assert "Bearer ••••" in stored
    # The real value did reach the receiver: the expectation above matched on it.
    assert steps_of(run)[0].output["status"] == 200


def test_a_secret_in_a_url_path_is_masked_as_requests_quotes_it(make_workflow, run_now):
    # requests re-quotes a URL's path (requote_uri: the space becomes %20, the colon stays): the dry
    # run's capture stores that URL.
    secret_set(name="K", value="a:b c")
    workflow = make_workflow(steps=[
        {"key": "call", "action": "http_request", "config": {"url": "https://example.com/{{ secrets.K }}"}},
    ])
    run = run_now(workflow, dry_run=True)
    assert run.status == "succeeded"
    (step,) = steps_of(run)
    stored = json.dumps([step.input, step.output, step.error], ensure_ascii=False)
    leaks = [form for form in ("a:b c", "a:b%20c", "a%3Ab%20c", "a:b+c", "a%3Ab+c") if form in stored]
    assert not leaks, stored
    assert step.output["captured"][0]["url"] == "https://example.com/••••"


def test_a_dry_run_captures_outbound_calls_instead_of_sending(make_workflow, run_now, httpserver):
    workflow = make_workflow(steps=[
        {"key": "call", "action": "http_request", "config": {"method": "POST", "url": httpserver.url_for("/x"), "json": {}}},
    ])
    run = run_now(workflow, dry_run=True)
    assert run.status == "succeeded"
    assert httpserver.log == []
    assert steps_of(run)[0].output["captured"][0]["url"] == httpserver.url_for("/x")


def test_the_sweeper_requeues_runs_whose_worker_died(make_workflow, run_now):
    workflow = make_workflow(steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    run = run_now(workflow, execute=False)
    WorkflowRun.objects.filter(id=run.id).update(
        status="running", claim=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert runs_sweep()["expired"] == 1
    run.refresh_from_db()
    assert run.status == "queued"
    run_execute(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.claim == 2


def test_the_sweeper_resends_a_run_less_and_less_often(make_workflow, run_now, settings, time_machine):
    """A run left queued is resent after the threshold, then after twice, four times … as long again,
    so a run waiting behind a long backlog does not get a new message every threshold; a claim resets it."""
    settings.ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS = 60
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    workflow = make_workflow(steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    run = run_now(workflow, execute=False)
    resent_at = []
    for second in range(0, 60 * 16, 10):  # a sweep every 10 s for 16 minutes
        time_machine.move_to(start + timedelta(seconds=second), tick=False)
        if runs_sweep()["stale"]:
            resent_at.append(second)
    # Resent past 1 threshold, then past 2, 4 and 8 more after each resend (at the next sweep).
    assert resent_at == [70, 200, 450, 940], resent_at
    run.refresh_from_db()
    assert run.resends == 4
    run_execute(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.resends == 0


def test_draft_runs_execute_the_draft_and_published_runs_their_version(make_workflow, run_now):
    from workflows.services import workflow_update

    workflow = make_workflow(steps=[{"key": "v", "action": "set_values", "config": {"values": {"v": 1}}}])
    workflow_update(workflow=workflow, definition={
        "name": "wf", "steps": [{"key": "v", "action": "set_values", "config": {"values": {"v": 2}}}]
    })
    workflow.refresh_from_db()
    assert steps_of(run_now(workflow))[0].output == {"v": 1}
    assert steps_of(run_now(workflow, draft=True))[0].output == {"v": 2}


def test_a_step_that_outlives_the_run_timeout_fails_the_run_with_timeout(make_workflow, run_now, httpserver):
    import time

    httpserver.expect_request("/slow").respond_with_handler(lambda request: time.sleep(3) or Response("late"))
    workflow = make_workflow(timeout_seconds=1, steps=[
        {"key": "call", "action": "http_request", "config": {"url": httpserver.url_for("/slow"), "timeout_seconds": 30}},
    ])
    started = time.monotonic()
    run = run_now(workflow)
    assert run.status == "failed" and run.error_code == "timeout"
    assert time.monotonic() - started < 2.9, "the HTTP timeout was not capped by the run's own"


def test_max_concurrency_keeps_the_excess_queued_until_a_slot_frees(make_workflow, run_now):
    workflow = make_workflow(max_concurrency=1, steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    first = run_now(workflow, execute=False)
    second = run_now(workflow, execute=False)
    WorkflowRun.objects.filter(id=first.id).update(status="running", claim=1, started_at=timezone.now())

    assert run_execute(second.id) is None
    second.refresh_from_db()
    assert second.status == "queued" and second.waits_for_slot

    WorkflowRun.objects.filter(id=first.id).update(status="queued", claim=0)
    run_execute(first.id)
    second.refresh_from_db()
    # The finished run resent the waiting one, which is claimable now.
    assert not second.waits_for_slot and second.not_before is None
    run_execute(second.id)
    second.refresh_from_db()
    assert second.status == "succeeded"


def test_run_finished_is_announced_once_per_run_that_ends(make_workflow, run_now):
    from logs.signals import run_finished

    seen = []

    def receiver(sender, run, **kwargs):
        seen.append((run.workflow_name, run.status))

    run_finished.connect(receiver)
    try:
        ok = make_workflow("ok", steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
        run_now(ok)
        queued = run_now(ok, execute=False)
        run_cancel(run=queued)
    finally:
        run_finished.disconnect(receiver)
    assert seen == [("ok", "succeeded"), ("ok", "cancelled")]


@pytest.mark.django_db(transaction=True)
def test_a_step_longer_than_the_lease_keeps_it_renewed_and_the_run_is_not_swept(
    make_workflow, run_now, httpserver, settings
):
    """The process's lease keeper renews a running run's lease while its step is slower than the lease."""
    settings.ENGINE_ROOM_LEASE_SECONDS = 1.5  # renewed every 0.5 s; the step takes more than two leases
    leases = []

    def slow(request):
        started = time.monotonic()
        while time.monotonic() - started < 3.5:
            time.sleep(0.4)
            runs_sweep()  # the sweeper, as beat would run it, finds nothing expired to take over
            leases.append(WorkflowRun.objects.values_list("status", "claim", "lease_expires_at").get())
        connection.close()  # this server thread's own connection, so the test database can be dropped
        return Response('{"ok": true}', content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    workflow = make_workflow(steps=[{"key": "call", "action": "http_request", "config": {"url": httpserver.url_for("/slow")}}])
    run = run_now(workflow)

    assert run.status == "succeeded" and run.claim == 1
    assert {(status, claim) for status, claim, _ in leases} == {("running", 1)}
    # The lease kept moving on, long past the first one.
    expiries = [lease for _, _, lease in leases]
    assert expiries == sorted(expiries) and expiries[-1] > expiries[0] + timedelta(seconds=2)


def test_a_step_whose_commit_fails_is_retried_from_that_step_with_the_rows_before_it_kept(
    make_workflow, run_now, invoices, monkeypatch
):
    """The write and the logs roll back together; the failure is logged at the step that failed, after
    the read-only step before it, and the retry does the write again (nothing skipped, nothing doubled)."""
    workflow = make_workflow(steps=[
        {"key": "amount", "action": "set_values", "config": {"values": {"n": 7}}},
        {"key": "save", "action": "create_record", "retry": {"max_attempts": 2, "backoff_seconds": 1},
         "config": {"type": "invoice", "fields": {"amount": "{{ steps.amount.n }}"}}},
    ])
    from workflows import engine

    real = engine._write_claimed
    calls = []

    def failing_once(run, changes, wu_add, rows, **options):
        calls.append([row.key for row in rows])
        if len(calls) == 1:
            raise IntegrityError("the step's commit failed")
        return real(run, changes, wu_add, rows, **options)

    monkeypatch.setattr(engine, "_write_claimed", failing_once)
    run = run_now(workflow)

    assert run.status == "queued" and run.current_step == 1 and run.attempt == 2
    assert Record.objects.count() == 0
    assert [(s.key, s.status, s.attempt) for s in steps_of(run)] == [("amount", "succeeded", 1), ("save", "failed", 1)]
    WorkflowRun.objects.filter(id=run.id).update(not_before=timezone.now())
    run_execute(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded" and Record.objects.count() == 1
    assert [(s.key, s.status, s.attempt) for s in steps_of(run)][-1] == ("save", "succeeded", 2)


def test_a_resend_the_broker_refused_does_not_count(make_workflow, run_now, settings, time_machine, monkeypatch):
    """While the broker is down the sweeper retries each sweep, and the doubling starts only with a sent message."""
    from workflows.services import runs

    settings.ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS = 60
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    run = run_now(make_workflow(steps=[{"action": "set_values", "config": {"values": {"a": 1}}}]), execute=False)
    monkeypatch.setattr(runs, "dispatch", lambda *args, **kwargs: False)
    for second in (70, 80):
        time_machine.move_to(start + timedelta(seconds=second), tick=False)
        assert runs_sweep()["stale"] == 1  # found again each sweep, since nothing was sent
    run.refresh_from_db()
    assert run.resends == 0


def test_a_message_of_runs_goes_on_past_a_run_that_raised(make_workflow, run_now, monkeypatch, caplog, settings):
    """One run's unexpected error is logged; the runs after it in the same message still run."""
    from workflows import engine

    settings.ENGINE_ROOM_MESSAGE_SECONDS = 60  # a slow machine must not hand the rest back to a broker

    workflow = make_workflow(steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    first, second, third = (run_now(workflow, execute=False) for _ in range(3))
    real = engine._claim

    def claim(run_id):
        if str(run_id) == str(first.id):
            raise RuntimeError("the claim broke")
        return real(run_id)

    monkeypatch.setattr(engine, "_claim", claim)
    engine.run_execute_many([str(first.id), str(second.id), str(third.id)], "default", 60)

    statuses = dict(WorkflowRun.objects.values_list("id", "status"))
    assert [statuses[run.id] for run in (first, second, third)] == ["queued", "succeeded", "succeeded"]
    assert f"Run {first.id}, one of 3 in a message, raised" in caplog.text


def test_step_logs_keep_their_values_as_logged(make_workflow, run_now):
    """The step rows (one JSON parameter on PostgreSQL) keep nested inputs and outputs, a skipped step's
    missing output as NULL, text with quotes and non-ASCII, and start times to the microsecond."""
    workflow = make_workflow(steps=[
        {"key": "a", "action": "set_values", "config": {"values": {
            "text": "l'été \"quoted\" ✓", "nested": {"list": [1, 2.5, None, True]}}}},
        {"key": "b", "action": "set_values", "only_when": "{{ false }}", "config": {"values": {"x": 1}}},
        {"key": "c", "action": "set_values", "config": {"values": {"again": "{{ steps.a.nested.list[1] }}"}}},
    ])
    run = run_now(workflow)

    assert run.status == "succeeded", run.error
    a, b, c = steps_of(run)
    assert a.output == {"text": "l'été \"quoted\" ✓", "nested": {"list": [1, 2.5, None, True]}}
    assert a.input == {"values": a.output}
    assert (b.status, b.output, b.input) == ("skipped", None, None)
    assert StepRun.objects.filter(run=run, output__isnull=True).count() == 1
    assert c.output == {"again": 2.5}
    assert a.started_at <= b.started_at <= c.started_at <= run.finished_at
    assert any(step.started_at.microsecond % 1000 for step in (a, b, c))  # not cut to milliseconds


def test_runs_share_a_message_only_with_runs_of_the_same_queue_due_time_and_timeout(
    make_workflow, monkeypatch, django_capture_on_commit_callbacks, settings
):
    """A message carries its runs' timeout as its time limits, so a slow workflow's limit never stretches
    another's; 40 runs of each go five to a message (a group under 80 is split into eight)."""
    from django.db import transaction

    from workflows.services import runs

    settings.ENGINE_ROOM_RUNS_PER_MESSAGE = 10
    sent = []
    monkeypatch.setattr(runs, "dispatch_many", lambda run_ids, queue, countdown, timeout: sent.append((len(run_ids), timeout)))
    quick = make_workflow(name="quick", timeout_seconds=30, steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    slow = make_workflow(name="slow", timeout_seconds=600, steps=[{"action": "set_values", "config": {"values": {"a": 1}}}])
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        runs.runs_enqueue_many(specs=[{"workflow": workflow, "params": {}, "trigger": "schedule"}
                                      for workflow in [quick, slow] * 40])

    assert sorted(sent) == [(5, 30)] * 8 + [(5, 600)] * 8
