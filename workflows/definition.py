"""The workflow definition format: one JSON document, validated whole, parsed into typed values."""
import re
from dataclasses import dataclass, field
from typing import Any

from config.errors import DefinitionError

FORMAT = 1
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
AUTH_MODES = ("token", "public", "hmac", "stripe")
RESPONSE_MODES = ("async", "sync")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ON_ERROR = ("fail", "continue")
TRIGGER_EVENTS = ("record_created", "record_updated", "record_deleted")

DEFAULTS: dict[str, Any] = {
    "format": FORMAT,
    "description": "",
    "enabled": True,
    "auth": "token",
    "response": "async",
    "methods": ["POST"],
    "timeout_seconds": 300,
    "sync_wait_seconds": 30,
    "retry": {"max_attempts": 1, "backoff_seconds": 5},
    "on_error": "fail",
    "only_when": None,
    "trigger": None,
    "idempotency_key": None,
    "on_failure": None,
    "max_concurrency": None,
    "signing_secret": None,
    "signature_header": None,
    "parameters": [],
    "steps": [],
}
TOP_LEVEL_KEYS = frozenset(DEFAULTS) | {"name"}
PARAMETER_KEYS = frozenset({"name", "type", "list", "required", "default", "description"})
STEP_KEYS = frozenset({"key", "action", "config", "only_when", "retry", "on_error", "description"})
RETRY_KEYS = frozenset({"max_attempts", "backoff_seconds"})
# Names an expression may use; anything else is most likely a typo.
SCOPE_NAMES = frozenset(
    {"params", "steps", "run", "workflow", "now", "request", "secrets", "record", "before", "item"}
)


@dataclass(frozen=True)
class Retry:
    """How many times a step is attempted, and the wait between attempts (doubling each time)."""

    max_attempts: int = 1
    backoff_seconds: float = 5


@dataclass(frozen=True)
class Parameter:
    """One typed workflow parameter."""

    name: str
    type: str
    list: bool = False
    required: bool = False
    default: Any = None
    description: str = ""

    @property
    def record_type(self) -> str | None:
        return self.type.split(":", 1)[1] if self.type.startswith("record:") else None


@dataclass(frozen=True)
class Step:
    """One action of a workflow, with its raw (unrendered) config."""

    index: int
    key: str
    action: str
    config: dict
    only_when: str | None = None
    retry: Retry | None = None
    on_error: str = "fail"
    description: str = ""


@dataclass(frozen=True)
class Definition:
    """A whole parsed workflow definition; `document` is the normalised JSON it came from."""

    name: str
    document: dict
    parameters: tuple[Parameter, ...]
    steps: tuple[Step, ...]
    retry: Retry = field(default_factory=Retry)

    def __getattr__(self, key):
        # The plain settings (auth, response, timeout_seconds, …) read straight from the document.
        try:
            return self.__dict__["document"][key]
        except KeyError:
            raise AttributeError(key) from None

    def step_retry(self, step: Step) -> Retry:
        return step.retry or self.retry


def _is_int(value, minimum=None, maximum=None) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _check_expression(errors: dict, path: str, value, known_steps: set[str] | None = None) -> None:
    """Record syntax errors, unknown names and references to later steps in every string of value."""
    from workflows import expressions

    if isinstance(value, dict):
        for key, item in value.items():
            _check_expression(errors, f"{path}.{key}", item, known_steps)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_expression(errors, f"{path}[{index}]", item, known_steps)
    elif expressions.is_expression(value):
        problem = expressions.check(value)
        if problem:
            errors[path] = problem
            return
        unknown = expressions.names_used(value) - SCOPE_NAMES
        if unknown:
            errors[path] = f"unknown name {', '.join(sorted(unknown))}; in scope: {', '.join(sorted(SCOPE_NAMES))}"
        elif known_steps is not None:
            later = expressions.step_keys_used(value) - known_steps
            if later:
                errors[path] = f"steps.{sorted(later)[0]} is not an earlier step"


def _parse_retry(errors: dict, path: str, raw) -> Retry | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors[path] = "must be an object with max_attempts and backoff_seconds"
        return None
    unknown = set(raw) - RETRY_KEYS
    if unknown:
        errors[path] = f"unknown key(s): {', '.join(sorted(unknown))}"
    attempts = raw.get("max_attempts", 1)
    backoff = raw.get("backoff_seconds", 5)
    if not _is_int(attempts, 1, 25):
        errors[f"{path}.max_attempts"] = "must be an integer from 1 to 25"
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not 0 <= backoff <= 86400:
        errors[f"{path}.backoff_seconds"] = "must be a number of seconds from 0 to 86400"
    return Retry(max_attempts=attempts, backoff_seconds=backoff) if not any(k.startswith(path) for k in errors) else None


def _parse_parameters(errors: dict, raw) -> list[Parameter]:
    from datastore.types import validate_field_spec

    if not isinstance(raw, list):
        errors["parameters"] = "must be a list"
        return []
    parameters, seen = [], set()
    for index, spec in enumerate(raw):
        path = f"parameters[{index}]"
        if not isinstance(spec, dict):
            errors[path] = "must be an object"
            continue
        unknown = set(spec) - PARAMETER_KEYS
        if unknown:
            errors[path] = f"unknown key(s): {', '.join(sorted(unknown))}"
        for key, message in validate_field_spec({k: v for k, v in spec.items() if k != "default"}).items():
            errors[f"{path}.{key}"] = message
        name = spec.get("name")
        if name in seen:
            errors[f"{path}.name"] = f"duplicate parameter name {name!r}"
        seen.add(name)
        if not any(key.startswith(path) for key in errors):
            parameters.append(
                Parameter(
                    name=name,
                    type=spec["type"],
                    list=bool(spec.get("list", False)),
                    required=bool(spec.get("required", False)),
                    default=spec.get("default"),
                    description=spec.get("description") or "",
                )
            )
    return parameters


def _parse_steps(errors: dict, raw, max_steps: int) -> list[Step]:
    from workflows.actions import registry

    if not isinstance(raw, list):
        errors["steps"] = "must be a list"
        return []
    if len(raw) > max_steps:
        errors["steps"] = f"at most {max_steps} steps (ENGINE_ROOM_MAX_STEPS), got {len(raw)}"
        return []
    steps, keys = [], set()
    for index, spec in enumerate(raw):
        path = f"steps[{index}]"
        if not isinstance(spec, dict):
            errors[path] = "must be an object"
            continue
        unknown = set(spec) - STEP_KEYS
        if unknown:
            errors[path] = f"unknown key(s): {', '.join(sorted(unknown))}"
        key = spec.get("key") or f"step_{index + 1}"
        if not isinstance(key, str) or not NAME_RE.match(key):
            errors[f"{path}.key"] = "must match ^[a-z][a-z0-9_]{0,62}$"
        elif key in keys:
            errors[f"{path}.key"] = f"duplicate step key {key!r}"
        action_type = spec.get("action")
        action = registry.get(action_type) if isinstance(action_type, str) else None
        if action is None:
            errors[f"{path}.action"] = f"unknown action {action_type!r}"
        config = spec.get("config", {})
        if config is None:
            config = {}
        if not isinstance(config, dict):
            errors[f"{path}.config"] = "must be an object"
        elif action is not None:
            for field_path, message in action.validate_definition(config).items():
                errors[f"{path}.config.{field_path}"] = message
            _check_expression(errors, f"{path}.config", config, keys)
        only_when = spec.get("only_when")
        if only_when is not None and not isinstance(only_when, str):
            errors[f"{path}.only_when"] = "must be an expression string or null"
        elif only_when:
            _check_expression(errors, f"{path}.only_when", only_when, keys)
        on_error = spec.get("on_error", "fail")
        if on_error not in ON_ERROR:
            errors[f"{path}.on_error"] = f"must be one of {', '.join(ON_ERROR)}"
        retry = _parse_retry(errors, f"{path}.retry", spec.get("retry"))
        keys.add(key)
        if not any(k.startswith(path) for k in errors):
            steps.append(
                Step(
                    index=index,
                    key=key,
                    action=action_type,
                    config=config,
                    only_when=only_when or None,
                    retry=retry,
                    on_error=on_error,
                    description=spec.get("description") or "",
                )
            )
    return steps


def _check_settings(errors: dict, doc: dict) -> None:
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors["name"] = "must match ^[a-z][a-z0-9_]{0,62}$ (lowercase letters, digits, underscores)"
    if doc["format"] != FORMAT:
        errors["format"] = f"unsupported format {doc['format']!r}; this version reads format {FORMAT}"
    if not isinstance(doc["description"], str):
        errors["description"] = "must be text"
    if not isinstance(doc["enabled"], bool):
        errors["enabled"] = "must be true or false"
    if doc["auth"] not in AUTH_MODES:
        errors["auth"] = f"must be one of {', '.join(AUTH_MODES)}"
    elif doc["auth"] in ("hmac", "stripe") and not doc["signing_secret"]:
        errors["signing_secret"] = f"auth {doc['auth']!r} needs the name of a secret holding the signing key"
    if doc["response"] not in RESPONSE_MODES:
        errors["response"] = f"must be one of {', '.join(RESPONSE_MODES)}"
    methods = doc["methods"]
    if not isinstance(methods, list) or not methods or any(m not in METHODS for m in methods):
        errors["methods"] = f"must be a non-empty list of {', '.join(METHODS)}"
    if not _is_int(doc["timeout_seconds"], 1, 86400):
        errors["timeout_seconds"] = "must be an integer from 1 to 86400"
    if not _is_int(doc["sync_wait_seconds"], 1, 300):
        errors["sync_wait_seconds"] = "must be an integer from 1 to 300"
    if doc["on_error"] not in ON_ERROR:
        errors["on_error"] = f"must be one of {', '.join(ON_ERROR)}"
    if doc["max_concurrency"] is not None and not _is_int(doc["max_concurrency"], 1, 10000):
        errors["max_concurrency"] = "must be null or an integer from 1 to 10000"
    for key in ("on_failure", "signing_secret", "signature_header"):
        if doc[key] is not None and not isinstance(doc[key], str):
            errors[key] = "must be a name or null"
    if doc["on_failure"] is not None and not NAME_RE.match(doc["on_failure"]):
        errors["on_failure"] = "must be the name of a workflow"
    for key in ("only_when", "idempotency_key"):
        if doc[key] is not None:
            if not isinstance(doc[key], str):
                errors[key] = "must be an expression string or null"
            else:
                _check_expression(errors, key, doc[key], set())
    trigger = doc["trigger"]
    if trigger is not None:
        if (
            not isinstance(trigger, dict)
            or set(trigger) != {"on", "type"}
            or trigger.get("on") not in TRIGGER_EVENTS
            or not isinstance(trigger.get("type"), str)
        ):
            errors["trigger"] = f'must be null or {{"on": {"|".join(TRIGGER_EVENTS)}, "type": "<data type>"}}'


def normalize(doc: dict) -> dict:
    """The document with every default filled in, in a stable key order (what is stored and exported)."""
    if not isinstance(doc, dict):
        raise DefinitionError("A workflow definition must be a JSON object.", fields={"": "must be an object"})
    unknown = set(doc) - TOP_LEVEL_KEYS
    if unknown:
        raise DefinitionError(
            f"Unknown key(s) in definition: {', '.join(sorted(unknown))}.",
            fields={key: "unknown key" for key in sorted(unknown)},
        )
    normalized = {"format": doc.get("format", FORMAT), "name": doc.get("name")}
    for key, default in DEFAULTS.items():
        if key != "format":
            value = doc.get(key, default)
            normalized[key] = default if value is None and key in ("parameters", "steps") else value
    return normalized


def parse(doc: dict) -> Definition:
    """Validate a whole definition and return it parsed; DefinitionError names every problem."""
    from django.conf import settings

    document = normalize(doc)
    errors: dict[str, str] = {}
    _check_settings(errors, document)
    retry = _parse_retry(errors, "retry", document["retry"]) or Retry()
    parameters = _parse_parameters(errors, document["parameters"])
    steps = _parse_steps(errors, document["steps"], settings.ENGINE_ROOM_MAX_STEPS)
    if errors:
        summary = "; ".join(f"{path}: {message}" for path, message in list(errors.items())[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise DefinitionError(f"Invalid workflow definition: {summary}{more}", fields=errors)
    return Definition(
        name=document["name"],
        document=document,
        parameters=tuple(parameters),
        steps=tuple(steps),
        retry=retry,
    )
