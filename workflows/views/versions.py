"""Version history: who published what, a diff between any two versions (or the draft), restore as draft."""
import difflib
import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from config.errors import ValidationError
from workflows import definition as definitions
from workflows.services import workflow_restore

from .access import EDITOR, page, role_required
from .listing import workflow_or_404

DRAFT = "draft"


def _pretty(document: dict) -> list[str]:
    return json.dumps(definitions.normalize(document), indent=2, ensure_ascii=False).splitlines()


def diff_lines(old: dict, new: dict, *, old_label: str, new_label: str) -> list[tuple[str, str]]:
    """(kind, line) of a unified diff of two definitions as pretty JSON; kind is add, del, hunk, head or same."""
    lines = []
    for line in difflib.unified_diff(_pretty(old), _pretty(new), old_label, new_label, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append((kind, line))
    return lines


@require_GET
def workflow_versions(request, name):
    """Every version, newest first, and the diff between the two chosen (default: live → draft)."""
    workflow = workflow_or_404(name)
    versions = list(workflow.versions.select_related("published_by").order_by("-number"))
    by_number = {str(version.number): version for version in versions}
    documents = {DRAFT: workflow.definition, **{key: version.definition for key, version in by_number.items()}}
    default_old = str(workflow.live_version.number) if workflow.live_version else (
        str(versions[0].number) if versions else DRAFT
    )
    old = request.GET.get("from") or default_old
    new = request.GET.get("to") or DRAFT
    problem = ""
    if old not in documents or new not in documents:
        problem = "Choose two versions that exist."
        old, new = default_old, DRAFT
    label = {DRAFT: "draft"} | {key: f"version {key}" for key in by_number}
    lines = diff_lines(documents[old], documents[new], old_label=label[old], new_label=label[new])
    return page(request, "workflows/versions.html", {
        "workflow": workflow, "versions": versions, "old": old, "new": new, "lines": lines,
        "choices": [DRAFT, *by_number], "labels": label, "problem": problem,
    }, section="workflows")


@require_POST
@role_required(EDITOR, section="workflows")
def workflow_version_restore(request, name, number: int):
    """Make an old version's definition the draft again; publishing makes it live."""
    workflow = workflow_or_404(name)
    version = workflow.versions.filter(number=number).first()
    if version is None:
        raise Http404(f"{name} has no version {number}.")
    try:
        workflow_restore(workflow=workflow, version=version, user=request.user)
    except ValidationError as exc:
        problems = "; ".join(f"{path}: {message}" for path, message in list(exc.fields.items())[:5])
        messages.error(request, f"Version {number} cannot be restored as it is: {problems or exc.message}")
        return redirect("workflow-versions", name=workflow.name)
    messages.success(request, f"Version {number} is the draft again. Publish it to make it live.")
    return redirect("workflow-edit", name=workflow.name)
