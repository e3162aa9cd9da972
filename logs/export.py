"""Export of the filtered run list as CSV or JSON lines, streamed row by row (no page limit, no memory spike)."""
import csv
import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder

COLUMNS = [
    "id", "workflow", "version", "status", "trigger", "caller", "created", "started_at", "finished_at",
    "duration_ms", "wu", "error_code", "error", "params", "parent_run", "root_run", "depth",
]
# Text that a spreadsheet would run as a formula (CSV injection): webhook senders choose params and errors.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_rows(runs) -> Iterator[dict]:
    """One dict per run (COLUMNS), read in chunks through a server-side cursor where the database has one."""
    rows = runs.select_related(None).defer(None).only(
        "id", "workflow_name", "version__number", "status", "trigger", "caller", "created", "started_at",
        "finished_at", "duration_ms", "wu", "error_code", "error", "params", "parent_run_id", "root_run_id", "depth",
    ).select_related("version")
    for run in rows.iterator(chunk_size=2000):
        yield {
            "id": str(run.id),
            "workflow": run.workflow_name,
            "version": run.version.number if run.version_id else "draft",
            "status": run.status,
            "trigger": run.trigger,
            "caller": run.caller,
            "created": run.created,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration_ms": run.duration_ms,
            "wu": run.wu,
            "error_code": run.error_code,
            "error": run.error,
            "params": run.params,
            "parent_run": str(run.parent_run_id) if run.parent_run_id else None,
            "root_run": str(run.root_run_id) if run.root_run_id else None,
            "depth": run.depth,
        }


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    elif hasattr(value, "isoformat"):
        return value.isoformat()
    elif not isinstance(value, str):
        return str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


class _Line:
    """A file-like target for csv.writer that hands back the line just written."""

    def write(self, text: str) -> str:
        return text


def csv_lines(runs) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for row in export_rows(runs):
        yield writer.writerow([_csv_cell(row[column]) for column in COLUMNS])


def json_lines(runs) -> Iterator[str]:
    for row in export_rows(runs):
        yield json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"
