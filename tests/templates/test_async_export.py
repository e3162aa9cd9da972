"""Template 7, asynchronous export: a CSV and a PDF report of one customer's orders, emailed as attachments."""
import csv
import io
import re

import pytest
import requests
from django.utils import timezone

from datastore.selectors import data_type_get
from datastore.services import record_create
from tests.templates.conftest import body_text

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def pdf_title(data: bytes) -> str:
    """The document title, written as Latin-1 text or (with a TrueType font) as UTF-16."""
    hexed = re.search(rb"/Title <feff([0-9a-fA-F]+)>", data)
    if hexed:
        return bytes.fromhex(hexed.group(1).decode()).decode("utf-16-be")
    return re.search(rb"/Title \((.*?)\)", data).group(1).decode("latin-1")


def test_the_export_arrives_as_csv_and_pdf_attachments_with_working_links(stack):
    stack.install("async-export")
    orders = data_type_get(name="order")
    for amount, category in [(12.5, "books"), (30, "music"), (7.25, "books")]:
        record_create(data_type=orders, fields={"customer_email": "ada@example.com", "amount": amount,
                                                "category": category, "status": "paid"})
    record_create(data_type=orders, fields={"customer_email": "bob@example.com", "amount": 99, "status": "paid"})
    stack.start()

    answer = stack.call("export_orders", {"email": "ada@example.com"})
    assert answer.status_code == 202, answer.text  # the caller does not wait for the files
    [message] = stack.mail(1)
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your export is ready (3 orders)"

    today = timezone.now().strftime("%Y-%m-%d")
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {f"orders-{today}.csv", f"orders-{today}.pdf"}
    sheet = attachments[f"orders-{today}.csv"]
    assert sheet.get_content_type() == "text/csv"
    rows = list(csv.reader(io.StringIO(sheet.get_payload(decode=True).decode())))
    assert rows[0] == ["created", "category", "amount", "status"]
    # Newest first, Ada's orders only.
    assert [row[1:] for row in rows[1:]] == [["books", "7.25", "paid"], ["music", "30", "paid"],
                                             ["books", "12.5", "paid"]]
    report = attachments[f"orders-{today}.pdf"]
    assert report.get_content_type() == "application/pdf"
    pdf = report.get_payload(decode=True)
    assert pdf.startswith(b"%PDF-") and pdf_title(pdf) == "Orders of ada@example.com"

    links = re.findall(r"http\S+/files/\S+", body_text(message))
    assert len(links) == 2
    for link in links:
        download = requests.get(link, timeout=30)
        assert download.status_code == 200
        assert download.content in (sheet.get_payload(decode=True), pdf)

    run = stack.run_of(answer)
    assert run.status == "succeeded", run.error
    assert [step.key for step in run.steps.order_by("index")] == ["orders", "csv", "pdf", "email"]
    assert run.steps.get(key="csv").output["size"] == len(sheet.get_payload(decode=True))
