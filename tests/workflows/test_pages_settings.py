"""Settings pages: API tokens shown once, write-only secrets, people and roles; password reset by email."""
import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse

from api_endpoints.models import ApiToken
from api_endpoints.permissions import user_role
from api_endpoints.selectors import token_authenticate
from workflows.crypto import decrypt
from workflows.models import Secret

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_user(username="root", password=PASSWORD, email="root@example.com")
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(user)
    return client


@pytest.fixture
def editor_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="ed", password=PASSWORD))
    return client


@pytest.mark.django_db
def test_a_new_token_is_shown_once_then_only_its_prefix(admin):
    response = admin.post(reverse("settings-tokens"), {"name": "Stripe webhooks"})
    assert response.status_code == 201
    html = response.content.decode()
    value = re.search(r'<code id="token-value">(er_[a-z0-9]{8}_[A-Za-z0-9_-]{32})</code>', html).group(1)
    assert "shown this once and never again" in html
    assert token_authenticate(token=value) is not None
    listing = admin.get(reverse("settings-tokens")).content.decode()
    assert value not in listing
    assert f"<code>{value[:11]}_…</code>" in listing


@pytest.mark.django_db
def test_a_token_limited_to_workflows_and_revoking(admin, make_workflow):
    make_workflow("send_mail")
    admin.post(reverse("settings-tokens"), {"name": "Mailer", "workflows": ["send_mail"]})
    token = ApiToken.objects.get(name="Mailer")
    assert not token.admin and [w.name for w in token.workflows.all()] == ["send_mail"]
    assert "send_mail</td>" in admin.get(reverse("settings-tokens")).content.decode()
    response = admin.post(reverse("settings-token-revoke", args=[token.id]), follow=True)
    assert "is revoked; calls with it now get 401" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_a_token_without_a_name_is_refused_next_to_the_field(admin):
    response = admin.post(reverse("settings-tokens"), {"name": ""})
    assert response.status_code == 400
    assert re.search(r'id="token_name_error">This field is required', response.content.decode())
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_secret_values_go_in_and_never_come_out(admin, make_workflow):
    make_workflow("charge", steps=[{"key": "call", "action": "http_request",
                                    "config": {"url": "https://example.com", "headers": {"X": "{{ secrets.SHOP_KEY }}"}}}])
    response = admin.post(reverse("settings-secrets"), {"name": "SHOP_KEY", "value": "s3cr3t-value", "description": "Shop"})
    assert response["Location"] == reverse("settings-secrets")
    assert decrypt(Secret.objects.get(name="SHOP_KEY").ciphertext) == "s3cr3t-value"
    html = admin.get(reverse("settings-secrets")).content.decode()
    assert "s3cr3t-value" not in html and "<code>SHOP_KEY</code>" in html and "<td>charge</td>" in html
    admin.post(reverse("settings-secrets"), {"name": "SHOP_KEY", "value": "rotated"})
    assert decrypt(Secret.objects.get(name="SHOP_KEY").ciphertext) == "rotated"
    admin.post(reverse("settings-secret-delete", args=["SHOP_KEY"]))
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_a_bad_secret_name_is_refused(admin):
    response = admin.post(reverse("settings-secrets"), {"name": "1 bad", "value": "x"})
    assert response.status_code == 400
    assert "Start with a letter" in response.content.decode()


@pytest.mark.django_db
def test_admins_add_people_with_a_role_and_change_it(admin, django_user_model):
    response = admin.post(reverse("settings-users"), {"username": "vic", "email": "vic@example.com", "role": "viewer"})
    assert response["Location"] == reverse("settings-users")
    vic = django_user_model.objects.get(username="vic")
    assert user_role(vic) == "viewer" and not vic.has_usable_password()
    assert re.search(r"<th scope=\"row\">vic</th>\s*<td>vic@example.com</td>\s*<td>viewer", admin.get(reverse("settings-users")).content.decode())
    admin.post(reverse("settings-user", args=[vic.pk]), {"role": "editor", "active": "on"})
    assert user_role(vic) == "editor"
    admin.post(reverse("settings-user", args=[vic.pk]), {"role": "editor"})
    vic.refresh_from_db()
    assert not vic.is_active


@pytest.mark.django_db
def test_the_last_admin_cannot_be_demoted(admin, django_user_model):
    me = django_user_model.objects.get(username="root")
    response = admin.post(reverse("settings-user", args=[me.pk]), {"role": "editor", "active": "on"})
    assert response.status_code == 400
    assert "This is the last admin" in response.content.decode()
    assert user_role(me) == "admin"


@pytest.mark.django_db
def test_a_weak_password_for_a_new_person_is_refused(admin):
    response = admin.post(reverse("settings-users"), {"username": "amy", "role": "editor", "password": "123"})
    assert response.status_code == 400
    assert "This password is too short" in response.content.decode()


@pytest.mark.django_db
def test_editors_see_the_overview_but_not_the_admin_pages(editor_client):
    html = editor_client.get(reverse("settings-page")).content.decode()
    assert "<h1>Settings</h1>" in html and 'id="my-role">editor<' in html
    for name in ("settings-tokens", "settings-secrets", "settings-users"):
        assert editor_client.get(reverse(name)).status_code == 403
    assert editor_client.post(reverse("settings-tokens"), {"name": "mine"}).status_code == 403
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_password_reset_by_email(client, django_user_model):
    """Forgot password → email with a link → new password → sign in with it."""
    django_user_model.objects.create_user(username="ada", email="ada@example.com", password=PASSWORD)
    page = client.get(reverse("password_reset")).content.decode()
    assert "Reset your password" in page and '<label for="id_email">Email address</label>' in page
    response = client.post(reverse("password_reset"), {"email": "ada@example.com"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert mail.outbox[0].subject == "Reset your Engine Room password"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "a much longer passphrase 42",
                                                   "new_password2": "a much longer passphrase 42"}, follow=True)
    assert "Your new password is set." in done.content.decode()
    assert client.login(username="ada", password="a much longer passphrase 42")


@pytest.mark.django_db
def test_a_used_reset_link_says_so(client):
    html = client.get("/accounts/reset/MQ/bad-token/").content.decode()
    assert "This link does not work any more" in html
