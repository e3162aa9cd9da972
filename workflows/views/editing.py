"""The one-page editor: settings, parameters and steps; saving (with conflicts), publishing, live checks."""
import json

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import ConflictError, DefinitionError
from datastore.models import DataType
from workflows import definition as definitions
from workflows import editor
from workflows.actions import registry
from workflows.models import Secret, Workflow
from workflows.services import workflow_publish, workflow_update

from .access import EDITOR, can_edit, forbidden, page, role_required
from .listing import workflow_or_404

# Example values for the curl command, by parameter type.
EXAMPLES = {
    "text": "example", "number": 9.99, "integer": 1, "boolean": True, "date": "2025-01-31",
    "datetime": "2025-01-31T09:00:00Z", "email": "someone@example.com", "url": "https://example.com",
    "object": {}, "file": "https://example.com/file.pdf",
}
AUTH_HEADERS = {
    "token": 'Authorization: Bearer $ENGINE_ROOM_TOKEN',
    "hmac": "{header}: sha256=<HMAC-SHA256 of the body, keyed with secret {secret}>",
    "stripe": "Stripe-Signature: t=<timestamp>,v1=<signature made with secret {secret}>",
}


def known_names() -> dict:
    """Names the editor suggests and checks against: data types, workflows, secrets (never their values)."""
    return {
        "data_types": list(DataType.objects.order_by("name").values_list("name", flat=True)),
        "workflow_names": list(Workflow.objects.order_by("name").values_list("name", flat=True)),
        "secret_names": list(Secret.objects.order_by("name").values_list("name", flat=True)),
    }


def check_form(data, names: dict) -> editor.Check:
    return editor.validate(
        data, data_types=names["data_types"], workflows=names["workflow_names"], secret_names=names["secret_names"]
    )


def check_payload(check: editor.Check) -> dict:
    """What editor.js needs after every check: errors and warnings by input, and each step's names in scope."""
    return {
        "errors": check.errors, "warnings": check.warnings, "general": check.general, "scope": check.scope(),
        "count": len(check.errors) + len(check.general),
    }


def _url(name: str, workflow: str) -> str:
    try:
        return reverse(name, kwargs={"name": workflow})
    except NoReverseMatch:
        return ""


def _example(parameter: dict):
    if parameter.get("default") is not None:
        return parameter["default"]
    type_name = parameter.get("type", "text")
    value = f"<{type_name[7:]} id>" if type_name.startswith("record:") else EXAMPLES.get(type_name, "example")
    return [value] if parameter.get("list") else value


def endpoint_info(request, document: dict) -> dict:
    """The live, test and "Detect data" URLs of a workflow, and a curl command that calls it."""
    name = document.get("name") or ""
    base = request.build_absolute_uri("/").rstrip("/")
    live = base + (_url("workflow-endpoint", name) or f"/api/wf/{name}")
    auth = document.get("auth") or "token"
    header = AUTH_HEADERS.get(auth, "").format(
        header=document.get("signature_header") or "X-Hub-Signature-256", secret=document.get("signing_secret") or "?"
    )
    body = {
        parameter["name"]: _example(parameter)
        for parameter in document.get("parameters") or []
        if isinstance(parameter, dict) and parameter.get("name")
    }
    methods = document.get("methods") or ["POST"]
    method = "POST" if "POST" in methods else methods[0]
    lines = [f"curl -X {method} '{live}'"]
    if header:
        lines.append(f"  -H '{header}'")
    if method != "GET":
        lines.append("  -H 'Content-Type: application/json'")
        lines.append(f"  -d '{json.dumps(body, ensure_ascii=False)}'")
    return {
        "live": live,
        "bubble": base + (_url("workflow-endpoint-bubble", name) or f"/api/1.1/wf/{name}"),
        "test": base + (_url("workflow-endpoint-test", name) or f"/version-test/api/wf/{name}"),
        "initialize": base + (_url("workflow-endpoint-initialize", name) or f"/api/wf/{name}/initialize"),
        "curl": " \\\n".join(lines),
        "auth": auth,
        "signing_secret": document.get("signing_secret") or "",
    }


def test_inputs(document: dict, data) -> list[dict]:
    """One input per parameter of the form as it stands, keeping what was typed into the test panel."""
    inputs = []
    for parameter in document.get("parameters") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not definitions.NAME_RE.match(name):
            continue
        type_name = parameter.get("type") or "text"
        widget = "select" if type_name == "boolean" and not parameter.get("list") else (
            "textarea" if type_name == "object" or parameter.get("list") else "input"
        )
        default = parameter.get("default")
        inputs.append({
            "name": name,
            "input": f"t-{name}",
            "type": type_name + (" list" if parameter.get("list") else ""),
            "required": bool(parameter.get("required")),
            "description": parameter.get("description") or "",
            "widget": widget,
            "value": (data.getlist(f"t-{name}") or [""])[-1],
            "placeholder": "" if default is None else f"Default: {editor.display(editor.JSON, default)}",
            "hint": "JSON, e.g. {\"key\": 1}" if type_name == "object" else (
                "Comma-separated, or a JSON list" if parameter.get("list") else ""
            ),
        })
    return inputs


def editor_context(request, workflow: Workflow, data, check: editor.Check, names: dict) -> dict:
    errors = check.errors
    document = check.document
    settings_names = set(editor.settings_values(data)) | {"methods"}
    return {
        # Settings start folded once there are steps to look at, unless something in them needs attention.
        "settings_open": not document["steps"] or any(
            errors.get(name) or check.warnings.get(name) for name in settings_names
        ),
        "workflow": workflow,
        "values": editor.settings_values(data),
        "errors": errors,
        "warnings": check.warnings,
        "general": check.general,
        "parameters": editor.parameter_views(data, errors=errors, data_types=names["data_types"]),
        "steps": editor.step_views(data, errors=errors, warnings=check.warnings, scope=check.scope()),
        "catalogue": editor.catalogue(),
        "auth_modes": definitions.AUTH_MODES,
        "response_modes": definitions.RESPONSE_MODES,
        "all_methods": definitions.METHODS,
        "trigger_events": definitions.TRIGGER_EVENTS,
        "on_error_modes": definitions.ON_ERROR,
        "endpoint": endpoint_info(request, document),
        "versions": workflow.versions.select_related("published_by").order_by("-number")[:5],
        "recent_runs": workflow.runs.order_by("-created")[:8],
        # Test values typed before a save that failed stay in their inputs.
        "test_inputs": test_inputs(document, data),
        "check": check_payload(check),
        "revision": workflow.revision,
        "parameter_types": editor.parameter_types(names["data_types"]),
        **names,
    }


def _render(request, workflow, data, check, names, *, status=200, **extra):
    context = editor_context(request, workflow, data, check, names)
    context.update(extra)
    return page(request, "workflows/editor.html", context, section="workflows", status=status)


@require_http_methods(["GET", "POST"])
def workflow_edit(request, name):
    """GET: the editor for the draft. POST (editors): validate and save the whole form, and publish if asked."""
    workflow = workflow_or_404(name)
    names = known_names()
    if request.method == "GET":
        data = editor.form_data(workflow.definition)
        return _render(request, workflow, data, check_form(data, names), names)
    if not can_edit(request.user):
        return forbidden(request, needed=EDITOR, section="workflows")
    data = request.POST
    check = check_form(data, names)
    try:
        revision = int(data.get("overwrite") or data.get("revision") or 0)
    except ValueError:
        revision = 0
    opened = data.get("revision", "")
    if not check.ok:
        return _render(request, workflow, data, check, names, status=400, revision=opened, show_errors=True)
    try:
        saved = workflow_update(workflow=workflow, definition=check.document, revision=revision, user=request.user)
    except ConflictError:
        latest = Workflow.objects.select_related("modified_by").get(pk=workflow.pk)
        return _render(request, workflow, data, check, names, status=409, revision=opened, conflict=latest)
    except DefinitionError as exc:
        by_input, general = editor.errors_by_input(exc.fields, check.assembled)
        check.errors.update(by_input)
        check.general.extend(general or ([] if by_input else [exc.message]))
        return _render(request, workflow, data, check, names, status=400, revision=opened, show_errors=True)
    if data.get("intent") == "publish":
        version = workflow_publish(workflow=saved, user=request.user)
        messages.success(request, f"Saved and published: version {version.number} is live.")
    else:
        messages.success(request, "Saved. The draft is not live until you publish it.")
    return redirect("workflow-edit", name=saved.name)


@require_POST
def workflow_check(request, name):
    """As-you-type validation: the whole form checked as saving would, answered as a small fragment."""
    workflow_or_404(name)
    check = check_form(request.POST, known_names())
    return page(
        request, "workflows/_check.html", {"check": check_payload(check), "ok": check.ok}, section="workflows"
    )


def _taken_keys(data) -> set[str]:
    return {data.get(f"s-{uid}-key", "") for uid in data.getlist("steps")}


@require_POST
@role_required(EDITOR, section="workflows")
def workflow_step_new(request, name):
    """A new step card for an action from the catalogue, or a copy of a step as it stands in the form."""
    workflow = workflow_or_404(name)
    data, step_data = request.POST, editor.FormData()
    uid = editor.new_uid()
    source = request.POST.get("duplicate", "")
    if source:
        prefix = f"s-{source}-"
        step = editor.assemble(_only_step(data, source)).document["steps"]
        original = step[0] if step else {"action": data.get(prefix + "action", "")}
        copy = dict(original, key=editor.unique_key(f"{original.get('key') or 'step'}_copy", _taken_keys(data)))
        editor.add_step(step_data, uid, copy)
    else:
        action = request.POST.get("action", "")
        if registry.get(action) is None:
            return page(request, "workflows/_message.html", {"message": f"Unknown action {action!r}."},
                        section="workflows", status=400)
        editor.add_step(step_data, uid, {"key": editor.unique_key(action, _taken_keys(data)), "action": action})
    names = known_names()
    view = editor.step_view(step_data, uid, len(data.getlist("steps")))
    return page(request, "workflows/_step.html", {"step": view, "new": True, "workflow": workflow, **names},
                section="workflows")


def _only_step(data, uid: str) -> editor.FormData:
    """The form data of one step alone, as a form of one step (to copy it)."""
    only = editor.FormData()
    only["steps"] = [uid]
    prefix = f"s-{uid}-"
    for key in data:
        if key.startswith(prefix):
            only[key] = data.getlist(key)
    return only


@require_POST
@role_required(EDITOR, section="workflows")
def workflow_parameter_new(request, name):
    """A new, empty row for the parameters table."""
    workflow_or_404(name)
    uid = editor.new_uid()
    data = editor.FormData()
    editor.add_parameter(data, uid, {"name": "", "type": "text"})
    names = known_names()
    return page(
        request,
        "workflows/_parameter.html",
        {"parameter": editor.parameter_view(data, uid, data_types=names["data_types"]), "new": True},
        section="workflows",
    )


@require_POST
def workflow_test_inputs(request, name):
    """The test panel's inputs for the parameters as they stand in the form (typed test values kept)."""
    workflow_or_404(name)
    document = editor.assemble(request.POST).document
    return page(request, "workflows/_test_inputs.html", {"test_inputs": test_inputs(document, request.POST)},
                section="workflows")
