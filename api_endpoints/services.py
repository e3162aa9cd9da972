"""Writes of the API layer: tokens, idempotency keys and "Detect data" samples."""
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import ValidationError
from workflows.models import Workflow

from .models import ApiToken, IdempotencyKey, SampleRequest
from .tokens import token_digest, token_generate

# last_used_at is written at most this often per token, so that a busy token is not a write per call.
TOKEN_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class NewToken:
    """A token just made: the row, and the clear value that is shown this once."""

    token: ApiToken
    value: str


@transaction.atomic
def token_create(*, name: str, workflows: list[str] | None = None, user=None) -> NewToken:
    """An admin token (no workflows) or one limited to the named workflows; the value is returned once."""
    errors = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = "must be 1 to 100 characters"
    names = list(dict.fromkeys(workflows or []))
    found = {workflow.name: workflow for workflow in Workflow.objects.filter(name__in=names)}
    unknown = [item for item in names if item not in found]
    if unknown:
        errors["workflows"] = f"no workflow named {', '.join(map(repr, unknown))}"
    if errors:
        raise ValidationError("Invalid token.", fields=errors)
    for _ in range(5):
        value, prefix = token_generate()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    name=name, prefix=prefix, digest=token_digest(value), admin=not names, created_by=user
                )
            break
        except IntegrityError:  # a prefix collision (36^8 prefixes): draw again
            continue
    else:  # pragma: no cover - five collisions in a row do not happen
        raise ValidationError("Could not make a unique token; try again.")
    if names:
        token.workflows.set(found.values())
    return NewToken(token=token, value=value)


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Stop a token working at once; the row stays, for the audit trail."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_touch(*, token_id: int, first_in_window: bool | None = None) -> None:
    """Record that a token was used: on the first call of each rate-limit window when the caller counted
    the call (first_in_window), else at most once per TOKEN_TOUCH_SECONDS."""
    due = first_in_window
    if due is None:
        try:
            due = cache.add(f"api:tok-used:{token_id}", 1, TOKEN_TOUCH_SECONDS)
        except Exception:  # without the cache, write every time rather than never
            due = True
    if due:
        ApiToken.objects.filter(id=token_id).update(last_used_at=timezone.now())


def idempotency_window() -> timedelta:
    return timedelta(hours=settings.ENGINE_ROOM_IDEMPOTENCY_HOURS)


def idempotency_key_claim(*, workflow_id: int, key: str, run) -> bool:
    """Tie `key` to a new run inside the caller's transaction; False when an earlier live claim holds it.

    The unique constraint decides races: on PostgreSQL a second insert of the same key waits for the
    first transaction and then fails, so two simultaneous deliveries start one run. A caller that
    gets False rolls its transaction back (the run it wrote goes with it) and replays the first run.
    """
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(workflow_id=workflow_id, key=key, run=run)
        return True
    except IntegrityError:
        pass
    # A claim older than the window is taken over, conditionally, so that only one caller gets it.
    cutoff = timezone.now() - idempotency_window()
    return bool(
        IdempotencyKey.objects.filter(workflow_id=workflow_id, key=key, created__lt=cutoff).update(
            created=timezone.now(), run=run
        )
    )


def idempotency_keys_prune() -> int:
    """Delete keys older than the window; returns how many."""
    cutoff = timezone.now() - idempotency_window()
    deleted, _ = IdempotencyKey.objects.filter(created__lt=cutoff).delete()
    return deleted


def sample_request_save(*, workflow: Workflow, request: dict, parameters: list[dict]) -> SampleRequest:
    """Keep the latest "Detect data" request of a workflow, with the parameters proposed from it."""
    sample, _ = SampleRequest.objects.update_or_create(
        workflow=workflow, defaults={"request": request, "parameters": parameters}
    )
    return sample
