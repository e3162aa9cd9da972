"""create_file: each format, the size limit, the signed download link and its expiry, and pruning."""
import csv
import io
import json
import re
import zlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.test import Client

from config.errors import ActionError
from workflows.actions import registry
from workflows.files import files_prune

action = registry.get("create_file")

RECORDS = [
    {"id": "7d2c", "type": "order", "created": "2025-03-01T10:00:00Z", "amount": 12.5, "category": "books",
     "note": None},
    {"id": "9f1e", "type": "order", "created": "2025-03-02T11:30:00Z", "amount": 3, "category": "music",
     "tags": ["gift", "vip"]},
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Created files land in a temporary storage, and links point at the test server."""
    settings.MEDIA_ROOT = tmp_path
    settings.ENGINE_ROOM_BASE_URL = "https://engine.example.com/"
    return tmp_path


def create(make_context, **config) -> dict:
    return action.run(config=action.validate_runtime(config), context=make_context())


def stored(output: dict) -> bytes:
    with default_storage.open(output["path"], "rb") as handle:
        return handle.read()


def pdf_text(data: bytes) -> str:
    """The text drawn on a Helvetica PDF's pages (fpdf2 compresses its page streams with zlib)."""
    pages = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            pages.append(zlib.decompress(match.group(1)).decode("latin-1"))
        except zlib.error:
            continue
    return " ".join(re.findall(r"\((.*?)\) Tj", "\n".join(pages)))


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path


# --- Config ---------------------------------------------------------------------------------


def test_config_needs_rows_or_content_and_csv_needs_rows():
    assert action.validate_definition(action.example) == {}
    assert action.validate_definition({"format": "csv"}) == {"rows": "give rows (or content)"}
    assert action.validate_definition({"format": "csv", "content": "a,b"}) == {
        "content": "a csv file is made from rows"}
    assert action.validate_definition({"format": "json", "rows": [], "content": {}}) == {
        "rows": "give either rows or content, not both"}
    assert "format" in action.validate_definition({"format": "xlsx", "rows": []})
    assert action.validate_definition({"format": "{{ params.format }}", "content": "{{ params.text }}"}) == {}
    with pytest.raises(ActionError, match="rows: Expected a list of rows"):
        action.validate_runtime({"format": "csv", "rows": "not a list"})
    with pytest.raises(ActionError, match="content: Expected text"):
        action.validate_runtime({"format": "pdf", "content": {"a": 1}})
    with pytest.raises(ActionError, match="expires_in_seconds"):
        action.validate_runtime({"format": "text", "content": "x", "expires_in_seconds": 5})


# --- Formats --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_csv_of_records_has_the_chosen_columns_in_order_with_a_header(make_context):
    output = create(make_context, format="csv", name="Orders March", rows=RECORDS,
                    columns=["created", "category", "amount", "tags"])
    assert output["name"] == "Orders_March.csv"
    assert output["content_type"] == "text/csv; charset=utf-8"
    assert output["path"].startswith("files/") and output["path"].endswith("/Orders_March.csv")
    content = stored(output)
    assert output["size"] == len(content)
    assert list(csv.reader(io.StringIO(content.decode()))) == [
        ["created", "category", "amount", "tags"],
        ["2025-03-01T10:00:00Z", "books", "12.5", ""],
        ["2025-03-02T11:30:00Z", "music", "3", '["gift","vip"]'],
    ]
    assert content.endswith(b"\r\n")


@pytest.mark.django_db
def test_csv_without_columns_takes_every_key_and_guards_spreadsheet_formulas(make_context):
    """A cell a spreadsheet would execute (=HYPERLINK…) is written as text; negative numbers stay numbers."""
    rows = [{"name": "=HYPERLINK(\"http://evil\")", "delta": "-5"}, {"name": "@SUM(A1)", "delta": -2.5, "extra": True}]
    content = stored(create(make_context, format="csv", name="x.csv", rows=rows)).decode()
    assert list(csv.reader(io.StringIO(content))) == [
        ["name", "delta", "extra"],
        ["'=HYPERLINK(\"http://evil\")", "-5", ""],
        ["'@SUM(A1)", "-2.5", "true"],
    ]


@pytest.mark.django_db
def test_csv_of_lists_and_plain_values(make_context):
    """Values from expressions keep their meaning: a datetime ({{ now }}) is ISO text, a date its day."""
    when = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    lists = stored(create(make_context, format="csv", rows=[[1, "a", when], [2, "b", when.date()]],
                          columns=["n", "letter", "at"]))
    assert lists.decode().splitlines() == ["n,letter,at", "1,a,2025-03-01T09:30:00Z", "2,b,2025-03-01"]
    values = stored(create(make_context, format="csv", rows=["ada@example.com", "bob@example.com"]))
    assert values.decode().splitlines() == ["ada@example.com", "bob@example.com"]


@pytest.mark.django_db
def test_json_of_rows_narrowed_to_columns_or_of_content(make_context):
    output = create(make_context, format="json", name="orders", rows=RECORDS, columns=["id", "amount"])
    assert output["name"] == "orders.json"
    assert json.loads(stored(output)) == [{"id": "7d2c", "amount": 12.5}, {"id": "9f1e", "amount": 3}]
    content = {"total": 15.5, "by": [{"key": "books", "value": 12.5}]}
    assert json.loads(stored(create(make_context, format="json", content=content))) == content


@pytest.mark.django_db
def test_text_of_content_or_an_aligned_table(make_context):
    note = create(make_context, format="text", name="note", content="Hello,\nthe export is attached.")
    assert note["name"] == "note.txt" and note["content_type"] == "text/plain; charset=utf-8"
    assert stored(note) == b"Hello,\nthe export is attached.\n"
    table = stored(create(make_context, format="text", rows=RECORDS, columns=["category", "amount"])).decode()
    assert table.splitlines() == ["category  amount", "--------  ------", "books     12.5", "music     3"]


@pytest.mark.django_db
def test_pdf_table_has_the_title_the_header_and_every_cell(make_context, settings):
    """With Helvetica, text outside Latin-1 is written the typewriter way instead of failing."""
    settings.ENGINE_ROOM_PDF_FONT = ""
    output = create(make_context, format="pdf", name="orders", title="Orders – March",
                    rows=RECORDS, columns=["created", "category", "amount"])
    data = stored(output)
    assert output["name"] == "orders.pdf" and output["content_type"] == "application/pdf"
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    text = pdf_text(data)
    for expected in ("Orders - March", "2 rows", "created", "category", "amount", "2025-03-01T10:00:00Z",
                     "books", "12.5", "music"):
        assert expected in text
    assert b"/Title (Orders - March)" in data


@pytest.mark.django_db
def test_pdf_text_document_and_wide_tables_in_landscape(make_context, settings):
    settings.ENGINE_ROOM_PDF_FONT = ""
    letter = stored(create(make_context, format="pdf", name="letter", content="Dear Ada,\nyour report is ready."))
    assert "Dear Ada," in pdf_text(letter) and "your report is ready." in pdf_text(letter)
    assert b"/Title (letter)" in letter
    wide = stored(create(make_context, format="pdf", rows=[list(range(8))]))
    # A4 landscape is 842 points wide.
    assert re.search(rb"/MediaBox \[0 0 841\.89 595\.28\]", wide)


@pytest.mark.django_db
def test_pdf_with_a_truetype_font_writes_any_script(make_context, settings):
    if not settings.ENGINE_ROOM_PDF_FONT:
        pytest.skip("no TrueType font on this machine: apt install fonts-dejavu-core, or set ENGINE_ROOM_PDF_FONT")
    data = stored(create(make_context, format="pdf", title="Bestellungen – Ωmega €", rows=[{"city": "Zürich"}]))
    title = re.search(rb"/Title <feff([0-9a-f]+)>", data).group(1)
    assert bytes.fromhex(title.decode()).decode("utf-16-be") == "Bestellungen – Ωmega €"
    assert b"/FontFile2" in data, "the font is embedded (subset), so every reader shows the same glyphs"


# --- Size limit -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "json", "text", "pdf"])
def test_a_file_over_the_size_limit_is_refused_and_nothing_is_stored(make_context, settings, media, file_format):
    settings.ENGINE_ROOM_FILE_MAX_BYTES = 500
    rows = [{"n": n, "text": "x" * 40} for n in range(20)]
    with pytest.raises(ActionError, match=r"limit is 500 \(ENGINE_ROOM_FILE_MAX_BYTES\)") as raised:
        create(make_context, format=file_format, rows=rows)
    assert raised.value.retryable is False
    assert not list(media.rglob("*.*"))


# --- Names ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd.csv"),
    ("report.CSV", "report.csv"),
    ("report.pdf", "report.pdf.csv"),
    ("", "export.csv"),
    ("Année 2025 / Q1 <final>.csv", "Q1_final.csv"),
])
def test_names_cannot_leave_the_files_folder_and_always_carry_the_extension(make_context, name, expected):
    output = create(make_context, format="csv", name=name, rows=[[1]])
    assert output["name"] == expected
    assert output["path"].startswith("files/") and ".." not in output["path"]


# --- The download link ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_link_downloads_the_file_without_an_account_until_it_expires(make_context):
    """Anyone with the link gets the file as an attachment (no login); after expires_at it answers 410."""
    with time_machine.travel(datetime(2025, 6, 1, 12, 0, tzinfo=UTC), tick=False):
        output = create(make_context, format="csv", name="orders.csv", rows=RECORDS, expires_in_seconds=3600)
        assert output["expires_at"] == "2025-06-01T13:00:00Z"
        assert output["url"].startswith("https://engine.example.com/files/")
        assert output["url"].endswith("/orders.csv")
        answer = Client().get(local(output["url"]))
        assert answer.status_code == 200
        assert b"".join(answer.streaming_content) == stored(output)
        assert answer["Content-Disposition"] == 'attachment; filename="orders.csv"'
        assert answer["Content-Type"] == "text/csv; charset=utf-8"
        assert answer["Cache-Control"] == "private, max-age=3600"
    with time_machine.travel(datetime(2025, 6, 1, 12, 59, 59, tzinfo=UTC), tick=False):
        assert Client().get(local(output["url"])).status_code == 200
    with time_machine.travel(datetime(2025, 6, 1, 13, 0, 0, tzinfo=UTC), tick=False):
        expired = Client().get(local(output["url"]))
        assert expired.status_code == 410
        assert b"expired" in expired.content


@pytest.mark.django_db
def test_a_tampered_or_foreign_link_is_not_found(make_context, settings):
    output = create(make_context, format="text", content="secret report")
    path = local(output["url"])
    token = path.split("/")[2]
    assert Client().get(path).status_code == 200
    assert Client().get(path.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))).status_code == 404
    assert Client().get("/files/not-a-token/x.txt").status_code == 404
    # The same path signed with another deployment's key is refused too.
    settings.SECRET_KEY = "another-deployment-" + "k" * 40
    assert Client().get(path).status_code == 404


@pytest.mark.django_db
def test_the_name_in_the_link_does_not_choose_the_file(make_context):
    """Only the signed token says which file is served; renaming the last segment changes nothing."""
    output = create(make_context, format="text", name="mine", content="mine")
    create(make_context, format="text", name="other", content="other")
    renamed = local(output["url"]).rsplit("/", 1)[0] + "/other.txt"
    answer = Client().get(renamed)
    assert b"".join(answer.streaming_content) == b"mine\n"
    assert answer["Content-Disposition"] == 'attachment; filename="mine.txt"'


@pytest.mark.django_db
def test_a_pruned_file_is_not_found_and_only_get_and_head_are_served(make_context):
    output = create(make_context, format="text", content="gone soon")
    assert Client().head(local(output["url"])).status_code == 200
    assert Client().post(local(output["url"])).status_code == 405
    default_storage.delete(output["path"])
    assert Client().get(local(output["url"])).status_code == 404


# --- Pruning --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_prune_deletes_files_whose_link_expired_and_keeps_the_rest(make_context, media):
    with time_machine.travel(datetime(2025, 6, 1, 12, 0, tzinfo=UTC), tick=False):
        hour = create(make_context, format="text", content="1 h", expires_in_seconds=3600)
        day = create(make_context, format="text", content="1 day", expires_in_seconds=86400)
        week = create(make_context, format="text", content="default: 7 days")
    assert week["expires_at"] == "2025-06-08T12:00:00Z"
    assert files_prune(now=datetime(2025, 6, 1, 12, 59, tzinfo=UTC)) == 0
    assert files_prune(now=datetime(2025, 6, 1, 13, 0, tzinfo=UTC)) == 1
    assert not default_storage.exists(hour["path"]) and default_storage.exists(day["path"])
    assert files_prune(now=datetime(2025, 6, 3, 0, 0, tzinfo=UTC)) == 1
    assert [path.name for path in media.rglob("*.txt")] == [week["name"]]
    # Emptied folders go too, so the storage does not fill up with empty days.
    assert sorted(path.name for path in (media / "files").iterdir()) == ["2025-06-08"]


def test_prune_with_no_files_yet_does_nothing(media):
    assert files_prune() == 0


# --- With the engine and send_email ---------------------------------------------------------


@pytest.mark.django_db
def test_a_created_file_attaches_to_an_email_by_its_output(make_workflow, run_now, mailoutbox):
    """The pattern of the export template: create_file's whole output goes into send_email's attachments."""
    workflow = make_workflow("export", steps=[
        {"key": "report", "action": "create_file",
         "config": {"format": "csv", "name": "report.csv", "rows": [{"a": 1, "b": "two"}]}},
        {"key": "mail", "action": "send_email",
         "config": {"to": "ada@example.com", "subject": "Your report", "body": "Link: {{ steps.report.url }}",
                    "attachments": "{{ [steps.report] }}"}},
    ])
    run = run_now(workflow)
    assert run.status == "succeeded", run.error
    [message] = mailoutbox
    assert message.attachments[0].filename == "report.csv"
    assert message.attachments[0].content == "a,b\r\n1,two\r\n"
    assert message.attachments[0].mimetype.startswith("text/csv")
    link = re.search(r"https://engine\.example\.com(/files/\S+)", message.body).group(1)
    assert b"".join(Client().get(link).streaming_content) == b"a,b\r\n1,two\r\n"
    assert run.steps.get(key="report").output["size"] == len(b"a,b\r\n1,two\r\n")
