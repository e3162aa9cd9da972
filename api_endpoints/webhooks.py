"""The workflow endpoint: `/api/wf/<name>` (and its Bubble, draft and "Detect data" variants).

Checks run in DESIGN.md's order — body size (413), credentials (401), workflow (404/403), method
(405), content type (415), parameters (400) — with the rate limit (429) checked right after the
credentials are read, so that guessing tokens is limited too. Without valid credentials, an unknown,
disabled or unpublished workflow answers exactly like a token workflow (401), so names don't leak.
"""
import hashlib
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import JSONRenderer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from config.errors import ApplicationError, ExpressionError, ParameterError
from logs.models import RunTrigger
from workflows import definition as definitions
from workflows import expressions
from workflows.models import Workflow
from workflows.parameters import coerce_params, infer_parameters
from workflows.selectors import secret_reveal, version_definition
from workflows.services import run_enqueue

from . import inbound, responses
from .authentication import presented_token, request_token
from .permissions import EDITOR, role_at_least, user_role
from .selectors import (
    TokenInfo,
    cache_get_many_and_count,
    endpoint_workflow,
    idempotency_key_get,
    token_key,
    workflow_key,
)
from .services import TOKEN_TOUCH_SECONDS, idempotency_key_claim, sample_request_save, token_touch
from .signatures import DEFAULT_HMAC_HEADER, STRIPE_HEADER, hmac_valid, stripe_valid
from .throttling import PrincipalRateThrottle, over_limit, retry_after, webhook_throttle
from .tokens import token_digest, token_prefix
from .waiting import RunWait

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class EndpointError(Exception):
    """An answer other than a run: status, message, and the field errors or headers that go with it."""

    def __init__(self, status: int, detail: str, *, fields: dict | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.fields, self.headers = status, detail, fields or {}, headers or {}


class _Replay(Exception):
    """Raised inside the enqueue transaction to roll it back when an earlier call holds the key."""


class JsonOnly(BaseContentNegotiation):
    """Webhook callers send all sorts of Accept headers; the endpoint answers JSON regardless (no 406)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@dataclass
class Target:
    """The workflow a call reaches, and the definition (live version or draft) it runs."""

    workflow: Workflow
    definition: definitions.Definition


def _unauthorized(presented: bool) -> EndpointError:
    # The same words whatever the workflow is, so that an answer never tells which names exist.
    detail = "Invalid or revoked API token." if presented else "This endpoint needs an API token (Authorization: Bearer <token>)."
    return EndpointError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="engine-room"'})


def _no_workflow(name: str) -> EndpointError:
    return EndpointError(404, f"No enabled workflow named {name!r}.")


def check_body_size(request) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise EndpointError(400, "Invalid Content-Length header.") from None
    limit = settings.ENGINE_ROOM_MAX_BODY_BYTES
    if length > limit:
        raise EndpointError(413, f"The request body is {length} bytes; the limit is {limit} bytes.")


def prefetch_lookups(request, name: str) -> tuple[dict | None, tuple[str, int] | None]:
    """The cache entries of the call's token and workflow, and its count in its token's rate-limit window
    ((counter key, count), or None), in one round trip instead of four."""
    raw = presented_token(request)
    prefix = token_prefix(raw) if raw else None
    keys = ([token_key(prefix)] if prefix else []) + ([workflow_key(name)] if definitions.NAME_RE.match(name) else [])
    throttle = PrincipalRateThrottle()
    counter = throttle.token_window_key(token_digest(raw)) if prefix else None
    if not keys and counter is None:
        return {}, None
    values, count = cache_get_many_and_count(keys, counter, throttle.window_seconds)
    return values, ((counter, count) if count is not None else None)


def find_target(name: str, *, draft: bool, prefetched: dict | None = None) -> Target | None:
    """The enabled workflow and the definition a call would run, else None (unknown, disabled, unpublished)."""
    if not definitions.NAME_RE.match(name):
        return None  # not a possible name: no lookup at all (and no NUL characters sent to the database)
    workflow = endpoint_workflow(name=name, prefetched=prefetched)
    if workflow is None or not workflow.enabled:
        return None
    if draft:
        # The draft endpoint always reads the current draft (admin-only, so never the hot path).
        workflow = Workflow.objects.select_related("live_version").get(pk=workflow.pk)
        try:
            return Target(workflow, definitions.parse(workflow.definition))
        except ApplicationError:  # a draft saved before a validation rule existed: not callable
            logger.warning("Draft of %s does not parse", name, exc_info=True)
            return None
    if workflow.live_version_id is None:
        return None
    try:
        definition = version_definition(workflow.live_version_id)
    except ApplicationError:
        # A published version that no longer parses (an action removed from the catalogue, say):
        # not callable, and said loudly in the log rather than as a 500 to the caller.
        logger.error("Live version of %s does not parse", name, exc_info=True)
        return None
    # The live endpoint follows the published version; the workflow's `enabled` column (the draft's
    # switch) turns it off at once, without publishing.
    return Target(workflow, definition) if definition.enabled else None


class _EndpointApi(APIView):
    """What the workflow endpoints share: no DRF auth or throttling (they check in DESIGN's order), JSON out."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = JsonOnly
    # Documented per workflow by api_endpoints.openapi, not as one generic operation.
    schema = None
    style = responses.PLAIN
    draft = False

    def get(self, request, name):
        return self.call(request._request, name)

    post = put = patch = delete = options = head = get

    def perform_authentication(self, request):
        # Credentials are checked in run(), in DESIGN's order; DRF's own pass would also replace the
        # Django request's (lazy, session) user with AnonymousUser.
        pass

    @property
    def default_response_headers(self):
        # DRF would add Allow with every method of the class; a 405 sets the workflow's own.
        return {}

    def call(self, request, name):
        try:
            return self.run(request, name)
        except EndpointError as exc:
            return responses.error_response(self.style, exc.status, exc.detail, fields=exc.fields, headers=exc.headers)
        except inbound.InboundError as exc:
            return responses.error_response(self.style, exc.status, exc.message)
        except ApplicationError as exc:  # a service refused (e.g. the run could not be enqueued)
            return responses.error_response(self.style, exc.http_status, exc.message, fields=getattr(exc, "fields", None))
        except (OperationalError, InterfaceError):
            logger.exception("Database unavailable during a call of %s", name)
            return responses.error_response(
                self.style, 503, "The service is briefly unavailable; try again.", headers={"Retry-After": "5"}
            )

    def run(self, request, name):
        raise NotImplementedError

    def credentials(self, request, prefetched: dict | None = None,
                    counted: tuple[str, int] | None = None) -> tuple[bool, TokenInfo | None]:
        """Body size first (413), then the token, then the rate limit (429) for the token or the IP."""
        check_body_size(request)
        presented, token = request_token(request, prefetched, touch=False)
        throttle = webhook_throttle(request, token, counted)
        if token is not None:
            # A window of at least TOKEN_TOUCH_SECONDS records the use on its first call with no round trip;
            # a shorter one (or none counted) asks the cache, so a token is written at most once a minute.
            counted_window = throttle.count is not None and throttle.duration >= TOKEN_TOUCH_SECONDS
            token_touch(token_id=token.id, first_in_window=throttle.count == 1 if counted_window else None)
        if over_limit(throttle):
            raise EndpointError(
                429, "Too many requests; slow down.", headers={"Retry-After": str(retry_after(throttle))}
            )
        return presented, token


class WorkflowCallApi(_EndpointApi):
    """Run a workflow from its URL: parameters from the body or query string, answered per `response`."""

    # --- the checks, in order ---------------------------------------------------------------
    def run(self, request, name):
        prefetched, counted = prefetch_lookups(request, name)
        presented, token = self.credentials(request, prefetched, counted)
        target = find_target(name, draft=self.draft, prefetched=prefetched)
        raw_body = inbound.read_body(request)
        self.authorize(request, name, target, presented, token, raw_body)
        definition = target.definition
        if request.method not in definition.methods:
            raise EndpointError(
                405, f"Method {request.method} not allowed; this workflow takes {', '.join(definition.methods)}.",
                headers={"Allow": ", ".join(definition.methods)},
            )
        parsed = inbound.parse(request, raw_body)
        try:
            params = coerce_params(definition.parameters, parsed.raw, source=parsed.source)
        except ParameterError as exc:
            detail = "; ".join(f"{key}: {message}" for key, message in exc.fields.items())
            raise EndpointError(400, f"Invalid parameters: {detail}", fields=exc.fields) from None
        stored = inbound.stored_request(request, parsed, signature_header=definition.signature_header)
        key = self.idempotency_key(request, definition, params, stored)
        caller = token.caller if token is not None and (self.draft or definition.auth == "token") else _ip(request)
        if definition.response == "sync":
            # Subscribed before the run exists, the wait needs no first read of a new run's row.
            run_id = uuid.uuid4()
            with RunWait(run_id) as wait:
                run, replayed = self.enqueue(target, params, stored, caller, key, run_id=run_id)
                state = wait.result(run.id, timeout=definition.sync_wait_seconds, new=not replayed)
            answer = responses.sync_response(self.style, request, state)
        else:
            run, replayed = self.enqueue(target, params, stored, caller, key)
            answer = responses.queued_response(self.style, request, run.id)
        if replayed:
            answer[REPLAYED_HEADER] = "true"
        return answer

    def authorize(self, request, name, target, presented, token: TokenInfo | None, raw_body: bytes) -> None:
        """401 without valid credentials for the workflow's auth mode; then 404 or 403 for the workflow."""
        if self.draft:
            # /version-test/ runs the draft: an admin token always, and the signature as well.
            if token is None:
                raise _unauthorized(presented)
            if target is None:
                raise _no_workflow(name)
            if not token.admin:
                raise EndpointError(403, "The /version-test/ endpoints need an admin token.")
            self.verify_signature(request, target.definition, raw_body)
            return
        if target is None:
            raise _unauthorized(presented) if token is None else _no_workflow(name)
        auth = target.definition.auth
        if auth == "token":
            if token is None:
                raise _unauthorized(presented)
            if not token.allows(target.workflow.id):
                raise EndpointError(403, f"This token may not call {name!r}.")
        elif auth in ("hmac", "stripe"):
            # A token never replaces a signature.
            self.verify_signature(request, target.definition, raw_body)

    def verify_signature(self, request, definition, raw_body: bytes) -> None:
        if definition.auth not in ("hmac", "stripe"):
            return
        secret = secret_reveal(definition.signing_secret) if definition.signing_secret else None
        if not secret:
            logger.error("Workflow %s names signing secret %r, which does not exist",
                         definition.name, definition.signing_secret)
        if definition.auth == "hmac":
            header = definition.signature_header or DEFAULT_HMAC_HEADER
            valid = bool(secret) and hmac_valid(secret, raw_body, request.headers.get(header))
            what = f"a valid {header} signature"
        else:
            valid = bool(secret) and stripe_valid(
                secret, raw_body, request.headers.get(STRIPE_HEADER),
                tolerance=settings.ENGINE_ROOM_STRIPE_TOLERANCE_SECONDS,
            )
            what = f"a valid {STRIPE_HEADER} header (signed within the last {settings.ENGINE_ROOM_STRIPE_TOLERANCE_SECONDS} s)"
        if not valid:
            raise EndpointError(401, f"This endpoint needs {what}.")

    # --- idempotency and the run ------------------------------------------------------------
    def idempotency_key(self, request, definition, params: dict, stored: dict) -> str:
        """The call's key: the definition's expression, else the Idempotency-Key header, else a Stripe event id."""
        key = None
        if definition.idempotency_key:
            try:
                value = expressions.render(definition.idempotency_key, {"params": params, "request": stored})
            except ExpressionError as exc:
                raise EndpointError(
                    400, f"The idempotency key could not be computed: {exc.message}",
                    fields={"idempotency_key": exc.message},
                ) from None
            key = "" if value is None else str(value)
        if not key:
            key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if not key and definition.auth == "stripe" and isinstance(stored["body"], dict):
            # Stripe retries a delivery for three days with the same event id: a safe default key.
            event_id = stored["body"].get("id")
            key = event_id if isinstance(event_id, str) and event_id.startswith("evt_") else ""
        if not key:
            return ""
        if self.draft:
            key = f"version-test:{key}"
        if len(key) > 255:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return key

    def enqueue(self, target: Target, params: dict, stored: dict, caller: str, key: str, *, run_id=None):
        """A new queued run (`run_id` if given), or (replayed=True) the earlier run of the same key."""
        if not key:
            # Without a key the run row is the only write: one statement in autocommit, no BEGIN/COMMIT
            # (and, when it is the call's first, no health check before it: config.sql.insert_row), shared
            # with the calls this process takes at the same moment (config.sql.GroupInsert).
            run = run_enqueue(
                workflow=target.workflow, params=params, trigger=RunTrigger.WEBHOOK, draft=self.draft,
                request=stored, caller=caller, run_id=run_id, together=True,
            )
            return run, False
        try:
            with transaction.atomic():
                run = run_enqueue(
                    workflow=target.workflow, params=params, trigger=RunTrigger.WEBHOOK, draft=self.draft,
                    request=stored, caller=caller, idempotency_key=key, run_id=run_id,
                )
                if key and not idempotency_key_claim(workflow_id=target.workflow.id, key=key, run=run):
                    raise _Replay
            return run, False
        except _Replay:
            pass
        earlier = idempotency_key_get(workflow_id=target.workflow.id, key=key)
        if earlier is None or earlier.run is None:
            raise EndpointError(409, "A call with this idempotency key was made, but its run no longer exists.")
        return earlier.run, True


class WorkflowInitializeApi(_EndpointApi):
    """"Detect data": record one real request to a workflow and propose its parameters from it."""

    def run(self, request, name):
        presented, token = self.credentials(request)
        if token is None and not presented:
            # A signed-in editor's session works here too (never on the workflow endpoint itself).
            role = user_role(request.user)
            if role is None:
                raise _unauthorized(False)
            if not role_at_least(role, EDITOR):
                raise EndpointError(403, "Detect data needs the editor or admin role.")
            # A cookie rides along on a cross-site link (SameSite=Lax), and CSRF checks let safe methods
            # through: a session may replace the sample only by POST. Token callers keep every method.
            if request.method in SAFE_METHODS:
                raise EndpointError(405, "With a session, Detect data takes a POST.", headers={"Allow": "POST"})
            try:
                SessionAuthentication().enforce_csrf(self.request)
            except PermissionDenied as exc:
                raise EndpointError(403, str(exc.detail)) from None
        elif token is None:
            raise _unauthorized(True)
        elif not token.admin:
            raise EndpointError(403, "Detect data needs an admin token.")
        workflow = Workflow.objects.filter(name=name).first() if definitions.NAME_RE.match(name) else None
        if workflow is None:
            raise EndpointError(404, f"No workflow named {name!r}.")
        raw_body = inbound.read_body(request)
        parsed = inbound.parse(request, raw_body)
        stored = inbound.stored_request(request, parsed, signature_header=(workflow.definition or {}).get("signature_header"))
        sample = stored["body"] if stored["body"] is not None else stored["query"]
        proposed = infer_parameters(sample)
        for spec in proposed:
            if spec["name"] in parsed.files:
                spec["type"] = "file"
        sample_request_save(workflow=workflow, request=stored, parameters=proposed)
        body = {"workflow": workflow.name, "parameters": proposed, "request": stored}
        if self.style == responses.BUBBLE:
            return responses.json_response({"status": "success", "response": body}, 200)
        return responses.json_response(body, 200)


def _ip(request) -> str:
    return BaseThrottle().get_ident(request) or ""
