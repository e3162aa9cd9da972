"""The site's pages: login required everywhere, the navigation, logging in and out, the admin."""
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from datastore.models import DataType, Record
from logs.models import StepRun, WorkflowRun
from workflows.models import Secret, Workflow, WorkflowVersion

PAGES = ["home", "workflows-page", "data-page", "scheduler-page", "logs-page", "settings-page"]
SECTIONS = {
    "workflows-page": "Workflows",
    "data-page": "Data",
    "scheduler-page": "Scheduler",
    "logs-page": "Logs",
    "settings-page": "Settings",
}
PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=PASSWORD, first_name="Ada", last_name="Lovelace"
    )


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitor_is_sent_to_login(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_admin_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_login_page_has_labelled_fields(client):
    response = client.get(reverse("login"))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    # No navigation for someone who is not signed in.
    assert reverse("workflows-page") not in html


@pytest.mark.django_db
def test_login_through_the_form_lands_on_the_page_asked_for(client, user):
    response = client.post(
        reverse("login"),
        {"username": "ada", "password": PASSWORD, "next": reverse("logs-page")},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("logs-page")
    assert client.get(reverse("logs-page")).status_code == 200


@pytest.mark.django_db
def test_wrong_password_says_so(client, user):
    response = client.post(reverse("login"), {"username": "ada", "password": "nope"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html
    assert "correct username and password" in html
    assert 'aria-invalid="true"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_signed_in_user_sees_the_navigation(signed_in, name):
    response = signed_in.get(reverse(name))
    html = response.content.decode()
    assert response.status_code == 200
    nav = re.search(r'<nav[^>]*aria-label="Main".*?</nav>', html, re.S).group(0)
    for page, label in SECTIONS.items():
        assert f'href="{reverse(page)}"' in nav
        assert f">{label}</a>" in nav
    assert "Ada Lovelace" in nav
    assert f'action="{reverse("logout")}"' in nav
    assert "csrfmiddlewaretoken" in nav


@pytest.mark.django_db
@pytest.mark.parametrize("name, heading", SECTIONS.items())
def test_section_page_has_its_heading_and_marks_the_nav(signed_in, name, heading):
    html = signed_in.get(reverse(name)).content.decode()
    assert f"<h1>{heading}</h1>" in html
    assert f'href="{reverse(name)}" aria-current="page">{heading}</a>' in html


@pytest.mark.django_db
def test_home_says_what_engine_room_is_and_links_each_section(signed_in):
    html = signed_in.get(reverse("home")).content.decode()
    assert "backend workflows" in html
    main = re.search(r"<main.*?</main>", html, re.S).group(0)
    for page in SECTIONS:
        assert f'href="{reverse(page)}"' in main


@pytest.mark.django_db
def test_logout_is_a_post_that_ends_the_session(signed_in):
    assert signed_in.get(reverse("logout")).status_code == 405
    response = signed_in.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert signed_in.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_logout_needs_the_csrf_token(client, user):
    client = type(client)(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("logout")).status_code == 403
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_htmx_requests_carry_the_csrf_token(signed_in):
    html = signed_in.get(reverse("home")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert f"""hx-headers='{{"X-CSRFToken": "{token}"}}'""" in html


@pytest.mark.django_db
def test_layout_assets_are_served_locally(signed_in):
    """Every stylesheet and script of the layout comes from our static files, none from a CDN."""
    html = signed_in.get(reverse("home")).content.decode()
    urls = re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', html)
    assert {"/static/vendor/pico/pico.min.css", "/static/vendor/htmx/htmx.min.js"} <= set(urls)
    for url in urls:
        assert url.startswith("/static/"), url
        path = url.removeprefix("/static/")
        assert finders.find(path), f"{path} is missing: run `npm ci && node scripts/copy_assets.mjs`"


# --- Admin ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD))
    return client


@pytest.fixture
def one_of_each(db):
    data_type = DataType.objects.create(name="lead", fields=[{"name": "email", "type": "email"}])
    record = Record.objects.create(data_type=data_type, data={"email": "a@example.com"})
    workflow = Workflow.objects.create(name="notify", definition={"format": 1, "name": "notify", "steps": []})
    version = WorkflowVersion.objects.create(workflow=workflow, number=1, definition=workflow.definition)
    secret = Secret.objects.create(name="STRIPE_KEY", ciphertext=b"gAAAA-very-secret-ciphertext", description="Stripe")
    run = WorkflowRun.objects.create(workflow=workflow, workflow_name="notify", version=version, trigger="manual")
    step = StepRun.objects.create(
        run=run, index=0, key="send", action="send_email", status="succeeded", started_at=run.created,
        input={"to": "a@example.com"},
    )
    return [data_type, record, workflow, version, secret, run, step]


@pytest.mark.django_db
def test_admin_lists_and_shows_every_model(admin_signed_in, one_of_each):
    for obj in one_of_each:
        opts = obj._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert admin_signed_in.get(changelist).status_code == 200, changelist
        assert admin_signed_in.get(changelist, {"q": "a"}).status_code == 200, changelist
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        response = admin_signed_in.get(change)
        assert response.status_code == 200, change
        # View-only: no form to save, and no way to add.
        assert 'name="_save"' not in response.content.decode(), change
        assert admin_signed_in.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403


@pytest.mark.django_db
def test_admin_run_page_shows_its_steps(admin_signed_in, one_of_each):
    run = one_of_each[5]
    html = admin_signed_in.get(reverse("admin:logs_workflowrun_change", args=[run.pk])).content.decode()
    assert "send_email" in html


@pytest.mark.django_db
def test_admin_never_shows_a_secret_value(admin_signed_in, one_of_each):
    secret = one_of_each[4]
    for url in (
        reverse("admin:workflows_secret_changelist"),
        reverse("admin:workflows_secret_change", args=[secret.pk]),
    ):
        html = admin_signed_in.get(url).content.decode()
        assert "STRIPE_KEY" in html
        assert "very-secret" not in html
        assert "ciphertext" not in html.lower()
