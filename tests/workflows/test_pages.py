"""The workflow pages through Django's test client: list, create, import/export, editor saves, checks, runs."""
import io
import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from datastore.services import data_type_create, record_create
from logs.models import RunStatus, WorkflowRun
from workflows import editor
from workflows.models import Workflow
from workflows.services import workflow_create, workflow_publish, workflow_update
from workflows.views import testing

PASSWORD = "correct horse battery staple"

STRIPE = {
    "format": 1,
    "name": "process_stripe_payment",
    "description": "Mark the subscription paid and tell sales",
    "parameters": [
        {"name": "type", "type": "text", "required": True},
        {"name": "customer", "type": "text", "required": True},
    ],
    "steps": [
        {"key": "find", "action": "find_records",
         "config": {"type": "subscription", "filter": {"customer_id": "{{ params.customer }}"}, "limit": 1}},
        {"key": "activate", "action": "update_record",
         "only_when": "{{ params.type == 'invoice.paid' and steps.find.count > 0 }}",
         "config": {"type": "subscription", "id": "{{ steps.find.records[0].id }}", "fields": {"status": "active"}}},
        {"key": "notify", "action": "send_email",
         "config": {"to": "sales@example.com", "subject": "Paid: {{ params.customer }}", "body": "Status active."}},
    ],
}


class FormReader(HTMLParser):
    """The values a browser would submit from one <form id=...> of a page (checked boxes, selected options)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.depth = form_id, False, 0
        self.data = editor.FormData()
        self.select = self.textarea = None
        self.option_value = None
        self.template = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "template":
            self.template += 1
        if self.template:
            return
        if tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data.add(attrs["name"], attrs.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                self.data.add(attrs["name"], attrs.get("value", ""))
        elif tag == "select":
            self.select = {"name": attrs.get("name"), "first": None, "chosen": None}
        elif tag == "option" and self.select is not None:
            value = attrs.get("value", "")
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in attrs:
                self.select["chosen"] = value
        elif tag == "textarea":
            self.textarea = {"name": attrs.get("name"), "text": ""}

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "template":
            self.template -= 1
        elif tag == "form":
            self.inside = False
        elif tag == "select" and self.select is not None:
            chosen = self.select["chosen"] if self.select["chosen"] is not None else self.select["first"]
            if self.select["name"] and chosen is not None:
                self.data.add(self.select["name"], chosen)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            # Browsers drop the newline right after <textarea>.
            text = self.textarea["text"]
            self.data.add(self.textarea["name"], text[1:] if text.startswith("\n") else text)
            self.textarea = None

    def handle_data(self, data):
        if self.textarea is not None and not self.template:
            self.textarea["text"] += data


def submitted(html: str, form_id: str = "editor") -> dict:
    reader = FormReader(form_id)
    reader.convert_charrefs = True
    reader.feed(html)
    return {key: values for key, values in reader.data.items()}


@pytest.fixture
def editor_user(django_user_model):
    return django_user_model.objects.create_user(username="ada", password=PASSWORD)


@pytest.fixture
def signed_in(client, editor_user):
    client.force_login(editor_user)
    return client


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user(username="vic", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client.force_login(user)
    return client


@pytest.fixture
def subscriptions(db):
    data_type = data_type_create(name="subscription", fields=[
        {"name": "customer_id", "type": "text"}, {"name": "status", "type": "text"},
    ])
    record_create(data_type=data_type, fields={"customer_id": "cus_1", "status": "past_due"})
    return data_type


@pytest.fixture
def stripe(subscriptions, editor_user):
    return workflow_create(definition=STRIPE, user=editor_user)


def editor_form(client, workflow) -> dict:
    response = client.get(reverse("workflow-edit", args=[workflow.name]))
    assert response.status_code == 200
    return submitted(response.content.decode())


# --- The list ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_runs_failures_and_wu_of_the_last_day(signed_in, stripe):
    """Each row says how the workflow has been doing: last run, runs and failures in 24 h, WU this month."""
    old = WorkflowRun.objects.create(workflow=stripe, workflow_name=stripe.name, trigger="webhook",
                                     status=RunStatus.SUCCEEDED, wu=1.5)
    WorkflowRun.objects.filter(id=old.id).update(created=timezone.now() - timedelta(days=2))
    WorkflowRun.objects.create(workflow=stripe, workflow_name=stripe.name, trigger="webhook",
                               status=RunStatus.FAILED, wu=0.25)
    WorkflowRun.objects.create(workflow=stripe, workflow_name=stripe.name, trigger="webhook",
                               status=RunStatus.SUCCEEDED, wu=0.25)
    html = signed_in.get(reverse("workflows-page")).content.decode()
    row = re.search(r"<tr>\s*<th scope=\"row\">\s*<a href=\"/workflows/process_stripe_payment/\">.*?</tr>", html, re.S)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]
    assert cells[1] == "token"
    assert cells[2] == "draft only"
    assert cells[3].startswith("succeeded")
    assert cells[4:7] == ["2", "1", "2.0"]


@pytest.mark.django_db
def test_search_finds_by_name_and_description(signed_in, stripe, make_workflow):
    make_workflow("nightly_report", description="Totals for the day")
    assert "nightly_report" in signed_in.get(reverse("workflows-page"), {"q": "totals"}).content.decode()
    html = signed_in.get(reverse("workflows-page"), {"q": "totals"}).content.decode()
    assert "process_stripe_payment" not in html
    assert "No workflow matches" in signed_in.get(reverse("workflows-page"), {"q": "zzz"}).content.decode()


@pytest.mark.django_db
def test_create_opens_the_editor_and_a_bad_name_is_refused_next_to_the_field(signed_in):
    """A new workflow starts as a draft; a name that cannot be a URL segment gets a field error."""
    response = signed_in.post(reverse("workflows-page"), {"intent": "create", "name": "Send Mail!", "description": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="new_name_error">Use lowercase letters', html)
    assert 'aria-invalid="true"' in html
    response = signed_in.post(reverse("workflows-page"), {"intent": "create", "name": "send_mail", "description": "Hi"})
    assert response["Location"] == reverse("workflow-edit", args=["send_mail"])
    assert Workflow.objects.get(name="send_mail").live_version is None


@pytest.mark.django_db
def test_a_taken_name_is_refused(signed_in, stripe):
    response = signed_in.post(reverse("workflows-page"), {"intent": "create", "name": stripe.name})
    assert response.status_code == 400
    assert "is taken" in response.content.decode()


@pytest.mark.django_db
def test_export_then_import_elsewhere_gives_the_same_workflow(signed_in, stripe):
    """Export writes the draft as a file; importing that file (after a delete) brings it back."""
    response = signed_in.get(reverse("workflow-export", args=[stripe.name]))
    assert response["Content-Disposition"] == 'attachment; filename="process_stripe_payment.json"'
    exported = json.loads(response.content)
    assert exported["steps"] == STRIPE["steps"]
    Workflow.objects.all().delete()
    upload = io.BytesIO(response.content)
    upload.name = "process_stripe_payment.json"
    response = signed_in.post(reverse("workflows-page"), {"intent": "import", "file": upload, "publish": "on"})
    assert response["Location"] == reverse("workflow-edit", args=[stripe.name])
    imported = Workflow.objects.get(name=stripe.name)
    assert imported.live_version.number == 1
    assert imported.definition["steps"] == STRIPE["steps"]


@pytest.mark.django_db
def test_importing_a_broken_file_says_what_is_wrong(signed_in, subscriptions):
    """Not JSON, and JSON with a bad step, are both refused with the reason next to the file input."""
    upload = io.BytesIO(b"{not json")
    upload.name = "broken.json"
    response = signed_in.post(reverse("workflows-page"), {"intent": "import", "file": upload})
    assert response.status_code == 400
    assert "This is not a JSON file" in response.content.decode()
    bad = dict(STRIPE, steps=[{"key": "call", "action": "http_request", "config": {"url": "nope"}}])
    upload = io.BytesIO(json.dumps(bad).encode())
    upload.name = "bad.json"
    html = signed_in.post(reverse("workflows-page"), {"intent": "import", "file": upload}).content.decode()
    assert "steps[0].config.url: Enter an absolute http or https URL." in html
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_duplicate_makes_an_unpublished_copy(signed_in, stripe):
    response = signed_in.post(reverse("workflow-duplicate", args=[stripe.name]))
    assert response["Location"] == reverse("workflow-edit", args=["process_stripe_payment_copy"])
    copy = Workflow.objects.get(name="process_stripe_payment_copy")
    assert copy.definition["steps"] == stripe.definition["steps"] and copy.live_version is None
    signed_in.post(reverse("workflow-duplicate", args=[stripe.name]))
    assert Workflow.objects.filter(name="process_stripe_payment_copy_2").exists()


@pytest.mark.django_db
def test_delete_asks_first_then_deletes(signed_in, stripe):
    page = signed_in.get(reverse("workflow-delete", args=[stripe.name])).content.decode()
    assert "Delete process_stripe_payment?" in page and "cannot be undone" in page
    assert Workflow.objects.filter(name=stripe.name).exists()
    response = signed_in.post(reverse("workflow-delete", args=[stripe.name]))
    assert response["Location"] == reverse("workflows-page")
    assert not Workflow.objects.filter(name=stripe.name).exists()


@pytest.mark.django_db
def test_enabled_switch_turns_the_workflow_off_at_once(signed_in, stripe):
    """The list's switch (an htmx post) changes the draft's enabled flag, which the endpoint obeys."""
    response = signed_in.post(reverse("workflow-enabled", args=[stripe.name]), {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "checked" not in response.content.decode()
    stripe.refresh_from_db()
    assert stripe.enabled is False and stripe.definition["enabled"] is False
    signed_in.post(reverse("workflow-enabled", args=[stripe.name]), {"enabled": "on"}, HTTP_HX_REQUEST="true")
    stripe.refresh_from_db()
    assert stripe.enabled is True


# --- The editor --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_saving_the_page_unchanged_keeps_the_definition(signed_in, stripe):
    """Every input the page renders reads back into the same workflow (nothing is lost on a save)."""
    data = editor_form(signed_in, stripe)
    response = signed_in.post(reverse("workflow-edit", args=[stripe.name]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    stripe.refresh_from_db()
    assert stripe.revision == 2
    assert editor.canonical(stripe.definition) == editor.canonical(STRIPE)


@pytest.mark.django_db
def test_each_step_shows_a_form_made_from_its_action_schema(signed_in, stripe):
    """The send_email card has its schema's inputs with their help texts; optional empty ones are tucked away."""
    html = signed_in.get(reverse("workflow-edit", args=[stripe.name])).content.decode()
    card = re.search(r'<li class="step" id="s-(\w+)"[^>]*>(?:(?!</li>).)*?Send an email.*?</li>', html, re.S).group(0)
    for label in ("To", "Subject", "Body"):
        assert re.search(rf'<label for="s-\w+-c-{label.lower()}">{label} <span class="req"', card)
    assert "Recipient address, or a list of them." in card
    assert re.search(r"<summary>More options: cc, bcc, html, from, reply to, attachments</summary>", card)
    assert re.search(r'<button type="button" class="chip" data-insert="params.customer"', card)
    assert 'data-insert="steps.activate"' in card


@pytest.mark.django_db
def test_a_bad_save_shows_each_error_next_to_its_field_and_keeps_what_was_typed(signed_in, stripe):
    data = editor_form(signed_in, stripe)
    notify = data["steps"][2]
    data[f"s-{notify}-c-subject"] = ["Paid: {{ params.customer "]
    data[f"s-{notify}-c-to"] = ["not an address"]
    response = signed_in.post(reverse("workflow-edit", args=[stripe.name]), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(rf'id="s-{notify}-c-subject-error">unexpected end of template', html)
    assert re.search(rf"id=\"s-{notify}-c-to-error\">&#x27;not an address&#x27; is not a valid email", html)
    assert 'value="Paid: {{ params.customer "' in html
    assert "Not saved: 2 problems marked in red below." in html
    stripe.refresh_from_db()
    assert stripe.revision == 1


@pytest.mark.django_db
def test_two_people_saving_the_same_draft_get_a_conflict_not_a_silent_overwrite(client, signed_in, stripe,
                                                                                  django_user_model):
    """The second save is refused with who saved and when; their typing stays; they may overwrite on purpose."""
    mine = editor_form(signed_in, stripe)
    other = django_user_model.objects.create_user(username="grace", password=PASSWORD)
    theirs = dict(STRIPE, description="Grace's change")
    workflow_update(workflow=stripe, definition=theirs, revision=1, user=other)
    mine["description"] = ["Ada's change"]
    response = signed_in.post(reverse("workflow-edit", args=[stripe.name]), mine)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Not saved: someone else saved this workflow while you were editing it." in html
    assert "grace saved revision 2" in html
    assert "Ada&#x27;s change" in html
    stripe.refresh_from_db()
    assert stripe.definition["description"] == "Grace's change"
    overwrite = dict(mine, overwrite=["2"])
    assert signed_in.post(reverse("workflow-edit", args=[stripe.name]), overwrite).status_code == 302
    stripe.refresh_from_db()
    assert stripe.definition["description"] == "Ada's change" and stripe.revision == 3


@pytest.mark.django_db
def test_save_and_publish_makes_a_new_live_version(signed_in, stripe):
    data = editor_form(signed_in, stripe)
    response = signed_in.post(reverse("workflow-edit", args=[stripe.name]), dict(data, intent=["publish"]), follow=True)
    assert "Saved and published: version 1 is live." in response.content.decode()
    stripe.refresh_from_db()
    assert stripe.live_version.number == 1 and stripe.live_version.published_by.username == "ada"


@pytest.mark.django_db
def test_renaming_moves_the_editor_to_the_new_url(signed_in, stripe):
    data = editor_form(signed_in, stripe)
    data["name"] = ["stripe_payments"]
    response = signed_in.post(reverse("workflow-edit", args=[stripe.name]), data)
    assert response["Location"] == reverse("workflow-edit", args=["stripe_payments"])


# --- Checking as you type -------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_reports_errors_by_input_and_the_names_in_scope(signed_in, stripe):
    """The as-you-type endpoint answers with errors keyed by input name, and each step's names in scope."""
    data = editor_form(signed_in, stripe)
    find, activate, notify = data["steps"]
    data[f"s-{notify}-c-subject"] = ["Paid: {{ parms.customer }}"]
    response = signed_in.post(reverse("workflow-check", args=[stripe.name]), data)
    html = response.content.decode()
    payload = json.loads(re.search(r'<script id="check-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert payload["errors"] == {
        f"s-{notify}-c-subject": "unknown name parms; in scope: before, item, now, params, record, request, run, "
                                 "secrets, steps, workflow"
    }
    assert payload["scope"][find][:2] == ["params.type", "params.customer"]
    assert payload["scope"][notify][2:4] == ["steps.find", "steps.activate"]
    assert "1 problem to fix before saving" in html
    data[f"s-{notify}-c-subject"] = ["Paid: {{ params.customer }}"]
    html = signed_in.post(reverse("workflow-check", args=[stripe.name]), data).content.decode()
    assert "No problems found" in html


@pytest.mark.django_db
def test_new_step_cards_come_from_the_catalogue_with_a_unique_key(signed_in, stripe):
    data = editor_form(signed_in, stripe)
    html = signed_in.post(reverse("workflow-step-new", args=[stripe.name]), dict(data, action=["find_records"])).content.decode()
    assert 'value="find_records"' in html and "Find records" in html
    assert re.search(r'<label for="s-\w+-c-type">Type <span class="req"', html)
    assert 'list="datalist-data_types"' in html
    copy = signed_in.post(reverse("workflow-step-new", args=[stripe.name]),
                          dict(data, duplicate=[data["steps"][0]])).content.decode()
    assert 'value="find_copy"' in copy and 'value="{{ params.customer }}"' in copy
    bad = signed_in.post(reverse("workflow-step-new", args=[stripe.name]), dict(data, action=["rm_rf"]))
    assert bad.status_code == 400


# --- Test runs ------------------------------------------------------------------------------------


@pytest.fixture
def inline_runs(monkeypatch, django_capture_on_commit_callbacks):
    """Test runs execute inside the test's transaction instead of in a thread."""
    monkeypatch.setattr(testing, "start_run", testing.run_execute)
    return django_capture_on_commit_callbacks


@pytest.mark.django_db
def test_a_dry_test_run_shows_every_step_and_captures_the_email(signed_in, stripe, inline_runs):
    """Run test executes the form's draft: steps show their result, the email is shown but not sent."""
    data = editor_form(signed_in, stripe)
    data.update({"t-type": ["invoice.paid"], "t-customer": ["cus_1"], "t-dry-run": ["on"]})
    with inline_runs(execute=True):
        response = signed_in.post(reverse("workflow-test-run", args=[stripe.name]), data)
    run = WorkflowRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED and run.dry_run and run.version is None
    html = signed_in.get(reverse("workflow-run", args=[stripe.name, run.id]), HTTP_HX_REQUEST="true").content.decode()
    assert response.status_code == 200
    assert html.count('class="status status-succeeded"') == 4
    assert "Captured, not sent:" in html and "Email to sales@example.com: “Paid: cus_1”" in html
    assert mail.outbox == []
    assert "hx-trigger" not in html  # finished: the panel stops asking for itself


@pytest.mark.django_db
def test_a_skipped_step_says_why(signed_in, stripe, inline_runs):
    data = editor_form(signed_in, stripe)
    data.update({"t-type": ["invoice.created"], "t-customer": ["cus_1"]})
    del data["t-dry-run"]  # switched off: the email really goes out
    with inline_runs(execute=True):
        signed_in.post(reverse("workflow-test-run", args=[stripe.name]), data)
    run = WorkflowRun.objects.get()
    assert not run.dry_run
    html = signed_in.get(reverse("workflow-run", args=[stripe.name, run.id])).content.decode()
    assert "Skipped: only_when was false" in html
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_test_run_with_missing_parameters_runs_nothing_and_marks_them(signed_in, stripe, inline_runs):
    data = editor_form(signed_in, stripe)
    data.update({"t-type": [""], "t-customer": ["cus_1"]})
    html = signed_in.post(reverse("workflow-test-run", args=[stripe.name]), data).content.decode()
    assert "Some parameters are missing" in html
    assert re.search(r'id="t-type-error">required<', html)
    assert not WorkflowRun.objects.exists()


@pytest.mark.django_db
def test_test_run_of_a_broken_form_runs_nothing(signed_in, stripe, inline_runs):
    data = editor_form(signed_in, stripe)
    data[f"s-{data['steps'][2]}-c-subject"] = ["{{ oops"]
    html = signed_in.post(reverse("workflow-test-run", args=[stripe.name]), data).content.decode()
    assert "Fix the problems marked in the editor first" in html
    assert not WorkflowRun.objects.exists()


@pytest.mark.django_db
def test_an_unfinished_run_panel_keeps_polling(signed_in, stripe):
    run = WorkflowRun.objects.create(workflow=stripe, workflow_name=stripe.name, trigger="manual",
                                     draft_definition=stripe.definition)
    html = signed_in.get(reverse("workflow-run", args=[stripe.name, run.id]), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="load delay:500ms"' in html
    assert html.count("status-waiting") == 3
    assert signed_in.get(reverse("workflow-run", args=["other", run.id])).status_code == 404


# --- Versions -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_diffs_versions_and_restores_one_as_the_draft(signed_in, stripe, editor_user):
    workflow_publish(workflow=stripe, user=editor_user)
    workflow_update(workflow=stripe, definition=dict(STRIPE, description="Second"), user=editor_user)
    html = signed_in.get(reverse("workflow-versions", args=[stripe.name])).content.decode()
    assert "Version 1" in html and "ada" in html
    assert '<span class="diff-del">-  &quot;description&quot;: &quot;Mark the subscription paid and tell sales&quot;,</span>' in html
    assert '<span class="diff-add">+  &quot;description&quot;: &quot;Second&quot;,</span>' in html
    response = signed_in.post(reverse("workflow-version-restore", args=[stripe.name, 1]))
    assert response["Location"] == reverse("workflow-edit", args=[stripe.name])
    stripe.refresh_from_db()
    assert stripe.definition["description"] == STRIPE["description"]
    assert "No differences." in signed_in.get(reverse("workflow-versions", args=[stripe.name])).content.decode()


# --- Endpoint panel and Detect data ----------------------------------------------------------------


@pytest.mark.django_db
def test_endpoint_panel_has_the_urls_and_a_curl_example(signed_in, stripe):
    html = signed_in.get(reverse("workflow-edit", args=[stripe.name])).content.decode()
    assert '<code id="url-live">http://testserver/api/wf/process_stripe_payment</code>' in html
    assert "http://testserver/version-test/api/wf/process_stripe_payment" in html
    assert "Authorization: Bearer $ENGINE_ROOM_TOKEN" in html
    assert "-d &#x27;{&quot;type&quot;: &quot;example&quot;, &quot;customer&quot;: &quot;example&quot;}&#x27;" in html


@pytest.mark.django_db
def test_detect_data_waits_for_a_request_then_proposes_parameters(signed_in, stripe):
    from api_endpoints.services import sample_request_save

    url = reverse("workflow-detect", args=[stripe.name])
    html = signed_in.get(url, {"start": "1"}).content.decode()
    since = re.search(r"since=([^\"]+)\"", html).group(1)
    assert "Waiting for a request" in html
    sample_request_save(workflow=stripe, request={"body": {"amount": 5, "email": "a@b.co"}},
                        parameters=[{"name": "amount", "type": "integer", "list": False},
                                    {"name": "email", "type": "email", "list": False}])
    html = signed_in.get(url + "?since=" + since).content.decode()
    assert "Request received" in html
    assert "<code>amount</code>: integer" in html and "<code>email</code>: email" in html
    assert re.search(r'<template id="detected-rows">.*name="p-\w+-name" value="amount"', html, re.S)


# --- Viewers --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_sees_the_editor_without_controls_and_cannot_post(viewer, stripe):
    html = viewer.get(reverse("workflow-edit", args=[stripe.name])).content.decode()
    assert "You are a viewer" in html
    assert '<fieldset class="plain" disabled>' in html
    assert 'id="save-button"' not in html and "Add a step" not in html and "Run test" not in html
    data = submitted(html)
    for url in (reverse("workflow-edit", args=[stripe.name]), reverse("workflow-test-run", args=[stripe.name]),
                reverse("workflow-duplicate", args=[stripe.name]), reverse("workflow-delete", args=[stripe.name]),
                reverse("workflow-enabled", args=[stripe.name]), reverse("workflow-step-new", args=[stripe.name])):
        response = viewer.post(url, data)
        assert response.status_code == 403, url
        assert "This needs the <strong>editor</strong> role" in response.content.decode()
    response = viewer.post(reverse("workflows-page"), {"intent": "create", "name": "sneaky"})
    assert response.status_code == 403
    assert not Workflow.objects.filter(name="sneaky").exists()
    stripe.refresh_from_db()
    assert stripe.revision == 1
    listing = viewer.get(reverse("workflows-page")).content.decode()
    assert "New workflow" not in listing and "Duplicate" not in listing and "disabled" in listing


@pytest.mark.django_db
def test_unknown_workflows_are_404(signed_in):
    assert signed_in.get(reverse("workflow-edit", args=["nope"])).status_code == 404


@pytest.mark.django_db
def test_renaming_to_a_taken_name_is_an_error_on_the_name_field(signed_in, stripe, make_workflow):
    make_workflow("other")
    data = editor_form(signed_in, stripe)
    data["name"] = ["other"]
    response = signed_in.post(reverse("workflow-edit", args=[stripe.name]), data)
    assert response.status_code == 400
    assert re.search(r'id="name-error">&#x27;other&#x27; is taken', response.content.decode())


JUNK = [
    {},
    {"steps": ["zz"], "params": ["p1"], "revision": "x", "timeout_seconds": "soon", "methods": ["FETCH"]},
    {"steps": ["a1"], "s-a1-action": "http_request", "s-a1-c-headers-k": ["X"], "s-a1-c-headers-v": [],
     "s-a1-c-json": "{", "s-a1-retry_max_attempts": "many", "trigger_on": "record_created"},
    {"steps": ["../x", "a1", "a1"], "s-a1-action": "send_email", "s-a1-c-to": "[1, 2]", "overwrite": "nope"},
    {"duplicate": "nothere", "action": "find_records", "t-type": "x", "name": "Bad Name"},
]


@pytest.mark.parametrize("junk", JUNK)
@pytest.mark.django_db
def test_no_junk_post_makes_a_server_error(signed_in, stripe, junk, inline_runs):
    """Whatever a form posts, the pages answer with a page or a fragment that says what is wrong, never a 500."""
    for name in ("workflow-edit", "workflow-check", "workflow-step-new", "workflow-parameter-new",
                 "workflow-test-inputs", "workflow-test-run"):
        response = signed_in.post(reverse(name, args=[stripe.name]), junk)
        assert response.status_code < 500, name
    stripe.refresh_from_db()
    assert stripe.revision == 1


@pytest.mark.django_db
def test_odd_urls_and_files_are_not_server_errors(signed_in, stripe):
    assert signed_in.get(f"/workflows/{stripe.name}/runs/{'-' * 36}/").status_code == 404
    assert signed_in.post(reverse("workflow-version-restore", args=[stripe.name, 999999999])).status_code == 404
    for content in (b"[1, 2]", b'{"data_types": 5}', b'{"workflows": ["x"]}'):
        upload = io.BytesIO(content)
        upload.name = "odd.json"
        response = signed_in.post(reverse("workflows-page"), {"intent": "import", "file": upload})
        assert response.status_code == 400
