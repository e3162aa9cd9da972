"""create_file: a CSV, JSON, text or PDF file from records or values, kept in storage with an expiring link."""
import csv
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from rest_framework import serializers

from config.errors import ActionError
from workflows.files import FileTooLarge, check_size, file_store, safe_file_name

from .base import Action, ActionConfig, ValueField

FORMATS = ("csv", "json", "text", "pdf")
EXTENSIONS = {"csv": "csv", "json": "json", "text": "txt", "pdf": "pdf"}
MAX_COLUMNS = 200
# Cells a spreadsheet would run as a formula (CSV injection); such text gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Typographic characters Helvetica lacks, written the way a typewriter would.
LATIN1_FALLBACKS = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u2022": "*", "\u20ac": "EUR",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ",
})


class CreateFile(Action):
    """Write rows or content to a new file in the app's storage and hand out a download link."""

    type = "create_file"
    label = "Create a file"
    description = (
        "Builds a file — csv, json, text or pdf (a titled table, or a text document) — from `rows` (records or "
        "any values; `columns` picks and orders the fields) or from `content`, and keeps it in the app's file "
        "storage. Outputs {name, url, size, expires_at, path, content_type}: `url` is a download link that expires "
        "(ENGINE_ROOM_FILE_URL_EXPIRY_SECONDS, or expires_in_seconds); pass the whole output to send_email's "
        "attachments. Files over ENGINE_ROOM_FILE_MAX_BYTES are refused."
    )
    group = "Data"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["file_created"]
    example = {"format": "csv", "name": "orders.csv", "rows": "{{ steps.orders.records }}",
               "columns": ["created", "amount", "status"]}

    class Config(ActionConfig):
        format = serializers.ChoiceField(choices=FORMATS, help_text="csv, json, text or pdf.")
        name = serializers.CharField(
            required=False, allow_blank=True, default="",
            help_text="File name, e.g. orders.csv; the format's extension is added when missing.",
        )
        title = serializers.CharField(
            required=False, allow_blank=True, default="",
            help_text="PDF only: the heading (default: the file name without its extension).",
        )
        rows = ValueField(
            required=False, allow_null=False,
            help_text="A list: records, objects, lists or plain values — one row (or line) each.",
        )
        content = ValueField(
            required=False, allow_null=False, help_text="Instead of rows: the text (text, pdf) or any JSON value (json)."
        )
        columns = serializers.ListField(
            child=serializers.CharField(), required=False, max_length=MAX_COLUMNS,
            help_text="Which fields of object rows, in order (default: every key); the header for list rows.",
        )
        expires_in_seconds = serializers.IntegerField(
            required=False, min_value=60, max_value=366 * 86400,
            help_text="How long the download link works (default ENGINE_ROOM_FILE_URL_EXPIRY_SECONDS).",
        )

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if not self.partial:
                errors = _source_errors(attrs.get("format"), attrs)
                if "rows" in attrs and not isinstance(attrs["rows"], list):
                    errors.setdefault("rows", "Expected a list of rows.")
                if attrs.get("format") in ("text", "pdf") and "content" in attrs and isinstance(
                    attrs["content"], dict | list
                ):
                    errors.setdefault("content", "Expected text; give a list as rows to make a table.")
                if errors:
                    raise serializers.ValidationError(errors)
            return attrs

    def validate_definition(self, config: dict) -> dict[str, str]:
        errors = super().validate_definition(config)
        for key, message in _source_errors(config.get("format"), config).items():
            errors.setdefault(key, message)
        return errors

    def run(self, *, config, context):
        file_format = config["format"]
        name = safe_file_name(config["name"], extension=EXTENSIONS[file_format])
        try:
            if file_format == "csv":
                content = csv_bytes(config["rows"], config.get("columns"))
            elif file_format == "json":
                content = json_bytes(config.get("rows"), config.get("content"), config.get("columns"))
            elif file_format == "text":
                content = text_bytes(config.get("rows"), config.get("content"), config.get("columns"))
            else:
                title = config["title"] or name.rsplit(".", 1)[0]
                content = pdf_bytes(title, config.get("rows"), config.get("content"), config.get("columns"))
            expires_in = config.get("expires_in_seconds")
            stored = file_store(
                name=name, content=content, expires_in=timedelta(seconds=expires_in) if expires_in else None
            )
        except FileTooLarge as exc:
            raise ActionError(exc.message, extra=exc.extra) from exc
        return stored.as_output()


def _source_errors(file_format, config: dict) -> dict[str, str]:
    has_rows, has_content = "rows" in config, "content" in config
    if has_rows and has_content:
        return {"rows": "give either rows or content, not both"}
    if file_format == "csv" and has_content:
        return {"content": "a csv file is made from rows"}
    if not has_rows and not has_content:
        return {"rows": "give rows (or content)"}
    return {}


# --- Rows as a table ----------------------------------------------------------------------------


def table(rows: list, columns: list[str] | None) -> tuple[list[str], list[list]]:
    """(header, values by row): object rows by `columns` (or every key, first seen first), list rows as
    they are, plain values as one column. The header is empty when nothing names the columns."""
    if columns:
        header = list(columns)
    elif any(isinstance(row, dict) for row in rows):
        seen: dict[str, None] = {}
        for row in rows:
            if isinstance(row, dict):
                seen.update(dict.fromkeys(str(key) for key in row))
                if len(seen) >= MAX_COLUMNS:
                    break
        header = list(seen)[:MAX_COLUMNS]
    else:
        header = []
    matrix = []
    for row in rows:
        if isinstance(row, dict):
            matrix.append([row.get(column) for column in header])
        elif isinstance(row, list | tuple):
            matrix.append(list(row))
        else:
            matrix.append([row])
    return header, matrix


def cell_text(value) -> str:
    """A value as a cell shows it: nothing for null, true/false, ISO dates, JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def _guard_formula(text: str) -> str:
    if text.startswith(FORMULA_STARTS):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def csv_bytes(rows: list, columns: list[str] | None) -> bytes:
    """RFC 4180 CSV (UTF-8, CRLF), header first; stops as soon as the size limit is passed."""
    header, matrix = table(rows, columns)
    line_buffer = io.StringIO()
    writer = csv.writer(line_buffer)
    parts, size = [], 0
    for line in ([header] if header else []) + matrix:
        writer.writerow([_guard_formula(cell_text(value)) for value in line])
        part = line_buffer.getvalue().encode()
        line_buffer.seek(0)
        line_buffer.truncate()
        size += len(part)
        check_size(size)
        parts.append(part)
    return b"".join(parts)


def json_bytes(rows: list | None, content, columns: list[str] | None) -> bytes:
    """Rows as a JSON array (object rows narrowed to `columns`), or content as it is; indented."""
    if rows is not None:
        value = [
            {column: row.get(column) for column in columns} if columns and isinstance(row, dict) else row
            for row in rows
        ]
    else:
        value = content
    text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2) + "\n"
    return text.encode()


def text_bytes(rows: list | None, content, columns: list[str] | None) -> bytes:
    """Content as text, or rows as a plain-text table with aligned columns."""
    if rows is None:
        text = content if isinstance(content, str) else json.dumps(
            content, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2
        )
        return (text if text.endswith("\n") else text + "\n").encode()
    header, matrix = table(rows, columns)
    lines = [[cell_text(value) for value in line] for line in matrix]
    check_size(sum(len(cell) + 2 for line in lines for cell in line))
    width = max([len(header)] + [len(line) for line in lines])
    # Columns as wide as their widest cell, up to 40 characters; longer cells just stick out.
    widths = [
        min(40, max([len(header[i]) if i < len(header) else 0] + [len(line[i]) for line in lines if i < len(line)]))
        for i in range(width)
    ]

    def joined(cells):
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    out = []
    if header:
        out += [joined(header), joined(["-" * w for w in widths[: len(header)]])]
    out += [joined(line) for line in lines]
    return ("\n".join(out) + "\n").encode()


# --- PDF ----------------------------------------------------------------------------------------


def pdf_bytes(title: str, rows: list | None, content, columns: list[str] | None) -> bytes:
    """A PDF with a heading, then a table of the rows or the text: fpdf2, A4, wide tables in landscape."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    font_path = settings.ENGINE_ROOM_PDF_FONT
    plain = _plain_text_for(font_path)
    if rows is not None:
        header, matrix = table(rows, columns)
        cells = [[plain(cell_text(value)) for value in line] for line in matrix]
        # A PDF is larger than its text: refuse early instead of laying out pages that cannot be kept.
        check_size(sum(len(cell) for line in cells for cell in line))
        width = max([len(header)] + [len(line) for line in cells] + [1])
    else:
        text = plain(content if isinstance(content, str) else cell_text(content))
        check_size(len(text.encode()))
        header, cells, width = [], [], 1

    class Document(FPDF):
        def footer(self):
            self.set_y(-12)
            self.set_font(family, size=8)
            self.set_text_color(120)
            self.cell(0, 8, f"{plain(title)} - page {self.page_no()}/{{nb}}", align="C")

    pdf = Document(orientation="landscape" if width > 5 else "portrait", format="A4")
    family = _load_font(pdf, font_path)
    pdf.set_title(plain(title))
    pdf.set_creator("Engine Room")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(family, "B", 16)
    pdf.multi_cell(0, 9, plain(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=8)
    pdf.set_text_color(110)
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    summary = f"{len(cells)} row{'s' if len(cells) != 1 else ''} - created {stamp}" if rows is not None else (
        f"Created {stamp}")
    pdf.cell(0, 6, summary, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(3)
    if rows is not None:
        pdf.set_font(family, size=9)
        if header or cells:
            padded = [line + [""] * (width - len(line)) for line in cells]
            heading = [plain(column) for column in header] + [""] * (width - len(header)) if header else None
            with pdf.table(
                text_align="LEFT", line_height=5, first_row_as_headings=heading is not None,
                headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
            ) as pdf_table:
                for line in ([heading] if heading else []) + padded:
                    pdf_row = pdf_table.row()
                    for cell in line:
                        pdf_row.cell(cell)
        else:
            pdf.cell(0, 6, "No rows.", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font(family, size=11)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _load_font(pdf, font_path: str) -> str:
    """The font family to write with: the configured TrueType font (regular and bold), else Helvetica."""
    if not font_path or not Path(font_path).is_file():
        return "helvetica"
    bold = Path(font_path).with_name(f"{Path(font_path).stem}-Bold{Path(font_path).suffix}")
    pdf.add_font("body", "", font_path)
    pdf.add_font("body", "B", str(bold) if bold.is_file() else font_path)
    return "body"


def _plain_text_for(font_path: str):
    """Text as the chosen font can write it: anything with a TrueType font, Latin-1 with Helvetica."""
    if font_path and Path(font_path).is_file():
        return lambda text: text

    def latin1(text: str) -> str:
        return text.translate(LATIN1_FALLBACKS).encode("latin-1", "replace").decode("latin-1")

    return latin1
