"""Data pages: data types and their fields, a records browser with filters, record forms, CSV in and out."""
import csv
import io
import json
import secrets
import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ApplicationError, DefinitionError, NotFoundError, RecordError
from workflows.views.access import EDITOR, can_edit, forbidden, page, role_required

from . import selectors, services
from .forms import DataTypeCreateForm, RecordFilter, RecordForm, field_types, parse_value
from .models import DataType, Record
from .selectors import record_to_dict

PAGE_SIZE = 50
MAX_CSV_BYTES = 10 * 1024 * 1024
FIELD_UID = "f-{uid}-{key}"


def _page(request, template, context, status=200):
    return page(request, template, context, section="data", status=status)


def _type_or_404(name: str) -> DataType:
    try:
        return selectors.data_type_get(name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from None


def _record_or_404(data_type: DataType, id) -> Record:
    try:
        return selectors.record_get(data_type=data_type, id=id)
    except NotFoundError as exc:
        raise Http404(exc.message) from None


# --- Data types ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def data_type_list(request):
    """Every data type with its fields and record count; POST (editors) creates one and opens its fields."""
    form = DataTypeCreateForm(request.POST or None, auto_id="type_%s")
    if request.method == "POST":
        if not can_edit(request.user):
            return forbidden(request, needed=EDITOR, section="data")
        if form.is_valid():
            try:
                data_type = services.data_type_create(name=form.cleaned_data["name"], fields=[])
            except DefinitionError as exc:
                for key, message in exc.fields.items():
                    form.add_error(key if key in form.fields else None, message)
            else:
                messages.success(request, f"Data type {data_type.name} created: now give it fields.")
                return redirect("data-type-fields", name=data_type.name)
    types = DataType.objects.annotate(record_count=Count("records")).order_by("name")
    return _page(request, "datastore/type_list.html", {"types": types, "form": form},
                 status=400 if form.errors else 200)


def _field_rows(fields: list[dict], errors: dict | None = None) -> list[dict]:
    errors = errors or {}
    rows = []
    for spec in fields:
        uid = spec.get("uid") or secrets.token_hex(4)
        rows.append({"uid": uid, **spec, "errors": {
            key: errors.get(FIELD_UID.format(uid=uid, key=key), "")
            for key in ("name", "type", "list", "required", "description", "row")
        }})
    return rows


def _posted_fields(post) -> list[dict]:
    fields = []
    for uid in post.getlist("fields"):
        if not uid.isalnum():
            continue
        fields.append({
            "uid": uid,
            "name": post.get(FIELD_UID.format(uid=uid, key="name"), "").strip(),
            "type": post.get(FIELD_UID.format(uid=uid, key="type"), "text"),
            "list": post.get(FIELD_UID.format(uid=uid, key="list")) == "on",
            "required": post.get(FIELD_UID.format(uid=uid, key="required")) == "on",
            "description": post.get(FIELD_UID.format(uid=uid, key="description"), "").strip(),
        })
    return fields


def _field_errors(exc: DefinitionError, fields: list[dict]) -> tuple[dict, list[str]]:
    """Service errors such as `fields[2].type` as {input name: message}, plus the rest."""
    by_input, general = {}, []
    for path, message in exc.fields.items():
        if path.startswith("fields[") and "]" in path:
            index = int(path[7:path.index("]")])
            key = path[path.index("]") + 2:] or "row"
            if index < len(fields):
                by_input[FIELD_UID.format(uid=fields[index]["uid"], key=key)] = message
                continue
        general.append(f"{path}: {message}" if path else message)
    return by_input, general or ([] if by_input else [exc.message])


@require_http_methods(["GET", "POST"])
def data_type_fields(request, name):
    """A data type's fields (name, type, list, required, description); saving converts stored values."""
    data_type = _type_or_404(name)
    others = list(DataType.objects.exclude(pk=data_type.pk).order_by("name").values_list("name", flat=True))
    context = {"data_type": data_type, "types": field_types([data_type.name, *others])}
    if request.method == "GET":
        return _page(request, "datastore/type_fields.html", {**context, "rows": _field_rows(data_type.fields)})
    if not can_edit(request.user):
        return forbidden(request, needed=EDITOR, section="data")
    fields = _posted_fields(request.POST)
    try:
        services.data_type_update(
            data_type=data_type, fields=[{k: v for k, v in spec.items() if k != "uid"} for spec in fields]
        )
    except DefinitionError as exc:
        data_type.refresh_from_db()
        by_input, general = _field_errors(exc, fields)
        return _page(request, "datastore/type_fields.html", {
            **context, "rows": _field_rows(fields, by_input), "general": general,
        }, status=400)
    messages.success(request, f"Fields of {data_type.name} saved.")
    return redirect("data-records", name=data_type.name)


@require_http_methods(["GET", "POST"])
@role_required(EDITOR, section="data")
def data_type_delete(request, name):
    """GET: what goes with it. POST: delete the type and its records (refused while other types refer to it)."""
    data_type = _type_or_404(name)
    problem = ""
    if request.method == "POST":
        try:
            services.data_type_delete(data_type=data_type)
        except DefinitionError as exc:
            problem = exc.message
        else:
            messages.success(request, f"Data type {name} and its records deleted.")
            return redirect("data-page")
    return _page(request, "datastore/type_delete.html", {
        "data_type": data_type, "records": data_type.records.count(), "problem": problem,
    }, status=400 if problem else 200)


# --- Records ------------------------------------------------------------------------------------------


def _filtered(data_type, record_filter: RecordFilter):
    try:
        return selectors.record_find(
            data_type=data_type, filter=record_filter.as_filter(), order_by=record_filter.order_by or None,
            source="query",
        )
    except RecordError as exc:
        record_filter.errors = dict(exc.fields)
        return None


@require_GET
def record_list(request, name):
    """The records of a type, filtered with the DESIGN lookups, ordered and paged."""
    return _record_list_page(request, _type_or_404(name))


def _record_list_page(request, data_type, *, import_problems=()):
    record_filter = RecordFilter(request.GET, data_type)
    records = _filtered(data_type, record_filter)
    current = Paginator(records if records is not None else Record.objects.none(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    rows = [(record, [record.data.get(spec["name"]) for spec in data_type.fields]) for record in current.object_list]
    return _page(request, "datastore/record_list.html", {
        "data_type": data_type, "filter": record_filter, "page": current, "rows": rows,
        "query": query.urlencode(), "lookups": ("exact", "contains", "icontains", "lt", "lte", "gt", "gte", "in", "isnull"),
        "orderings": [item for name in record_filter.field_names if name != "id" for item in (name, f"-{name}")],
        "import_problems": import_problems,
    }, status=400 if record_filter.errors or import_problems else 200)


def _save_record(request, data_type, record=None):
    form = RecordForm(request.POST or None, request.FILES or None, data_type=data_type, record=record,
                      auto_id="record_%s")
    if request.method == "POST":
        if not can_edit(request.user):
            return forbidden(request, needed=EDITOR, section="data")
        if form.is_valid():
            values, errors = form.values(creating=record is None)
            for key, message in errors.items():
                form.add_error(key, message)
            if not errors:
                try:
                    if record is None:
                        record = services.record_create(data_type=data_type, fields=values)
                    else:
                        record = services.record_update(record=record, fields=values)
                except RecordError as exc:
                    for path, message in exc.fields.items():
                        key = path.removeprefix("fields.")
                        form.add_error(key if key in form.fields else None, message)
                else:
                    messages.success(request, f"{data_type.name} record saved.")
                    return redirect("data-records", name=data_type.name)
    return _page(request, "datastore/record_form.html", {"data_type": data_type, "record": record, "form": form},
                 status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def record_new(request, name):
    """A new record of the type."""
    return _save_record(request, _type_or_404(name))


@require_http_methods(["GET", "POST"])
def record_edit(request, name, id):
    """One record's fields; emptying a field clears it."""
    data_type = _type_or_404(name)
    return _save_record(request, data_type, _record_or_404(data_type, id))


@require_http_methods(["GET", "POST"])
@role_required(EDITOR, section="data")
def record_delete(request, name, id):
    """GET: confirm. POST: delete the record (record triggers see it go)."""
    data_type = _type_or_404(name)
    record = _record_or_404(data_type, id)
    if request.method == "POST":
        services.record_delete(record=record)
        messages.success(request, f"{data_type.name} record {record.pk} deleted.")
        return redirect("data-records", name=data_type.name)
    return _page(request, "datastore/record_delete.html", {
        "data_type": data_type, "record": record, "values": record_to_dict(record),
    })


# --- CSV --------------------------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@require_GET
def record_export(request, name):
    """The records matching the browser's filters as CSV (lists and objects as JSON), streamed."""
    data_type = _type_or_404(name)
    record_filter = RecordFilter(request.GET, data_type)
    records = _filtered(data_type, record_filter)
    if records is None:
        messages.error(request, "The filters are not valid; nothing was exported.")
        return redirect("data-records", name=name)
    names = [spec["name"] for spec in data_type.fields]
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(["id", "created", "modified", *names])
        for record in records.iterator(chunk_size=500):
            as_dict = record_to_dict(record)
            yield writer.writerow([as_dict["id"], as_dict["created"], as_dict["modified"],
                                   *(_csv_cell(record.data.get(field)) for field in names)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


class _ImportFailed(Exception):
    """Raised inside the import transaction to undo every row once any row failed."""


def _csv_value(spec: dict, text: str):
    if spec.get("list"):
        stripped = text.strip()
        if stripped.startswith("["):
            return parse_value(spec, stripped)
        return [item.strip() for item in text.split(",") if item.strip()]
    return parse_value(spec, text)


@require_POST
@role_required(EDITOR, section="data")
def record_import(request, name):
    """Records from a CSV file whose header names fields; a row with a known id updates that record.

    All or nothing: one bad row and no row is written, and the page lists what is wrong, by row.
    """
    data_type = _type_or_404(name)
    upload = request.FILES.get("file")
    problems: list[str] = []
    if upload is None:
        problems.append("Choose a CSV file.")
    elif upload.size > MAX_CSV_BYTES:
        problems.append(f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.")
    created = updated = 0
    if not problems:
        try:
            reader = csv.DictReader(io.StringIO(upload.read().decode("utf-8-sig")))
            specs = data_type.field_map()
            unknown = [column for column in reader.fieldnames or [] if column not in specs
                       and column not in ("id", "created", "modified")]
            if unknown:
                raise _ImportFailed([f"Unknown column(s): {', '.join(unknown)}; {name} has {', '.join(specs) or 'no fields'}."])
            with transaction.atomic():
                for number, row in enumerate(reader, start=2):
                    row_problems = []
                    values = {}
                    for column, text in row.items():
                        if column in specs and text not in ("", None):
                            try:
                                values[column] = _csv_value(specs[column], text)
                            except ValueError as exc:
                                row_problems.append(f"{column}: {exc}")
                    existing = Record.objects.filter(data_type=data_type, pk=row["id"]).first() if _is_uuid(
                        row.get("id")) else None
                    if not row_problems:
                        try:
                            if existing is not None:
                                services.record_update(record=existing, fields=values)
                                updated += 1
                            else:
                                services.record_create(data_type=data_type, fields=values)
                                created += 1
                        except ApplicationError as exc:
                            fields = getattr(exc, "fields", {}) or {}
                            row_problems += [f"{key.removeprefix('fields.')}: {message}" for key, message in fields.items()] or [exc.message]
                    problems += [f"Row {number}: {problem}" for problem in row_problems]
                    if len(problems) >= 50:
                        break
                if problems:
                    raise _ImportFailed(problems)
        except _ImportFailed as exc:
            problems = exc.args[0]
        except (UnicodeDecodeError, csv.Error) as exc:
            problems = [f"This is not a UTF-8 CSV file: {exc}"]
    if problems:
        return _record_list_page(request, data_type, import_problems=problems[:50])
    messages.success(request, f"Imported {created + updated} record(s): {created} new, {updated} updated.")
    return redirect("data-records", name=name)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
