"""Workflow writes: save the validated draft, publish it as a version, import and restore."""
from django.db import transaction
from django.db.models import Max

from config.errors import ConflictError, DefinitionError, ValidationError
from datastore.models import DataType
from workflows import definition as definitions
from workflows.models import Workflow, WorkflowVersion


def _check_references(parsed: definitions.Definition) -> None:
    """Data types named by the trigger and by record parameters must exist."""
    errors = {}
    trigger = parsed.document["trigger"]
    wanted = {"trigger.type": trigger["type"]} if trigger else {}
    for index, parameter in enumerate(parsed.parameters):
        if parameter.record_type:
            wanted[f"parameters[{index}].type"] = parameter.record_type
    known = set(DataType.objects.filter(name__in=wanted.values()).values_list("name", flat=True))
    for path, name in wanted.items():
        if name not in known:
            errors[path] = f"no data type named {name!r}"
    if errors:
        raise DefinitionError("Invalid workflow definition: unknown data type.", fields=errors)


def _apply(workflow: Workflow, parsed: definitions.Definition) -> None:
    document = parsed.document
    workflow.name = parsed.name
    workflow.definition = document
    workflow.enabled = document["enabled"]
    workflow.auth = document["auth"]
    trigger = document["trigger"] or {}
    workflow.trigger_on = trigger.get("on", "")
    workflow.trigger_type = trigger.get("type", "")


def _parse(definition: dict) -> definitions.Definition:
    parsed = definitions.parse(definition)
    _check_references(parsed)
    return parsed


@transaction.atomic
def workflow_create(*, definition: dict, user=None) -> Workflow:
    """Save a new workflow's draft (not live until published)."""
    parsed = _parse(definition)
    if Workflow.objects.filter(name=parsed.name).exists():
        raise DefinitionError("A workflow with this name exists.", fields={"name": f"{parsed.name!r} is taken"})
    workflow = Workflow(modified_by=user)
    _apply(workflow, parsed)
    workflow.save()
    return workflow


@transaction.atomic
def workflow_update(*, workflow: Workflow, definition: dict, revision: int | None = None, user=None) -> Workflow:
    """Replace the draft; with `revision`, refuse to overwrite someone else's newer save."""
    parsed = _parse(definition)
    locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if revision is not None and revision != locked.revision:
        raise ConflictError(
            "This workflow was saved by someone else since you opened it; reload to see their changes.",
            extra={"revision": locked.revision},
        )
    if parsed.name != locked.name and Workflow.objects.filter(name=parsed.name).exists():
        raise DefinitionError("A workflow with this name exists.", fields={"name": f"{parsed.name!r} is taken"})
    _apply(locked, parsed)
    locked.revision += 1
    locked.modified_by = user
    locked.save()
    return locked


@transaction.atomic
def workflow_publish(*, workflow: Workflow, user=None) -> WorkflowVersion:
    """Freeze the draft as a new version and make it live."""
    locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
    _parse(locked.definition)
    number = (locked.versions.aggregate(last=Max("number"))["last"] or 0) + 1
    version = WorkflowVersion.objects.create(
        workflow=locked, number=number, definition=locked.definition, published_by=user
    )
    locked.live_version = version
    locked.save(update_fields=["live_version", "modified"])
    workflow.live_version = version
    return version


def workflow_restore(*, workflow: Workflow, version: WorkflowVersion, user=None) -> Workflow:
    """Make an old version's definition the draft again (publish to make it live)."""
    definition = dict(version.definition, name=workflow.name)
    return workflow_update(workflow=workflow, definition=definition, user=user)


def workflow_delete(*, workflow: Workflow) -> None:
    workflow.delete()


@transaction.atomic
def bundle_import(*, document: dict, publish: bool = True, user=None) -> list[Workflow]:
    """Import one workflow or a bundle ({"data_types": [...], "workflows": [...]}), all or nothing."""
    from datastore.services import data_type_create, data_type_update

    if not isinstance(document, dict):
        raise ValidationError("An import file must hold a JSON object.", fields={"": "must be an object"})
    is_bundle = "workflows" in document or "data_types" in document
    if is_bundle:
        unknown = set(document) - {"format", "data_types", "workflows"}
        if unknown:
            raise ValidationError(
                f"Unknown key(s) in bundle: {', '.join(sorted(unknown))}.", fields={k: "unknown key" for k in unknown}
            )
    data_types = document.get("data_types", []) if is_bundle else []
    workflows = document.get("workflows", []) if is_bundle else [document]
    errors: dict[str, str] = {}
    for key, items in (("data_types", data_types), ("workflows", workflows)):
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            errors[key] = "must be a list of objects"
    if errors:
        raise ValidationError("Invalid bundle.", fields=errors)
    for index, spec in enumerate(data_types):
        try:
            existing = DataType.objects.filter(name=spec.get("name")).first()
            if existing:
                data_type_update(data_type=existing, fields=spec.get("fields", []))
            else:
                data_type_create(name=spec.get("name"), fields=spec.get("fields", []))
        except ValidationError as exc:
            errors.update({f"data_types[{index}].{k}": v for k, v in exc.fields.items()} or {f"data_types[{index}]": exc.message})
    if errors:
        raise ValidationError("Invalid data types in import.", fields=errors)
    imported = []
    for index, spec in enumerate(workflows):
        prefix = f"workflows[{index}]." if is_bundle else ""
        try:
            existing = Workflow.objects.filter(name=spec.get("name") if isinstance(spec, dict) else None).first()
            if existing:
                workflow = workflow_update(workflow=existing, definition=spec, user=user)
            else:
                workflow = workflow_create(definition=spec, user=user)
        except ValidationError as exc:
            errors.update({f"{prefix}{k}": v for k, v in exc.fields.items()})
            continue
        if publish:
            workflow_publish(workflow=workflow, user=user)
        imported.append(workflow)
    if errors:
        raise DefinitionError("Invalid workflows in import; nothing was imported.", fields=errors)
    return imported

