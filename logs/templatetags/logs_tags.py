"""Template filters of the logs pages: durations, short ids, pretty JSON, query strings."""
import json
import uuid

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.http import QueryDict

register = template.Library()


@register.filter
def duration(ms) -> str:
    """Milliseconds for people: 850 ms, 1.25 s, 2 min 5 s, 1 h 3 min."""
    if ms is None or ms == "":
        return "—"
    ms = float(ms)
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def short_id(value) -> str:
    """The first 8 characters of a run id: enough to tell runs apart on a page."""
    return str(value)[:8]


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder, default=str)


@register.filter
def compact_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder, default=str, separators=(", ", ": "))


@register.filter
def wu(value) -> str:
    """Workload units with up to three decimals, no float noise (0.30000000000000004 → 0.3)."""
    if value is None:
        return "0"
    text = f"{float(value):,.3f}".rstrip("0").rstrip(".")
    return text or "0"


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


@register.simple_tag
def query_with(query: str, **changes) -> str:
    """`query` (a query string) with some keys set, or removed when given None or ""."""
    params = QueryDict(query, mutable=True)
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    return params.urlencode()


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def valid_uuid(value):
    """The value as a UUID, or None (for ids read from parameters, which anyone could have set)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
