"""Secret writes: values are encrypted before they reach the database and never returned."""
import re

from django.db import transaction

from config.errors import ValidationError
from workflows.crypto import encrypt
from workflows.models import Secret

SECRET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


@transaction.atomic
def secret_set(*, name: str, value: str, description: str = "") -> Secret:
    """Create or replace a secret's value."""
    errors = {}
    if not SECRET_NAME_RE.match(name or ""):
        errors["name"] = "must start with a letter and hold only letters, digits and underscores"
    if not isinstance(value, str) or not value:
        errors["value"] = "must be a non-empty string"
    if errors:
        raise ValidationError("Invalid secret.", fields=errors)
    secret, _ = Secret.objects.update_or_create(
        name=name, defaults={"ciphertext": encrypt(value), "description": description}
    )
    return secret


def secret_delete(*, secret: Secret) -> None:
    secret.delete()
