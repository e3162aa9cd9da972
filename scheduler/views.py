"""Scheduler pages: pending scheduled runs, recurring events and batches (all behind login)."""
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ApplicationError, NotFoundError, ValidationError
from config.roles import editor_required_for_changes, user_is_editor
from scheduler import selectors, services
from scheduler.forms import RecurringEventForm, ScheduledFilterForm

PAGE_SIZE = 100


def _back(request, default: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _page(request, template: str, context: dict):
    # A form with errors is shown again with 200, as Django's own views do.
    return render(request, template, {"section": "scheduler", "can_edit": user_is_editor(request.user), **context})


@require_GET
def scheduled_list(request):
    """Scheduled runs (pending by default), filtered by workflow and status, soonest first."""
    form = ScheduledFilterForm(request.GET or None, workflow_names=selectors.scheduled_workflow_names())
    workflow = status = None
    if form.is_bound and form.is_valid():
        workflow, status = form.cleaned_data["workflow"] or None, form.cleaned_data["status"] or None
    page = Paginator(selectors.scheduled_run_list(workflow=workflow, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return _page(request, "scheduler/scheduled_list.html", {"form": form, "page": page, "tab": "scheduled",
                                                           "query": request.GET.urlencode()})


_SCHEDULED_CHANGES = {
    "pause": (services.scheduled_runs_pause, "Paused {n} scheduled run(s)."),
    "resume": (services.scheduled_runs_resume, "Resumed {n} scheduled run(s)."),
    "cancel": (services.scheduled_runs_cancel, "Cancelled {n} scheduled run(s)."),
}


@require_POST
@editor_required_for_changes
def scheduled_change(request):
    """Pause, resume or cancel the selected scheduled runs (or the one whose button was pressed)."""
    change = _SCHEDULED_CHANGES.get(request.POST.get("action", ""))
    ids = request.POST.getlist("ids") if not request.POST.get("id") else [request.POST["id"]]
    if change is None:
        messages.error(request, "Unknown action.")
    elif not ids:
        messages.warning(request, "Select at least one scheduled run.")
    else:
        service, text = change
        try:
            messages.success(request, text.format(n=service(ids=ids)))
        except ValidationError as exc:
            messages.error(request, exc.message)
    return _back(request, reverse("scheduler-page"))


@require_GET
def recurring_list(request):
    """Recurring events with their frequency, timezone, next fire and last run."""
    events = [
        (event, selectors.recurring_event_next_fires(event=event, count=5))
        for event in selectors.recurring_event_list()
    ]
    return _page(request, "scheduler/recurring_list.html", {"events": events, "tab": "recurring"})


def _fires_message(event) -> str:
    fires = selectors.recurring_event_next_fires(event=event, count=1)
    if not event.enabled:
        return "It is paused."
    return f"Next fire: {fires[0]:%Y-%m-%d %H:%M:%S %Z}." if fires else "It has no more fires."


@require_http_methods(["GET", "POST"])
@editor_required_for_changes
def recurring_create(request):
    """A new recurring event."""
    form = RecurringEventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            event = services.recurring_event_create(**form.service_arguments())
        except ValidationError as exc:
            form.add_service_errors(exc.fields, exc.message)
        else:
            messages.success(request, f"Recurring event created. {_fires_message(event)}")
            return redirect("scheduler-recurring-edit", id=event.id)
    return _page(request, "scheduler/recurring_form.html", {"form": form, "event": None, "tab": "recurring"})


def _event_or_404(id):
    try:
        return selectors.recurring_event_get(id=id)
    except NotFoundError as exc:
        raise Http404(exc.message) from None


@require_http_methods(["GET", "POST"])
@editor_required_for_changes
def recurring_edit(request, id):
    """An event's form, its ledger and its next five fire times in its timezone."""
    event = _event_or_404(id)
    form = RecurringEventForm(request.POST or None, event=event)
    if request.method == "POST" and form.is_valid():
        try:
            event = services.recurring_event_update(event=event, **form.service_arguments())
        except ValidationError as exc:
            form.add_service_errors(exc.fields, exc.message)
        else:
            messages.success(request, f"Recurring event saved. {_fires_message(event)}")
            return redirect("scheduler-recurring-edit", id=event.id)
    return _page(request, "scheduler/recurring_form.html", {
        "form": form, "event": event, "tab": "recurring",
        "next_fires": selectors.recurring_event_next_fires(event=event, count=5),
    })


@require_POST
@editor_required_for_changes
def recurring_change(request, id):
    """Pause, resume or delete one recurring event."""
    event = _event_or_404(id)
    action = request.POST.get("action")
    try:
        if action == "delete":
            services.recurring_event_delete(event=event)
            messages.success(request, "Recurring event deleted.")
            return redirect("scheduler-recurring")
        if action in ("pause", "resume"):
            event = services.recurring_event_set_enabled(event=event, enabled=action == "resume")
            messages.success(request, f"Recurring event {action}d. {_fires_message(event)}")
        else:
            messages.error(request, "Unknown action.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(request, reverse("scheduler-recurring"))


def _batches_context():
    batches = list(selectors.batch_list()[:PAGE_SIZE])
    return {"batches": batches, "running": any(batch.finished_at is None for batch in batches)}


@require_GET
def batch_list(request):
    """Batches from schedule-on-a-list, with progress bars that refresh while any is running."""
    return _page(request, "scheduler/batch_list.html", {**_batches_context(), "tab": "batches"})


@require_GET
def batch_progress(request):
    """The batches table alone, for htmx to swap in every few seconds."""
    return render(request, "scheduler/_batch_table.html", _batches_context())


@require_POST
@editor_required_for_changes
def batch_cancel(request, id):
    """Cancel every item of a batch that has not started."""
    try:
        batch = selectors.batch_get(id=id)
    except NotFoundError as exc:
        raise Http404(exc.message) from None
    count = services.batch_cancel(batch=batch)
    messages.success(request, f"Cancelled {count} waiting item(s) of the batch.")
    return _back(request, reverse("scheduler-batches"))
