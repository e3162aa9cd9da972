"""Settings pages: API tokens (shown once), secrets (write-only) and people with their roles.

They live in `config` because they span apps — tokens belong to api_endpoints, secrets to workflows,
people to django.contrib.auth — and the site layer may depend on all of them. Changing anything
here needs the admin role; everyone signed in sees the overview and their own role.
"""
from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from api_endpoints.models import ApiToken
from api_endpoints.permissions import ADMIN, EDITOR, VIEWER, user_role
from api_endpoints.selectors import token_list as tokens_selector
from api_endpoints.services import token_create, token_revoke
from config.errors import ValidationError
from workflows.models import Secret, Workflow
from workflows.services import secret_delete, secret_set
from workflows.services.secrets import SECRET_NAME_RE
from workflows.views.access import page, role_required

ROLES = (ADMIN, EDITOR, VIEWER)
ROLE_HELP = {
    ADMIN: "Everything, including API tokens, secrets and people.",
    EDITOR: "Builds, tests and publishes workflows; changes data.",
    VIEWER: "Sees every page and every run, changes nothing.",
}


def _page(request, template, context, status=200):
    return page(request, template, context, section="settings", status=status)


@require_GET
def settings_home(request):
    """What can be set here, and the reader's own role."""
    return _page(request, "settings/home.html", {
        "my_role": user_role(request.user), "role_help": ROLE_HELP,
        "counts": {
            "tokens": ApiToken.objects.filter(revoked_at__isnull=True).count(),
            "secrets": Secret.objects.count(),
            "users": get_user_model().objects.filter(is_active=True).count(),
        },
    })


# --- API tokens --------------------------------------------------------------------------------------


class TokenForm(forms.Form):
    """A new token: a name to recognise it by, and optionally the only workflows it may call."""

    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “Stripe webhooks” or “Bubble app”.")
    workflows = forms.MultipleChoiceField(
        required=False,
        help_text="Leave empty for an admin token (every workflow and the management API); "
        "pick workflows to limit the token to calling just those.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflows"].choices = [(name, name) for name in Workflow.objects.values_list("name", flat=True)]


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, section="settings")
def token_list(request):
    """Tokens by prefix (never their value); POST makes one and shows its value this once."""
    form = TokenForm(request.POST or None, auto_id="token_%s")
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                new_token = token_create(
                    name=form.cleaned_data["name"], workflows=form.cleaned_data["workflows"], user=request.user
                )
            except ValidationError as exc:
                for key, message in exc.fields.items():
                    form.add_error(key if key in form.fields else None, message)
                status = 400
            else:
                # The value is in this response only: a redirect would have to keep it somewhere.
                form = TokenForm(auto_id="token_%s")
                status = 201
        else:
            status = 400
    return _page(request, "settings/tokens.html", {
        "tokens": tokens_selector().select_related("created_by"), "form": form, "new_token": new_token,
    }, status=status)


@require_POST
@role_required(ADMIN, section="settings")
def token_revoke_view(request, id):
    """Stop a token working at once (the row stays, for the record)."""
    token = ApiToken.objects.filter(id=id).first()
    if token is None:
        raise Http404("No such token.")
    token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” (er_{token.prefix}_…) is revoked; calls with it now get 401.")
    return redirect("settings-tokens")


# --- Secrets ---------------------------------------------------------------------------------------


class SecretForm(forms.Form):
    """A secret's name and value; the value goes in and never comes out."""

    name = forms.RegexField(
        regex=SECRET_NAME_RE, max_length=63,
        help_text="Letters, digits and underscores, e.g. STRIPE_WEBHOOK_SECRET. Expressions read it as "
        "{{ secrets.NAME }}.",
        error_messages={"invalid": "Start with a letter; use only letters, digits and underscores."},
    )
    value = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again. Saving an existing name replaces its value.",
    )
    description = forms.CharField(required=False, max_length=200)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, section="settings")
def secret_list(request):
    """Secrets by name, with where they are used; POST sets one (new or replaced)."""
    form = SecretForm(request.POST or None, auto_id="secret_%s")
    if request.method == "POST" and form.is_valid():
        try:
            secret = secret_set(**form.cleaned_data)
        except ValidationError as exc:
            for key, message in exc.fields.items():
                form.add_error(key if key in form.fields else None, message)
        else:
            messages.success(request, f"Secret {secret.name} saved. Its value will not be shown again.")
            return redirect("settings-secrets")
    secrets = list(Secret.objects.defer("ciphertext").order_by("name"))
    used = _secret_uses([secret.name for secret in secrets])
    return _page(request, "settings/secrets.html", {
        "form": form, "secrets": [(secret, used.get(secret.name, [])) for secret in secrets],
    }, status=400 if form.errors else 200)


def _secret_uses(names: list[str]) -> dict[str, list[str]]:
    """The workflows whose draft mentions each secret (as signing secret or secrets.NAME)."""
    uses: dict[str, list[str]] = {}
    for workflow in Workflow.objects.only("name", "definition"):
        text = str(workflow.definition)
        for name in names:
            if f"secrets.{name}" in text or f"'signing_secret': '{name}'" in text:
                uses.setdefault(name, []).append(workflow.name)
    return uses


@require_POST
@role_required(ADMIN, section="settings")
def secret_delete_view(request, secret):
    """Delete a secret; workflows that read it fail at that step until it exists again."""
    found = Secret.objects.filter(name=secret).first()
    if found is None:
        raise Http404("No such secret.")
    secret_delete(secret=found)
    messages.success(request, f"Secret {secret} deleted.")
    return redirect("settings-secrets")


# --- People and roles ----------------------------------------------------------------------------------


def role_set(*, user, role: str) -> None:
    """Give a person exactly one role group (staff and superusers are admins whatever their groups)."""
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    user.groups.remove(*groups.values())
    user.groups.add(groups[role])


def _other_admins(user) -> bool:
    User = get_user_model()
    return any(user_role(other) == ADMIN for other in User.objects.filter(is_active=True).exclude(pk=user.pk))


class UserCreateForm(forms.Form):
    """A person who can sign in, with a role; without a password they set one through “Forgot password”."""

    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False, help_text="Needed to reset a forgotten password.")
    role = forms.ChoiceField(choices=[(role, role.capitalize()) for role in ROLES], initial=EDITOR)
    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Optional: leave empty and they choose one with “Forgot your password?”.",
    )

    def clean_username(self):
        username = self.cleaned_data["username"]
        User = get_user_model()
        User.username_validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("Someone already has this username.")
        return username

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            user = get_user_model()(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password, user)
            except DjangoValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class UserRoleForm(forms.Form):
    """A person's role and whether they can sign in."""

    role = forms.ChoiceField(choices=[(role, role.capitalize()) for role in ROLES])
    active = forms.BooleanField(required=False, help_text="Untick to stop them signing in (their history stays).")


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, section="settings")
def user_list(request):
    """Everyone who can sign in, with their role; POST adds a person."""
    form = UserCreateForm(request.POST or None, auto_id="user_%s")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=data["username"], email=data["email"], password=data["password"] or None
            )
            role_set(user=user, role=data["role"])
        messages.success(request, f"{user.username} can sign in now, as {data['role']}.")
        return redirect("settings-users")
    people = [(person, user_role(person)) for person in get_user_model().objects.order_by("username")]
    return _page(request, "settings/users.html", {"form": form, "people": people, "role_help": ROLE_HELP},
                 status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, section="settings")
def user_edit(request, id):
    """Change a person's role or switch their sign-in off; the last admin cannot be demoted."""
    person = get_user_model().objects.filter(pk=id).first()
    if person is None:
        raise Http404("No such person.")
    role = user_role(person)
    fixed = person.is_superuser or person.is_staff
    form = UserRoleForm(request.POST or None, initial={"role": role, "active": person.is_active}, auto_id="person_%s")
    if request.method == "POST" and form.is_valid():
        new_role, active = form.cleaned_data["role"], form.cleaned_data["active"]
        losing_admin = role == ADMIN and (new_role != ADMIN or not active)
        if fixed and new_role != ADMIN:
            form.add_error("role", "Staff and superuser accounts are always admins; change that in the Django admin.")
        elif losing_admin and not _other_admins(person):
            form.add_error(None, "This is the last admin: make someone else admin first.")
        elif person.pk == request.user.pk and not active:
            form.add_error("active", "You cannot switch off your own sign-in.")
        else:
            with transaction.atomic():
                if not fixed:
                    role_set(user=person, role=new_role)
                if person.is_active != active:
                    person.is_active = active
                    person.save(update_fields=["is_active"])
            messages.success(request, f"{person.username} is now {new_role}{'' if active else ' (signed out for good)'}.")
            return redirect("settings-users")
    return _page(request, "settings/user.html", {"person": person, "role": role, "form": form, "fixed": fixed,
                                                  "role_help": ROLE_HELP}, status=400 if form.errors else 200)
