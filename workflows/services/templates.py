"""Installing a ready-made template: its data types merged into yours, its workflows added."""
from django.db import transaction

from config.errors import ConflictError, ValidationError
from datastore.models import DataType
from workflows.models import Workflow
from workflows.templates_library import template_load

from .definitions import bundle_import


@transaction.atomic
def template_install(*, slug: str, publish: bool = False, user=None) -> list:
    """Import a template without touching what exists: data types gain the fields they lack, existing
    fields and workflows are never changed. ConflictError names a workflow that exists or a field whose
    type differs; nothing is imported then."""
    bundle = template_load(slug)
    names = [spec["name"] for spec in bundle["workflows"]]
    taken = sorted(Workflow.objects.filter(name__in=names).values_list("name", flat=True))
    if taken:
        raise ConflictError(
            f"The template's workflow(s) {', '.join(taken)} exist already; rename or delete them first.",
            extra={"workflows": taken},
        )
    existing = {data_type.name: data_type for data_type in DataType.objects.filter(
        name__in=[spec["name"] for spec in bundle["data_types"]])}
    clashes = {}
    for spec in bundle["data_types"]:
        current = existing.get(spec["name"])
        if current is None:
            continue
        fields = current.field_map()
        for field in spec["fields"]:
            have = fields.get(field["name"])
            if have and (have["type"], have.get("list", False)) != (field["type"], field.get("list", False)):
                clashes[f"{spec['name']}.{field['name']}"] = (
                    f"is {_kind(have)} here; the template needs {_kind(field)}"
                )
        # Keep every field as it is (and in its place); add the template's missing ones at the end.
        spec["fields"] = list(current.fields) + [f for f in spec["fields"] if f["name"] not in fields]
    if clashes:
        raise ValidationError("The template's data types clash with yours.", fields=clashes)
    return bundle_import(document=bundle, publish=publish, user=user)


def _kind(field: dict) -> str:
    return f"a list of {field['type']}" if field.get("list") else field["type"]
