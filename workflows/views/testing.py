"""Test runs from the editor (shown step by step as they commit), run panels, and "Detect data"."""
import json
import logging
import threading
import uuid
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from api_endpoints.models import SampleRequest
from config.errors import ApplicationError, ParameterError
from logs.models import RunTrigger, StepRun, WorkflowRun
from workflows import definition as definitions
from workflows import editor
from workflows.engine import run_execute
from workflows.parameters import coerce_params
from workflows.services import run_enqueue

from .access import EDITOR, page, role_required
from .editing import check_form, check_payload, known_names, test_inputs
from .listing import workflow_or_404

logger = logging.getLogger(__name__)

# How long the "Detect data" panel waits for a request before it gives up (the reader may start again).
DETECT_WAIT = timedelta(minutes=5)


def _execute(run_id) -> None:
    try:
        run_execute(run_id)
    except Exception:  # the run row records step failures; this is for bugs, which must not kill the thread silently
        logger.exception("Test run %s failed outside its steps", run_id)
    finally:
        connections.close_all()


def start_run(run_id) -> None:
    """Execute a test run now, beside the request, so the panel can show each step as it commits.

    A thread of the web process rather than a Celery task: a test must work while no worker is up, and
    the page polls the run's rows either way. If the process dies mid-run, the sweeper hands the run to a
    worker like any other (it is an ordinary queued/running run with a lease).
    """
    threading.Thread(target=_execute, args=(run_id,), name=f"test-run-{run_id}", daemon=True).start()


def _test_values(request, parameters) -> dict:
    return {parameter.name: request.POST.get(f"t-{parameter.name}", "") for parameter in parameters}


@require_POST
@role_required(EDITOR, section="workflows")
def workflow_test_run(request, name):
    """Run what the editor holds now (saved or not) with the typed parameters; dry by default."""
    workflow = workflow_or_404(name)
    check = check_form(request.POST, known_names())
    context = {"workflow": workflow, "check": check_payload(check)}
    if not check.ok:
        message = "Fix the problems marked in the editor first; nothing ran."
        return page(request, "workflows/_run_refused.html", {**context, "message": message}, section="workflows")
    parsed = definitions.parse(check.document)
    try:
        params = coerce_params(parsed.parameters, _test_values(request, parsed.parameters), source="form")
    except ParameterError as exc:
        inputs = test_inputs(check.document, request.POST)
        for item in inputs:
            item["error"] = exc.fields.get(item["name"], "")
        return page(request, "workflows/_run_refused.html", {
            **context, "message": "Some parameters are missing or have the wrong type; nothing ran.",
            "test_inputs": inputs,
        }, section="workflows")
    dry_run = request.POST.get("t-dry-run") == "on"
    # The run keeps the definition it executed; the workflow row itself is not changed.
    workflow.definition = parsed.document
    try:
        with transaction.atomic():
            run = run_enqueue(
                workflow=workflow, params=params, trigger=RunTrigger.MANUAL, draft=True, dry_run=dry_run,
                caller=f"editor:{request.user.get_username()}", dispatch_on_commit=False,
            )
            transaction.on_commit(lambda: start_run(run.id))
    except ApplicationError as exc:  # a budget refusal, say
        return page(request, "workflows/_run_refused.html", {**context, "message": exc.message}, section="workflows")
    return page(request, "workflows/_run.html", run_context(run), section="workflows")


def _captured(output):
    """(the step's own output, what a dry run captured instead of sending)."""
    if isinstance(output, dict) and set(output) == {"output", "captured"}:
        return output["output"], output["captured"]
    return output, []


def pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def captured_summary(item: dict) -> str:
    """One line for an email or call a dry run kept instead of sending."""
    kind = item.get("kind")
    if kind == "email":
        to = item.get("to")
        return f"Email to {', '.join(to) if isinstance(to, list) else to}: “{item.get('subject', '')}”"
    if kind == "http_request":
        return f"{item.get('method', '')} {item.get('url', '')}"
    return str(kind or "effect").replace("_", " ")


def run_context(run: WorkflowRun) -> dict:
    """A run with one row per step of its definition: its attempts, or waiting / running / not run."""
    document = run.draft_definition or (run.version.definition if run.version_id else {}) or {}
    attempts: dict[int, list] = {}
    for step_run in StepRun.objects.filter(run=run).order_by("index", "attempt"):
        own, captured = _captured(step_run.output)
        step_run.output_text = "" if own is None else pretty(own)
        step_run.input_text = "" if step_run.input is None else pretty(step_run.input)
        step_run.captured = [{"summary": captured_summary(item), "text": pretty(item)} for item in captured]
        attempts.setdefault(step_run.index, []).append(step_run)
    rows = []
    for index, step in enumerate(document.get("steps") or []):
        tries = attempts.get(index, [])
        if tries:
            state = tries[-1].status
        elif run.finished:
            state = "not run"
        elif index == run.current_step and run.status == "running":
            state = "running"
        else:
            state = "waiting"
        rows.append({
            "index": index,
            "key": step.get("key") or f"step_{index + 1}",
            "action": step.get("action"),
            "state": state,
            "attempts": tries,
        })
    return {
        "run": run, "rows": rows, "workflow_name": run.workflow_name,
        "response_text": "" if run.response is None else pretty(run.response),
        "params_text": pretty(run.params),
    }


def _run_or_404(name: str, id) -> WorkflowRun:
    try:
        id = uuid.UUID(str(id))
    except ValueError:
        raise Http404("No such run.") from None
    run = WorkflowRun.objects.select_related("version").filter(id=id, workflow_name=name).first()
    if run is None:
        raise Http404("No such run of this workflow.")
    return run


@require_GET
def workflow_run(request, name, id):
    """A run of this workflow: the live panel (htmx polls it) or, opened directly, a page of its own."""
    run = _run_or_404(name, id)
    context = run_context(run)
    if request.headers.get("HX-Request"):
        return page(request, "workflows/_run.html", context, section="workflows")
    return page(request, "workflows/run.html", context, section="workflows")


def _since(text: str) -> datetime | None:
    moment = parse_datetime(text or "")
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.UTC)


@require_GET
@role_required(EDITOR, section="workflows")
def workflow_detect(request, name):
    """"Detect data": wait (polled) for a request to the workflow's initialize URL, then propose its parameters."""
    workflow = workflow_or_404(name)
    since = _since(request.GET.get("since", ""))
    if since is None or request.GET.get("start"):
        since = timezone.now()
    context = {"workflow": workflow, "since": since.isoformat()}
    sample = SampleRequest.objects.filter(workflow=workflow, created__gte=since).first()
    if sample is None:
        expired = timezone.now() - since > DETECT_WAIT
        return page(request, "workflows/_detect.html", {**context, "waiting": not expired, "expired": expired},
                    section="workflows")
    names = known_names()
    rows, data = [], editor.FormData()
    for spec in sample.parameters:
        uid = editor.new_uid()
        editor.add_parameter(data, uid, spec)
        rows.append({"spec": spec, "row": editor.parameter_view(data, uid, data_types=names["data_types"])})
    return page(request, "workflows/_detect.html", {
        **context, "sample": sample, "proposed": rows, "sample_text": pretty(sample.request),
    }, section="workflows")
