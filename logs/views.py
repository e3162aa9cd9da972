"""Logs pages: the dashboard (home page), the run list, a run's detail, the event log, and run actions.

Everyone signed in reads; cancel and re-run need the editor or admin role (logs.roles). The actions
themselves live in `workflows` (DESIGN.md): the views import its services where they call them.
"""
from datetime import datetime

from django.contrib import messages
from django.http import Http404, HttpResponseForbidden, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from config.errors import ApplicationError, NotFoundError
from config.sections import SECTIONS

from . import events, export, metrics, selectors
from .forms import PERIODS, RunFilterForm
from .models import RunStatus
from .roles import user_can_operate_runs
from .waterfall import waterfall

LIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


def _filter_form(request) -> RunFilterForm:
    data = request.GET.copy()
    for key in ("before", "after"):
        data.pop(key, None)
    return RunFilterForm(data or None, workflow_names=selectors.workflow_names())


def _filter_query(request) -> str:
    """The filters as a query string, without the page cursors (for links that keep the filters)."""
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    return query.urlencode()


def _run_list_context(request) -> dict:
    form = _filter_form(request)
    filters = selectors.run_filters_resolve(form.filters())
    page = selectors.run_page(filters=filters, before=request.GET.get("before"), after=request.GET.get("after"))
    counts = selectors.run_status_counts(filters=filters)
    in_flight_counted = any(c.count for c in counts if c.status in LIVE_STATUSES
                            and (not filters.status or c.status == filters.status))
    first_page = not request.GET.get("before") and not request.GET.get("after")
    failed_ids = [run.id for run in page.runs if run.status == RunStatus.FAILED]
    return {
        "section": "logs",
        "form": form,
        "filters": filters,
        "page": page,
        "counts": counts,
        "total": sum(c.count for c in counts if not filters.status or c.status == filters.status),
        "total_capped": any(c.capped for c in counts if not filters.status or c.status == filters.status),
        "query": _filter_query(request),
        # Polled while something on this page (or, on the first page, in this filter) is still in flight.
        "poll": page.in_flight or (first_page and in_flight_counted),
        "failure_runs": selectors.on_failure_runs(run_ids=failed_ids),
        "cursor_query": request.GET.urlencode(),
    }


@require_GET
def run_list(request):
    """Runs, newest first, filtered; counts per status; export links; refreshes while runs are in flight."""
    return render(request, "logs/run_list.html", _run_list_context(request))


@require_GET
def run_list_rows(request):
    """The counts and the table alone, for htmx to swap in while runs are in flight."""
    return render(request, "logs/_run_rows.html", _run_list_context(request))


@require_GET
def run_export(request, format):
    """The filtered runs (all of them, not one page) as CSV or JSON lines, streamed."""
    filters = _filter_form(request).filters()
    runs = selectors.run_list(filters=filters)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if format == "csv":
        response = StreamingHttpResponse(export.csv_lines(runs), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(export.json_lines(runs), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="runs-{stamp}.{format}"'
    return response


def _run_or_404(id):
    try:
        return selectors.run_get(id=id)
    except NotFoundError as exc:
        raise Http404(exc.message) from None


def _event_types(request, default=tuple(events.EVENT_TYPES)) -> tuple[str, ...]:
    chosen = tuple(t for t in request.GET.getlist("events") if t in events.EVENT_TYPES)
    return chosen or tuple(default)


def _run_detail_context(request, run) -> dict:
    steps = selectors.run_steps(run=run)
    definition = selectors.run_definition(run)
    chosen = _event_types(request)
    run_events = [event for event in events.run_events(run=run, steps=steps, definition=definition)
                  if event.type in chosen]
    can_operate = user_can_operate_runs(request.user)
    return {
        "section": "logs",
        "run": run,
        "steps": steps,
        "bars": waterfall(run=run, steps=steps, now=timezone.now()),
        "tree": selectors.run_tree(run=run),
        "events": run_events,
        "event_types": events.EVENT_TYPES,
        "chosen_events": chosen,
        "live": run.status in LIVE_STATUSES,
        "can_cancel": can_operate and run.status in LIVE_STATUSES and not run.cancel_requested,
        "can_rerun": can_operate and run.finished and run.workflow_id is not None,
        "can_operate": can_operate,
        "events_query": request.GET.urlencode(),
    }


@require_GET
def run_detail(request, id):
    """One run: what started it, its parameters, its tree, a waterfall of its steps, events; cancel and re-run."""
    run = _run_or_404(id)
    return render(request, "logs/run_detail.html", _run_detail_context(request, run))


@require_GET
def run_detail_live(request, id):
    """The changing part of a run's page, for htmx to swap in while the run is in flight."""
    run = _run_or_404(id)
    return render(request, "logs/_run_body.html", _run_detail_context(request, run))


def _forbidden(request):
    return HttpResponseForbidden("Cancelling and re-running runs needs the editor or admin role.")


@require_POST
def run_cancel(request, id):
    """Cancel a queued run at once, or ask a running one to stop before its next step."""
    from workflows.services import run_cancel as cancel

    if not user_can_operate_runs(request.user):
        return _forbidden(request)
    run = _run_or_404(id)
    if run.status not in LIVE_STATUSES:
        messages.warning(request, f"This run is {run.status}; there is nothing to cancel.")
        return redirect("logs-run", id=run.id)
    run = cancel(run=run)
    if run.status == RunStatus.CANCELLED:
        messages.success(request, "Run cancelled before it started.")
    else:
        messages.success(request, "Cancel requested: the run stops before its next step.")
    return redirect("logs-run", id=run.id)


@require_POST
def run_rerun(request, id):
    """Start the run's workflow again with the same parameters, as a new manual run, and show it."""
    from workflows.services import run_rerun as rerun

    if not user_can_operate_runs(request.user):
        return _forbidden(request)
    run = _run_or_404(id)
    try:
        new = rerun(run=run, caller=f"user:{request.user.get_username()}")
    except ApplicationError as exc:  # the workflow is gone or unpublished, or the WU budget is used up
        messages.error(request, exc.message)
        return redirect("logs-run", id=run.id)
    messages.success(request, f"Re-run queued with the same parameters as run {str(run.id)[:8]}.")
    return redirect("logs-run", id=new.id)


def _parse_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = parse_datetime(text.replace(" ", "+"))
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.UTC)
    return moment


@require_GET
def event_list(request):
    """Bubble-style event log across runs, newest first, filtered by event type and workflow."""
    chosen = _event_types(request, default=("workflow_started", "workflow_finished", "workflow_error"))
    workflow = request.GET.get("workflow") or None
    names = selectors.workflow_names()
    if workflow not in names:
        workflow = None
    period = request.GET.get("period", "24h")
    since = timezone.now() - PERIODS[period] if period in PERIODS else None
    filters = events.StreamFilters(types=chosen, workflow=workflow, since=since,
                                   before=_parse_moment(request.GET.get("before")))
    stream, cursor = events.event_stream(filters=filters)
    query = request.GET.copy()
    query.pop("before", None)
    return render(request, "logs/events.html", {
        "section": "logs",
        "stream": stream,
        "older": cursor.isoformat() if cursor else None,
        "event_types": events.EVENT_TYPES,
        "chosen_events": chosen,
        "workflow_names": names,
        "workflow": workflow,
        "period": period,
        "query": query.urlencode(),
    })


@require_GET
def dashboard(request):
    """The home page: runs per hour, failure rate, durations, slowest steps and WU, with Chart.js."""
    return render(request, "logs/dashboard.html", {"data": metrics.dashboard_data_cached(),
                                                   "sections": SECTIONS})


@require_GET
def dashboard_data(request):
    """The dashboard's figures as JSON (the page refreshes its charts from here)."""
    return JsonResponse(metrics.dashboard_data_cached())
