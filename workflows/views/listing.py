"""The workflow list: search, enabled switches, run counts and WU; create, import, export, duplicate, delete."""
import json
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ConflictError, NotFoundError, ValidationError
from logs.models import RunDailyStat, RunStatus, WorkflowRun
from workflows import definition as definitions
from workflows.models import Workflow
from workflows.selectors import bundle_export, workflow_get
from workflows.services import (
    bundle_import,
    template_install,
    workflow_create,
    workflow_delete,
    workflow_update,
)
from workflows.templates_library import template_list

from .access import EDITOR, can_edit, forbidden, page, role_required

PAGE_SIZE = 50
# An import file is a definition or a bundle; a few megabytes is already thousands of steps.
MAX_IMPORT_BYTES = 5 * 1024 * 1024


class WorkflowCreateForm(forms.Form):
    """A new workflow: its name (the endpoint's last path segment) and what it is for."""

    name = forms.RegexField(
        regex=definitions.NAME_RE,
        max_length=63,
        help_text="Lowercase letters, digits and underscores, starting with a letter. It becomes the URL /api/wf/<name>.",
        error_messages={"invalid": "Use lowercase letters, digits and underscores, starting with a letter."},
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class WorkflowImportForm(forms.Form):
    """A JSON file: one workflow, or a bundle of data types and workflows."""

    file = forms.FileField(help_text="A workflow or bundle exported from Engine Room (JSON).")
    publish = forms.BooleanField(
        required=False, help_text="Make the imported workflows live at once (otherwise they stay drafts)."
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
        try:
            document = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise forms.ValidationError(f"This is not a JSON file: {exc}") from None
        if not isinstance(document, dict):
            raise forms.ValidationError("The file must hold one workflow or a bundle (a JSON object).")
        for key in ("data_types", "workflows"):
            items = document.get(key, [])
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise forms.ValidationError(f"“{key}” must be a list of objects.")
        return document


def workflow_or_404(name: str) -> Workflow:
    try:
        return workflow_get(name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from None


def workflow_rows(workflows) -> list[dict]:
    """Each workflow with its last run, runs and failures in the last 24 hours, and WU this month."""
    workflows = list(workflows)
    ids = [workflow.id for workflow in workflows]
    now = timezone.now()
    day_ago = now - timedelta(hours=24)
    counts = {
        row["workflow_id"]: row
        for row in WorkflowRun.objects.filter(workflow_id__in=ids, created__gte=day_ago)
        .values("workflow_id")
        .annotate(runs=Count("id"), failures=Count("id", filter=Q(status=RunStatus.FAILED)))
    }
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    wu = {
        row["workflow_id"]: row["wu"] or 0
        for row in WorkflowRun.objects.filter(workflow_id__in=ids, created__gte=month_start)
        .values("workflow_id")
        .annotate(wu=Sum("wu"))
    }
    # Runs deleted by retention live on in daily aggregates (by name), never counted twice.
    pruned = {
        row["workflow_name"]: row["wu"] or 0
        for row in RunDailyStat.objects.filter(
            workflow_name__in=[workflow.name for workflow in workflows], day__gte=month_start.date()
        )
        .values("workflow_name")
        .annotate(wu=Sum("wu"))
    }
    rows = []
    for workflow in workflows:
        count = counts.get(workflow.id, {})
        rows.append({
            "workflow": workflow,
            "description": (workflow.definition or {}).get("description", ""),
            "runs": count.get("runs", 0),
            "failures": count.get("failures", 0),
            "wu": wu.get(workflow.id, 0) + pruned.get(workflow.name, 0),
        })
    return rows


def _list_queryset(query: str):
    latest = WorkflowRun.objects.filter(workflow=OuterRef("pk")).order_by("-created")
    workflows = Workflow.objects.select_related("live_version").annotate(
        last_run_status=Subquery(latest.values("status")[:1]),
        last_run_at=Subquery(latest.values("created")[:1]),
        last_run_id=Subquery(latest.values("id")[:1]),
    )
    if query:
        workflows = workflows.filter(Q(name__icontains=query) | Q(definition__description__icontains=query))
    return workflows.order_by("name")


def _list_page(request, *, create_form=None, import_form=None, status=200):
    query = request.GET.get("q", "").strip()[:100]
    paginator = Paginator(_list_queryset(query), PAGE_SIZE)
    current = paginator.get_page(request.GET.get("page"))
    return page(
        request,
        "workflows/list.html",
        {
            "page": current,
            "rows": workflow_rows(current.object_list),
            "query": query,
            "create_form": create_form or WorkflowCreateForm(auto_id="new_%s"),
            "import_form": import_form or WorkflowImportForm(auto_id="import_%s"),
            "templates": template_list(),
            "total": Workflow.objects.count(),
        },
        section="workflows",
        status=status,
    )


@require_http_methods(["GET", "POST"])
def workflow_list(request):
    """GET: the list. POST: create a workflow or import a file (editors), then open it."""
    if request.method == "GET":
        return _list_page(request)
    if not can_edit(request.user):
        return forbidden(request, needed=EDITOR, section="workflows")
    if request.POST.get("intent") == "import":
        return _import(request)
    form = WorkflowCreateForm(request.POST, auto_id="new_%s")
    if form.is_valid():
        try:
            workflow = workflow_create(
                definition={"format": definitions.FORMAT, **form.cleaned_data}, user=request.user
            )
        except ValidationError as exc:
            for key, message in exc.fields.items():
                form.add_error(key if key in form.fields else None, message)
        else:
            messages.success(request, f"Workflow {workflow.name} created. Add parameters and steps, then save.")
            return redirect("workflow-edit", name=workflow.name)
    return _list_page(request, create_form=form, status=400)


@require_POST
def workflow_from_template(request):
    """Install a ready-made template (its data types merged into yours) and open its first workflow."""
    if not can_edit(request.user):
        return forbidden(request, needed=EDITOR, section="workflows")
    try:
        installed = template_install(slug=request.POST.get("template", ""), publish=False, user=request.user)
    except NotFoundError as exc:
        raise Http404(exc.message) from None
    except (ConflictError, ValidationError) as exc:
        messages.error(request, exc.message)
        for path, message in getattr(exc, "fields", {}).items():
            messages.error(request, f"{path}: {message}")
        return redirect("workflows-page")
    names = ", ".join(workflow.name for workflow in installed)
    messages.success(request, f"Template installed as drafts: {names}. Test-run it, then publish.")
    return redirect("workflow-edit", name=installed[0].name)


def _import(request):
    form = WorkflowImportForm(request.POST, request.FILES, auto_id="import_%s")
    if form.is_valid():
        try:
            imported = bundle_import(
                document=form.cleaned_data["file"], publish=form.cleaned_data["publish"], user=request.user
            )
        except ValidationError as exc:
            problems = [f"{path}: {message}" if path else message for path, message in exc.fields.items()]
            form.add_error("file", exc.message)
            for problem in problems[:20]:
                form.add_error("file", problem)
        else:
            names = ", ".join(workflow.name for workflow in imported) or "no workflows"
            state = "published" if form.cleaned_data["publish"] else "as drafts"
            messages.success(request, f"Imported {len(imported)} workflow(s) {state}: {names}.")
            if len(imported) == 1:
                return redirect("workflow-edit", name=imported[0].name)
            return redirect("workflows-page")
    return _list_page(request, import_form=form, status=400)


def _download(document: dict, filename: str) -> HttpResponse:
    response = JsonResponse(document, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def workflow_export(request, name):
    """The draft's definition as a JSON file, ready to import elsewhere."""
    workflow = workflow_or_404(name)
    return _download(definitions.normalize(workflow.definition), f"{workflow.name}.json")


@require_GET
def workflows_export(request):
    """Every data type and workflow draft as one bundle file."""
    return _download(bundle_export(), "engine-room-bundle.json")


def _copy_name(name: str) -> str:
    taken = set(Workflow.objects.filter(name__startswith=name[:50]).values_list("name", flat=True))
    base = f"{name[:55]}_copy"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}_{number}", number + 1
    return candidate


@require_POST
@role_required(EDITOR, section="workflows")
def workflow_duplicate(request, name):
    """A copy of the draft under a new name, not live until published."""
    original = workflow_or_404(name)
    copy = workflow_create(
        definition=dict(definitions.normalize(original.definition), name=_copy_name(original.name)), user=request.user
    )
    messages.success(request, f"{copy.name} is a copy of {original.name}'s draft; rename it in Settings and save.")
    return redirect("workflow-edit", name=copy.name)


@require_http_methods(["GET", "POST"])
@role_required(EDITOR, section="workflows")
def workflow_delete_view(request, name):
    """GET: what deleting takes with it. POST: delete the workflow, its versions and its endpoint."""
    workflow = workflow_or_404(name)
    if request.method == "POST":
        workflow_delete(workflow=workflow)
        messages.success(request, f"Workflow {name} deleted. Its run logs stay under Logs.")
        return redirect("workflows-page")
    return page(
        request,
        "workflows/delete.html",
        {"workflow": workflow, "versions": workflow.versions.count(), "runs": workflow.runs.count()},
        section="workflows",
    )


@require_POST
@role_required(EDITOR, section="workflows")
def workflow_enabled(request, name):
    """Switch a workflow on or off from the list (the draft's `enabled`, which the endpoint obeys at once)."""
    workflow = workflow_or_404(name)
    enabled = request.POST.get("enabled") == "on"
    problem = ""
    try:
        workflow = workflow_update(
            workflow=workflow,
            definition=dict(workflow.definition, enabled=enabled),
            revision=workflow.revision,
            user=request.user,
        )
    except ConflictError:
        problem = "Someone saved this workflow at the same moment; reload and try again."
    except ValidationError as exc:
        problem = exc.message
    if request.headers.get("HX-Request"):
        return page(
            request, "workflows/_enabled_switch.html", {"workflow": workflow, "problem": problem}, section="workflows"
        )
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, f"{workflow.name} is {'on' if workflow.enabled else 'off'}.")
    return redirect(reverse("workflows-page"))
