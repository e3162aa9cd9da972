"""Reads of the API layer: the hot-path lookups (cached, invalidated by signals) and the run queries."""
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet

from config.cache import get_many_and_count
from config.errors import NotFoundError
from logs.models import WorkflowRun
from workflows.models import Secret, Workflow

from .models import ApiToken, IdempotencyKey
from .tokens import token_digest, token_prefix

logger = logging.getLogger(__name__)

# A safety net only: saves and deletes invalidate these entries (api_endpoints.signals).
LOOKUP_TTL_SECONDS = 300
_MISSING = "missing"


def workflow_key(name: str) -> str:
    return f"api:wf:{name}"


def workflow_name_key(workflow_id: int) -> str:
    return f"api:wf-name:{workflow_id}"


def token_key(prefix: str) -> str:
    return f"api:tok:{prefix}"


def cache_get(key: str):
    """A cached value, or None when absent or when the cache is down (caches fail open)."""
    try:
        return cache.get(key)
    except Exception:  # any cache backend error: fall back to the database
        logger.warning("Cache unavailable; reading %s from the database", key, exc_info=True)
        return None


def cache_get_many_and_count(keys: list[str], counter: str | None, timeout: int) -> tuple[dict | None, int | None]:
    """Several cached values (missing keys absent) and one more on a rate-limit counter (None: none), in one
    round trip; (None, None) when the cache is down."""
    try:
        return get_many_and_count(keys, counter, timeout)
    except Exception:  # any cache backend error: each lookup then falls back on its own
        logger.warning("Cache unavailable; reading %s from the database", keys, exc_info=True)
        return None, None


def _cached(key: str, prefetched: dict | None):
    return prefetched.get(key) if prefetched is not None else cache_get(key)


def cache_set_many(values: dict, timeout: int = LOOKUP_TTL_SECONDS) -> None:
    try:
        cache.set_many(values, timeout)
    except Exception:  # an unavailable cache only costs the next request a query
        logger.warning("Cache unavailable; not caching %s", list(values), exc_info=True)


def cache_delete_many(keys: list[str]) -> None:
    try:
        cache.delete_many(keys)
    except Exception:  # entries expire by themselves (LOOKUP_TTL_SECONDS)
        logger.warning("Cache unavailable; could not invalidate %s", keys, exc_info=True)


# --- The workflow behind an endpoint ----------------------------------------------------------


def endpoint_workflow(*, name: str, prefetched: dict | None = None) -> Workflow | None:
    """The workflow named in a webhook URL, with its live version, or None; cached so a call costs no query.

    The draft `definition` is deferred: live calls run the published version, whose parsed definition
    `workflows.selectors.version_definition` caches per process. `prefetched`: the cache entries a caller
    already read in one round trip (`cache_get_many_and_count`).
    """
    cached = _cached(workflow_key(name), prefetched)
    if cached == _MISSING:
        return None
    if isinstance(cached, Workflow):
        return cached
    workflow = (
        Workflow.objects.select_related("live_version")
        .defer("definition", "live_version__definition")
        .filter(name=name)
        .first()
    )
    if workflow is None:
        # Unknown names are cached too, so a flood of made-up names costs no queries; creating a
        # workflow invalidates its name.
        cache_set_many({workflow_key(name): _MISSING}, 60)
    else:
        cache_set_many({workflow_key(name): workflow, workflow_name_key(workflow.id): name})
    return workflow


# --- Tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    """What a request's token may do, as cached for the hot path (no model instance, no queries)."""

    id: int
    name: str
    admin: bool
    workflow_ids: frozenset[int]
    digest: str

    def allows(self, workflow_id: int) -> bool:
        return self.admin or workflow_id in self.workflow_ids

    @property
    def caller(self) -> str:
        return f"token:{self.name}"


def token_authenticate(*, token: str, prefetched: dict | None = None) -> TokenInfo | None:
    """The active token matching `token`, or None; the prefix finds it, a constant-time compare checks it."""
    prefix = token_prefix(token)
    if prefix is None:
        return None
    info = _cached(token_key(prefix), prefetched)
    if info == _MISSING:
        return None
    if not isinstance(info, TokenInfo):
        row = ApiToken.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
        if row is None:
            cache_set_many({token_key(prefix): _MISSING}, 60)
            return None
        ids = frozenset() if row.admin else frozenset(row.workflows.values_list("id", flat=True))
        info = TokenInfo(id=row.id, name=row.name, admin=row.admin, workflow_ids=ids, digest=row.digest)
        cache_set_many({token_key(prefix): info})
    if not hmac.compare_digest(info.digest, token_digest(token)):
        return None
    return info


def token_list() -> QuerySet[ApiToken]:
    return ApiToken.objects.prefetch_related("workflows").order_by("-created")


def token_get(*, id) -> ApiToken:
    try:
        number = int(str(id))
        if not 0 < number < 2**63:
            raise ValueError(id)
        return ApiToken.objects.prefetch_related("workflows").get(id=number)
    except (ApiToken.DoesNotExist, ValueError):
        raise NotFoundError(f"No API token with id {str(id)!r}.") from None


# --- Secrets (metadata only; values are revealed by workflows.selectors.secret_reveal) -------------


def secret_get(*, name: str) -> Secret:
    secret = Secret.objects.defer("ciphertext").filter(name=name).first()
    if secret is None:
        raise NotFoundError(f"No secret named {name!r}.")
    return secret


# --- Idempotency ------------------------------------------------------------------------------


def idempotency_key_get(*, workflow_id: int, key: str) -> IdempotencyKey | None:
    return IdempotencyKey.objects.select_related("run").filter(workflow_id=workflow_id, key=key).first()


# --- Runs -------------------------------------------------------------------------------------


def run_list(
    *,
    workflow: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    token: TokenInfo | None = None,
) -> QuerySet[WorkflowRun]:
    """Runs, newest first, filtered; a limited token sees only the runs of its workflows."""
    runs = WorkflowRun.objects.select_related("version").order_by("-created")
    if workflow:
        runs = runs.filter(workflow_name=workflow)
    if status:
        runs = runs.filter(status=status)
    if trigger:
        runs = runs.filter(trigger=trigger)
    if created_after:
        runs = runs.filter(created__gte=created_after)
    if created_before:
        runs = runs.filter(created__lt=created_before)
    if token is not None and not token.admin:
        runs = runs.filter(workflow_id__in=token.workflow_ids)
    return runs


def run_get(*, id, token: TokenInfo | None = None) -> WorkflowRun:
    """One run with its steps; a limited token gets NotFoundError for another workflow's run."""
    try:
        run = WorkflowRun.objects.select_related("version").prefetch_related("steps").get(id=uuid.UUID(str(id)))
    except (ValueError, WorkflowRun.DoesNotExist):
        raise NotFoundError(f"No run with id {str(id)!r}.") from None
    if token is not None and not token.allows(run.workflow_id):
        raise NotFoundError(f"No run with id {str(id)!r}.")
    return run
