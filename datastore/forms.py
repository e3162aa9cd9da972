"""Forms of the data pages: a record form generated from a data type's fields, and the small ones."""
import json

from django import forms

from .filters import LOOKUPS
from .types import NAME_RE, SCALAR_TYPES, record_type

# How a value of each type is typed in, next to its input.
TYPE_HINTS = {
    "number": "A number, e.g. 9.99.",
    "integer": "A whole number.",
    "date": "YYYY-MM-DD.",
    "datetime": "ISO 8601, e.g. 2025-01-31T09:30:00Z (UTC when no offset is given).",
    "email": "An email address.",
    "url": "An http(s) URL.",
    "object": "JSON, e.g. {\"plan\": \"pro\"}.",
    "file": "A file URL; or upload a file below.",
}


class DataTypeCreateForm(forms.Form):
    """A new data type: just its name; fields come next."""

    name = forms.RegexField(
        regex=rf"^{NAME_RE.pattern}$",
        max_length=63,
        help_text="Lowercase letters, digits and underscores, e.g. subscription. Workflows refer to it by this name.",
        error_messages={"invalid": "Use lowercase letters, digits and underscores, starting with a letter."},
    )


def field_types(data_types) -> list[str]:
    """Every type a field may have: the scalar ones and a reference to each data type."""
    return [*SCALAR_TYPES, *(f"record:{name}" for name in data_types)]


def value_text(spec: dict, value) -> str:
    """A stored value as the record form shows it."""
    if value is None:
        return ""
    if spec.get("list"):
        if all(isinstance(item, str) and "\n" not in item for item in value):
            return "\n".join(value)
        return json.dumps(value, ensure_ascii=False)
    if spec["type"] == "object" or isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, indent=2)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RecordForm(forms.Form):
    """One input per field of a data type, typed as the field is; values are checked by the record services."""

    def __init__(self, *args, data_type, record=None, **kwargs):
        self.data_type = data_type
        initial = {}
        if record is not None:
            initial = {spec["name"]: value_text(spec, record.data.get(spec["name"])) for spec in data_type.fields}
        super().__init__(*args, initial=initial, **kwargs)
        for spec in data_type.fields:
            self.fields[spec["name"]] = self._field(spec)
            if spec["type"] == "file" and not spec.get("list"):
                self.fields[f"{spec['name']}__upload"] = forms.FileField(
                    required=False, label=f"{spec['name']}: upload a file"
                )

    @staticmethod
    def _field(spec: dict) -> forms.Field:
        type_name, is_list = spec["type"], spec.get("list", False)
        target = record_type(type_name)
        hint = f"The id of a {target} record." if target else TYPE_HINTS.get(type_name, "")
        if is_list:
            hint = "One per line, or a JSON list." + (f" Each: {hint[0].lower()}{hint[1:]}" if hint else "")
        description = spec.get("description") or ""
        help_text = " ".join(part for part in (description, hint) if part)
        label = spec["name"]
        if type_name == "boolean" and not is_list:
            return forms.ChoiceField(
                choices=[("", "—"), ("true", "true"), ("false", "false")], required=False, label=label,
                help_text=help_text,
            )
        attrs = {"autocomplete": "off"}
        if type_name in ("number", "integer") and not is_list:
            attrs["inputmode"] = "decimal" if type_name == "number" else "numeric"
        if type_name == "date" and not is_list:
            widget = forms.DateInput(attrs={**attrs, "type": "date"})
        elif is_list or type_name == "object":
            widget = forms.Textarea(attrs={**attrs, "rows": 3, "spellcheck": "false"})
        else:
            widget = forms.TextInput(attrs=attrs)
        # Not required here: the service says "required" itself, for creates and for clearing a value.
        return forms.CharField(required=False, strip=type_name != "text", label=label, help_text=help_text,
                               widget=widget)

    def values(self, *, creating: bool) -> tuple[dict, dict]:
        """(field values for the record services, errors by field) from the cleaned data."""
        values, errors = {}, {}
        for spec in self.data_type.fields:
            name = spec["name"]
            upload = self.cleaned_data.get(f"{name}__upload")
            text = self.cleaned_data.get(name, "")
            if upload:
                values[name] = upload
                continue
            if text in ("", None):
                if not creating and self.initial.get(name, "") != "":
                    values[name] = None  # emptied: the value is cleared
                continue
            try:
                values[name] = parse_value(spec, text)
            except ValueError as exc:
                errors[name] = str(exc)
        return values, errors


def parse_value(spec: dict, text: str):
    """Typed text for a field: JSON for objects and JSON lists, one item per line for other lists."""
    text = text.replace("\r\n", "\n")
    if spec.get("list"):
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except (ValueError, RecursionError) as exc:
                raise ValueError(f"Not a JSON list: {exc}") from None
            if not isinstance(items, list):
                raise ValueError("Expected a JSON list.")
            return items
        return [line.strip() for line in text.split("\n") if line.strip()]
    if spec["type"] == "object":
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"Not valid JSON: {exc}") from None
    return text



class RecordFilter:
    """The records browser's filter rows (field, lookup, value) and ordering, read from the query string."""

    def __init__(self, query, data_type):
        self.data_type = data_type
        fields = query.getlist("field")
        lookups = query.getlist("lookup")
        values = query.getlist("value")
        self.rows = []
        for index, field in enumerate(fields):
            lookup = lookups[index] if index < len(lookups) else "exact"
            value = values[index] if index < len(values) else ""
            if field:
                self.rows.append({"field": field, "lookup": lookup if lookup in LOOKUPS else "exact", "value": value})
        self.order_by = query.get("order_by", "")
        self.errors: dict[str, str] = {}

    @property
    def shown_rows(self) -> list[dict]:
        """The filters set, plus one empty row to add another."""
        empty = {"field": "", "lookup": "exact", "value": ""}
        rows = [dict(row, error=self.error_for(row)) for row in self.rows]
        return [*rows, dict(empty, error="")]

    def as_filter(self) -> dict:
        """The DESIGN lookups object: {"plan": "pro", "score__gte": "50"} (values coerced by the datastore)."""
        result = {}
        for row in self.rows:
            key = row["field"] if row["lookup"] == "exact" else f"{row['field']}__{row['lookup']}"
            result[key] = row["value"]
        return result

    def error_for(self, row: dict) -> str:
        key = row["field"] if row["lookup"] == "exact" else f"{row['field']}__{row['lookup']}"
        return self.errors.get(f"filter.{key}", "")

    @property
    def field_names(self) -> list[str]:
        return ["id", "created", "modified", *(spec["name"] for spec in self.data_type.fields)]
