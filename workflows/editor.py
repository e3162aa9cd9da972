"""The editor's model of a definition: form fields generated from each action's one Config schema,
the definition assembled back from a submitted form, and definition error paths mapped to inputs.

Everything goes through *form data* (input name → list of strings, like a QueryDict): a saved
definition is turned into form data to render the page, and a submitted form is assembled into a
definition. One rendering path for both means a page re-rendered after an error shows exactly what
was typed, and `assemble(form_data(doc))` gives the same workflow back (the round-trip tests).
"""
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty

from workflows import definition as definitions
from workflows import expressions
from workflows.actions import registry

TEXT, NUMBER, CHOICE, BOOLEAN, MAPPING, JSON = "text", "number", "choice", "boolean", "mapping", "json"
UID_RE = re.compile(r"^[a-z0-9]{1,16}$")
# Expressions may also read these; the editor offers them next to params and earlier steps.
BASE_SCOPE = ("now", "run.id", "run.trigger", "workflow.name", "request.body", "request.headers", "secrets.NAME")
TRIGGER_SCOPE = ("record", "before")
PARAMETER_TYPES = ("text", "number", "integer", "boolean", "date", "datetime", "email", "url", "object", "file")
LABEL_WORDS = {"id": "ID", "ids": "IDs", "url": "URL", "json": "JSON", "cc": "CC", "bcc": "BCC", "html": "HTML"}
GROUP_ORDER = ("Data", "Integrations", "Flow", "Scheduling")
CHECKED = "on"


class _Omit:
    """Marks a value the definition leaves out (so the schema's default applies)."""

    def __repr__(self):
        return "OMIT"


OMIT = _Omit()


def new_uid() -> str:
    """A short random id that ties a step's or parameter's inputs together while it moves around."""
    return secrets.token_hex(4)


# --- Config schema → fields ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigField:
    """One key of an action's config as the editor shows it, read from the action's Config serializer."""

    key: str
    label: str
    kind: str
    required: bool
    help_text: str = ""
    default: Any = OMIT
    choices: tuple[str, ...] = ()
    multiline: bool = False
    allow_blank: bool = False
    # Mapping values are always text (e.g. HTTP headers), never parsed as JSON.
    strings: bool = False
    # The input offers existing data types / workflows as suggestions.
    suggests: str = ""

    @property
    def placeholder(self) -> str:
        if self.default is OMIT or self.default in ("", None, {}, []):
            return ""
        return f"Default: {display(self.kind, self.default)}"


def label_for(key: str) -> str:
    words = [LABEL_WORDS.get(word, word) for word in key.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:] if text else text


def field_kind(config_field) -> str:
    """The editor control for a DRF field: choice, boolean, number, text, mapping or json (anything else)."""
    if isinstance(config_field, serializers.ChoiceField):
        return CHOICE
    if isinstance(config_field, serializers.BooleanField):
        return BOOLEAN
    if isinstance(config_field, serializers.IntegerField | serializers.FloatField | serializers.DecimalField):
        return NUMBER
    if isinstance(config_field, serializers.DictField):
        return MAPPING
    if isinstance(
        config_field,
        serializers.CharField | serializers.UUIDField | serializers.DateTimeField | serializers.DateField
        | serializers.TimeField,
    ):
        return TEXT
    return JSON


def _default(config_field):
    default = config_field.default
    if default is empty:
        return OMIT
    return default() if callable(default) else default


def _suggests(action, key: str) -> str:
    if key == "type" and action.group == "Data":
        return "data_types"
    if key == "workflow":
        return "workflows"
    return ""


@cache
def config_fields(action_type: str) -> tuple[ConfigField, ...]:
    """The editor fields of an action, generated from its Config schema (declaration order)."""
    action = registry.get(action_type)
    if action is None:
        return ()
    fields = []
    for key, config_field in action.Config().fields.items():
        kind = field_kind(config_field)
        child = getattr(config_field, "child", None)
        fields.append(
            ConfigField(
                key=key,
                label=label_for(key),
                kind=kind,
                required=bool(config_field.required),
                help_text=str(config_field.help_text or ""),
                default=_default(config_field),
                choices=tuple(str(choice) for choice in getattr(config_field, "choices", {}) or ()),
                # Fields that keep their whitespace are bodies of text: give them room.
                multiline=kind == TEXT and getattr(config_field, "trim_whitespace", True) is False,
                allow_blank=bool(getattr(config_field, "allow_blank", False)),
                strings=kind == MAPPING and isinstance(child, serializers.CharField),
                suggests=_suggests(action, key),
            )
        )
    return tuple(fields)


def catalogue() -> list[dict]:
    """The actions grouped for the "Add a step" menu, each with its label and description."""
    groups: dict[str, list] = {}
    for action in registry.all():
        groups.setdefault(action.group, []).append(action)
    order = [group for group in GROUP_ORDER if group in groups] + sorted(set(groups) - set(GROUP_ORDER))
    return [{"name": group, "actions": groups[group]} for group in order]


# --- Values ↔ text ------------------------------------------------------------------------------


def _loads(text: str):
    """(True, value) when text is JSON, else (False, None)."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def _dumps(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, indent=2) if len(text) > 70 and isinstance(value, dict | list) else text


def display(kind: str, value) -> str:
    """The text an input shows for a value; `parse(kind, display(kind, v)) == v` for every JSON value."""
    if value is None and kind != JSON:
        return ""
    if kind in (TEXT, CHOICE):
        return value if isinstance(value, str) else _dumps(value)
    if kind == NUMBER:
        return value if isinstance(value, str) else _dumps(value)
    if kind == BOOLEAN:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    # JSON text, except a plain string, shown as typed unless it would read back as something else.
    if isinstance(value, str):
        return _dumps(value) if value == "" or _loads(value)[0] else value
    return _dumps(value)


def parse(kind: str, text: str, *, required: bool = False, allow_blank: bool = False):
    """The value for an input's text, or OMIT when it is empty (so the default applies)."""
    text = text.replace("\r\n", "\n")
    if text == "":
        return "" if required and allow_blank else OMIT
    if kind in (TEXT, CHOICE):
        return text
    if kind == NUMBER:
        stripped = text.strip()
        if re.fullmatch(r"[+-]?\d+", stripped):
            return int(stripped)
        try:
            number = float(stripped)
        except ValueError:
            return text  # an expression, or a typo the schema will name
        return number if number == number and abs(number) != float("inf") else text
    if kind == BOOLEAN:
        return {"true": True, "false": False}.get(text, text)
    ok, value = _loads(text)
    return value if ok else text


# --- Definition → form data -----------------------------------------------------------------------


class FormData(dict):
    """Input name → list of values, the shape of a submitted form (Django's QueryDict works too)."""

    def add(self, name: str, value) -> None:
        self.setdefault(name, []).append(value)

    def getlist(self, name: str) -> list:
        return list(self.get(name, []))


def _get(data, name: str, default: str = "") -> str:
    values = data.getlist(name)
    return values[-1] if values else default


def _number_text(value) -> str:
    return "" if value is None else display(NUMBER, value)


def form_data(document: Mapping) -> FormData:
    """The inputs of the editor for a (normalised or raw) definition."""
    doc = {**definitions.DEFAULTS, **{key: value for key, value in document.items() if value is not None}}
    data = FormData()
    data.add("format", str(doc.get("format", definitions.FORMAT)))
    data.add("name", str(doc.get("name") or ""))
    data.add("description", display(TEXT, doc.get("description") or ""))
    if doc.get("enabled") is not False:
        data.add("enabled", CHECKED)
    for key in ("auth", "response", "on_error"):
        data.add(key, display(CHOICE, doc.get(key)))
    for key in ("signing_secret", "signature_header", "on_failure", "only_when", "idempotency_key"):
        data.add(key, display(TEXT, doc.get(key)))
    for method in doc.get("methods") or []:
        data.add("methods", display(CHOICE, method))
    for key in ("timeout_seconds", "sync_wait_seconds", "max_concurrency"):
        data.add(key, _number_text(doc.get(key)))
    retry = doc.get("retry") if isinstance(doc.get("retry"), dict) else {}
    data.add("retry_max_attempts", _number_text(retry.get("max_attempts")))
    data.add("retry_backoff_seconds", _number_text(retry.get("backoff_seconds")))
    trigger = doc.get("trigger") if isinstance(doc.get("trigger"), dict) else {}
    data.add("trigger_on", display(TEXT, trigger.get("on")))
    data.add("trigger_type", display(TEXT, trigger.get("type")))
    for parameter in doc.get("parameters") or []:
        add_parameter(data, new_uid(), parameter if isinstance(parameter, dict) else {})
    for step in doc.get("steps") or []:
        add_step(data, new_uid(), step if isinstance(step, dict) else {})
    return data


def _default_kind(type_name: str, is_list) -> str:
    """A text parameter's default is typed as plain text; any other (a list of texts too) as JSON."""
    return TEXT if type_name == "text" and not is_list else JSON


def add_parameter(data: FormData, uid: str, parameter: Mapping) -> None:
    data.add("params", uid)
    prefix = f"p-{uid}-"
    type_name = parameter.get("type") or "text"
    data.add(prefix + "name", display(TEXT, parameter.get("name") or ""))
    data.add(prefix + "type", display(TEXT, type_name))
    if parameter.get("list"):
        data.add(prefix + "list", CHECKED)
    if parameter.get("required"):
        data.add(prefix + "required", CHECKED)
    data.add(prefix + "default", display(_default_kind(type_name, parameter.get("list")), parameter.get("default"))
             if "default" in parameter else "")
    data.add(prefix + "description", display(TEXT, parameter.get("description") or ""))


def add_step(data: FormData, uid: str, step: Mapping) -> None:
    data.add("steps", uid)
    prefix = f"s-{uid}-"
    action = str(step.get("action") or "")
    data.add(prefix + "action", action)
    data.add(prefix + "key", display(TEXT, step.get("key") or ""))
    data.add(prefix + "only_when", display(TEXT, step.get("only_when")))
    data.add(prefix + "on_error", display(CHOICE, step.get("on_error") or "fail"))
    retry = step.get("retry") if isinstance(step.get("retry"), dict) else {}
    data.add(prefix + "retry_max_attempts", _number_text(retry.get("max_attempts")))
    data.add(prefix + "retry_backoff_seconds", _number_text(retry.get("backoff_seconds")))
    data.add(prefix + "description", display(TEXT, step.get("description") or ""))
    config = step.get("config") if isinstance(step.get("config"), dict) else {}
    for config_field in config_fields(action):
        name = f"{prefix}c-{config_field.key}"
        value = config.get(config_field.key, OMIT)
        if config_field.kind == MAPPING and (value is OMIT or isinstance(value, dict)):
            for key, item in (value if isinstance(value, dict) else {}).items():
                data.add(name + "-k", str(key))
                data.add(name + "-v", display(TEXT if config_field.strings else JSON, item))
        elif config_field.kind == MAPPING:
            # A whole mapping from one expression ("{{ steps.x }}") is edited as one JSON field.
            data.add(name + "-mode", JSON)
            data.add(name, display(JSON, value))
        else:
            data.add(name, "" if value is OMIT else display(config_field.kind, value))


# --- Form data → definition -----------------------------------------------------------------------


@dataclass
class Assembled:
    """A definition assembled from form data, with what is needed to map its error paths back to inputs."""

    document: dict
    param_uids: list[str]
    step_uids: list[str]
    step_actions: list[str]
    # Problems the form itself finds (a mapping row without a key), by input name.
    problems: dict[str, str] = field(default_factory=dict)

    def input_for(self, path: str) -> tuple[str, str]:
        """(input name, remainder of the path) for a definition error path; ("", path) when it has no input."""
        return input_for(path, self)


def _uids(data, name: str) -> list[str]:
    seen, uids = set(), []
    for uid in data.getlist(name):
        if UID_RE.match(uid or "") and uid not in seen:
            seen.add(uid)
            uids.append(uid)
    return uids


def _number_or_text(text: str):
    value = parse(NUMBER, text)
    return None if value is OMIT else value


def assemble(data) -> Assembled:
    """The definition a submitted editor form describes (validation is left to definitions.parse)."""
    document: dict[str, Any] = {"format": definitions.FORMAT, "name": _get(data, "name").strip()}
    document["description"] = _get(data, "description").replace("\r\n", "\n")
    document["enabled"] = _get(data, "enabled") == CHECKED
    for key in ("auth", "response", "on_error"):
        document[key] = _get(data, key) or definitions.DEFAULTS[key]
    document["methods"] = [method for method in data.getlist("methods") if method]
    for key in ("timeout_seconds", "sync_wait_seconds"):
        value = _number_or_text(_get(data, key))
        document[key] = definitions.DEFAULTS[key] if value is None else value
    document["max_concurrency"] = _number_or_text(_get(data, "max_concurrency"))
    for key in ("signing_secret", "signature_header", "on_failure", "only_when", "idempotency_key"):
        document[key] = _get(data, key).strip() or None
    retry_attempts = _number_or_text(_get(data, "retry_max_attempts"))
    retry_backoff = _number_or_text(_get(data, "retry_backoff_seconds"))
    default_retry = definitions.DEFAULTS["retry"]
    document["retry"] = {
        "max_attempts": default_retry["max_attempts"] if retry_attempts is None else retry_attempts,
        "backoff_seconds": default_retry["backoff_seconds"] if retry_backoff is None else retry_backoff,
    }
    trigger_on = _get(data, "trigger_on")
    document["trigger"] = {"on": trigger_on, "type": _get(data, "trigger_type")} if trigger_on else None

    assembled = Assembled(document=document, param_uids=_uids(data, "params"), step_uids=[], step_actions=[])
    document["parameters"] = [_assemble_parameter(data, uid) for uid in assembled.param_uids]
    steps = []
    for uid in _uids(data, "steps"):
        action = _get(data, f"s-{uid}-action")
        assembled.step_uids.append(uid)
        assembled.step_actions.append(action)
        steps.append(_assemble_step(data, uid, action, assembled.problems))
    document["steps"] = steps
    return assembled


def _assemble_parameter(data, uid: str) -> dict:
    prefix = f"p-{uid}-"
    type_name = _get(data, prefix + "type") or "text"
    parameter = {
        "name": _get(data, prefix + "name").strip(),
        "type": type_name,
        "list": _get(data, prefix + "list") == CHECKED,
        "required": _get(data, prefix + "required") == CHECKED,
    }
    default = parse(_default_kind(type_name, parameter["list"]), _get(data, prefix + "default"))
    if default is not OMIT:
        parameter["default"] = default
    description = _get(data, prefix + "description").strip()
    if description:
        parameter["description"] = description
    return parameter


def _assemble_step(data, uid: str, action: str, problems: dict) -> dict:
    prefix = f"s-{uid}-"
    step: dict[str, Any] = {"key": _get(data, prefix + "key").strip(), "action": action}
    if not step["key"]:
        del step["key"]
    config = {}
    for config_field in config_fields(action):
        name = f"{prefix}c-{config_field.key}"
        if config_field.kind == MAPPING and _get(data, name + "-mode") != JSON:
            value = _assemble_mapping(data, name, config_field, problems)
        else:
            kind = JSON if config_field.kind == MAPPING else config_field.kind
            value = parse(kind, _get(data, name), required=config_field.required, allow_blank=config_field.allow_blank)
        if value is not OMIT:
            config[config_field.key] = value
    step["config"] = config
    only_when = _get(data, prefix + "only_when").strip()
    if only_when:
        step["only_when"] = only_when
    on_error = _get(data, prefix + "on_error") or "fail"
    if on_error != "fail":
        step["on_error"] = on_error
    attempts = _number_or_text(_get(data, prefix + "retry_max_attempts"))
    backoff = _number_or_text(_get(data, prefix + "retry_backoff_seconds"))
    if attempts is not None or backoff is not None:
        step["retry"] = {}
        if attempts is not None:
            step["retry"]["max_attempts"] = attempts
        if backoff is not None:
            step["retry"]["backoff_seconds"] = backoff
    description = _get(data, prefix + "description").strip()
    if description:
        step["description"] = description
    return step


def _assemble_mapping(data, name: str, config_field: ConfigField, problems: dict):
    keys, values = data.getlist(name + "-k"), data.getlist(name + "-v")
    mapping = {}
    for key, text in zip(keys, values + [""] * (len(keys) - len(values)), strict=False):
        key = key.strip()
        if not key and not text:
            continue  # an empty row left for typing
        if not key:
            problems.setdefault(name, "Every value needs a name.")
            continue
        if key in mapping:
            problems.setdefault(name, f"The name {key!r} is used twice.")
            continue
        text = text.replace("\r\n", "\n")
        if config_field.strings:
            mapping[key] = text
        else:
            value = parse(JSON, text)
            mapping[key] = "" if value is OMIT else value
    if not mapping and not config_field.required:
        return OMIT
    return mapping


def canonical(document: Mapping) -> dict:
    """A definition in the editor's canonical form: defaults filled in, optional step keys only when set."""
    doc = definitions.normalize(dict(document))
    doc["parameters"] = [_canonical_parameter(p) for p in doc["parameters"]]
    doc["steps"] = [_canonical_step(index, s) for index, s in enumerate(doc["steps"])]
    return doc


def _canonical_parameter(parameter: Mapping) -> dict:
    result = {
        "name": parameter.get("name"),
        "type": parameter.get("type"),
        "list": bool(parameter.get("list", False)),
        "required": bool(parameter.get("required", False)),
    }
    if parameter.get("default") not in (None, ""):
        result["default"] = parameter["default"]
    if parameter.get("description"):
        result["description"] = parameter["description"]
    return result


def _canonical_step(index: int, step: Mapping) -> dict:
    result = {"key": step.get("key") or f"step_{index + 1}", "action": step.get("action"),
              "config": dict(step.get("config") or {})}
    if step.get("only_when"):
        result["only_when"] = step["only_when"]
    if step.get("on_error", "fail") != "fail":
        result["on_error"] = step["on_error"]
    if step.get("retry") is not None:
        result["retry"] = step["retry"]
    if step.get("description"):
        result["description"] = step["description"]
    return result


# --- Error paths → inputs -------------------------------------------------------------------------

_TOP_LEVEL_INPUTS = {
    "retry.max_attempts": "retry_max_attempts",
    "retry.backoff_seconds": "retry_backoff_seconds",
    "retry": "retry_max_attempts",
    "trigger": "trigger_on",
    "trigger.type": "trigger_type",
    "trigger.on": "trigger_on",
}
_SETTING_INPUTS = frozenset(definitions.DEFAULTS) - {"format", "parameters", "steps", "retry", "trigger"} | {"name"}
_PARAMETER_INPUTS = frozenset({"name", "type", "list", "required", "default", "description"})
_STEP_INPUTS = frozenset({"key", "only_when", "on_error", "description"})
_ITEM_RE = re.compile(r"^(parameters|steps)\[(\d+)\](?:\.(.*))?$")


def input_for(path: str, assembled: Assembled) -> tuple[str, str]:
    """(input name, the part of the path below it) for an error path such as `steps[1].config.url`."""
    if path in _TOP_LEVEL_INPUTS:
        return _TOP_LEVEL_INPUTS[path], ""
    if path in _SETTING_INPUTS:
        return path, ""
    match = _ITEM_RE.match(path)
    if not match:
        return "", path
    kind, index, rest = match.group(1), int(match.group(2)), match.group(3) or ""
    if kind == "parameters":
        if index >= len(assembled.param_uids):
            return "", path
        uid = assembled.param_uids[index]
        head = rest.split(".", 1)[0]
        return (f"p-{uid}-{head}", "") if head in _PARAMETER_INPUTS else (f"p-{uid}", rest)
    if index >= len(assembled.step_uids):
        return "", path
    uid = assembled.step_uids[index]
    head, _, below = rest.partition(".")
    if head in _STEP_INPUTS:
        return f"s-{uid}-{head}", below
    if head == "retry":
        return f"s-{uid}-retry_{below or 'max_attempts'}", ""
    if head == "config" and below:
        key = re.split(r"[.\[]", below, maxsplit=1)[0]
        known = {config_field.key for config_field in config_fields(assembled.step_actions[index])}
        if key in known:
            return f"s-{uid}-c-{key}", below[len(key):].lstrip(".")
    return f"s-{uid}", rest


def errors_by_input(errors: Mapping[str, str], assembled: Assembled) -> tuple[dict[str, str], list[str]]:
    """Definition errors as {input name: message}, plus the messages that belong to no input."""
    by_input = dict(assembled.problems)
    general = []
    for path, message in errors.items():
        name, below = input_for(path, assembled)
        text = f"{below}: {message}" if below else message
        if not name:
            general.append(f"{path}: {message}" if path else message)
        elif name in by_input:
            by_input[name] = f"{by_input[name]} {text}"
        else:
            by_input[name] = text
    return by_input, general


# --- Validation -----------------------------------------------------------------------------------


@dataclass
class Check:
    """What the editor knows about a submitted form: the definition, its errors and warnings by input."""

    assembled: Assembled
    errors: dict[str, str]
    general: list[str]
    warnings: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.general

    @property
    def document(self) -> dict:
        return self.assembled.document

    def scope(self) -> dict[str, list[str]]:
        return scope_by_step(self.assembled)


def validate(data, *, data_types=(), workflows=(), secret_names=()) -> Check:
    """Assemble and validate a form the way saving would, plus warnings about names that don't exist yet."""
    from config.errors import DefinitionError

    assembled = assemble(data)
    errors: dict[str, str] = {}
    try:
        definitions.parse(assembled.document)
    except DefinitionError as exc:
        errors = dict(exc.fields)
    for path, message in reference_errors(assembled.document, data_types).items():
        errors.setdefault(path, message)
    by_input, general = errors_by_input(errors, assembled)
    warnings = _warnings(assembled, set(data_types), set(workflows), set(secret_names))
    return Check(assembled, by_input, general, {k: v for k, v in warnings.items() if k not in by_input})


def reference_errors(document: Mapping, data_types) -> dict[str, str]:
    """The data types a definition names in its trigger and record parameters must exist (as saving checks)."""
    known = set(data_types)
    errors = {}
    trigger = document.get("trigger")
    if isinstance(trigger, dict) and trigger.get("type") and trigger["type"] not in known:
        errors["trigger.type"] = f"no data type named {trigger['type']!r}"
    for index, parameter in enumerate(document.get("parameters") or []):
        type_name = parameter.get("type") if isinstance(parameter, dict) else None
        if isinstance(type_name, str) and type_name.startswith("record:") and type_name[7:] not in known:
            errors[f"parameters[{index}].type"] = f"no data type named {type_name[7:]!r}"
    return errors


def _warnings(assembled: Assembled, data_types: set, workflows: set, secret_names: set) -> dict[str, str]:
    warnings = {}
    doc = assembled.document
    if doc.get("auth") in ("hmac", "stripe") and doc.get("signing_secret") and doc["signing_secret"] not in secret_names:
        warnings["signing_secret"] = f"There is no secret named {doc['signing_secret']!r} yet; add it under Settings → Secrets."
    if doc.get("on_failure") and doc["on_failure"] not in workflows:
        warnings["on_failure"] = f"There is no workflow named {doc['on_failure']!r} yet."
    for uid, step in zip(assembled.step_uids, doc["steps"], strict=True):
        for config_field in config_fields(step["action"]):
            value = step["config"].get(config_field.key)
            if not isinstance(value, str) or expressions.is_expression(value) or not value:
                continue
            if config_field.suggests == "data_types" and value not in data_types:
                warnings[f"s-{uid}-c-{config_field.key}"] = (
                    f"There is no data type named {value!r} yet; the step fails until it exists (see Data)."
                )
            elif config_field.suggests == "workflows" and value not in workflows:
                warnings[f"s-{uid}-c-{config_field.key}"] = f"There is no workflow named {value!r} yet."
    return warnings


def scope_by_step(assembled: Assembled) -> dict[str, list[str]]:
    """The names each step's expressions may use: the parameters, earlier steps' keys, and the rest."""
    doc = assembled.document
    params = [
        f"params.{parameter['name']}"
        for parameter in doc["parameters"]
        if isinstance(parameter.get("name"), str) and definitions.NAME_RE.match(parameter["name"])
    ]
    extra = list(TRIGGER_SCOPE) if doc.get("trigger") else []
    scope, earlier = {}, []
    for index, (uid, step) in enumerate(zip(assembled.step_uids, doc["steps"], strict=True)):
        scope[uid] = params + list(earlier) + extra + list(BASE_SCOPE)
        key = step.get("key") or f"step_{index + 1}"
        if definitions.NAME_RE.match(key):
            earlier.append(f"steps.{key}")
    return scope


def unique_key(base: str, taken) -> str:
    """A step key based on `base` that no other step uses."""
    base = re.sub(r"[^a-z0-9_]", "_", base.lower()).strip("_")[:55] or "step"
    if not base[0].isalpha():
        base = f"step_{base}"
    key, number = base, 2
    while key in taken:
        key, number = f"{base}_{number}", number + 1
    return key


# --- What the templates show -----------------------------------------------------------------------


@dataclass
class FieldView:
    """One config input of a step card, with its value as typed and what is wrong with it."""

    name: str
    label: str
    kind: str
    required: bool
    help_text: str
    placeholder: str
    value: str = ""
    rows: list = field(default_factory=list)
    choices: list = field(default_factory=list)
    multiline: bool = False
    as_json: bool = False
    suggests: str = ""
    error: str = ""
    warning: str = ""

    @property
    def optional_and_empty(self) -> bool:
        return not self.required and not self.value and not self.rows and not self.error

    @property
    def expression(self) -> bool:
        """Whether the input takes expressions (every text the step renders does)."""
        return self.kind in (TEXT, NUMBER, JSON) or self.as_json


@dataclass
class StepView:
    """One step card."""

    uid: str
    index: int
    action_type: str
    action: Any
    key: str
    fields: list[FieldView]
    values: dict
    errors: dict
    warnings: dict
    scope: list[str]

    @property
    def main_fields(self) -> list[FieldView]:
        return [item for item in self.fields if not item.optional_and_empty]

    @property
    def more_fields(self) -> list[FieldView]:
        return [item for item in self.fields if item.optional_and_empty]

    @property
    def more_open(self) -> bool:
        return any(self.values.get(name) for name in ("retry_max_attempts", "retry_backoff_seconds", "description")) or (
            self.values.get("on_error") == "continue"
        ) or any(self.errors.get(name) for name in ("retry_max_attempts", "retry_backoff_seconds", "on_error", "description"))

    @property
    def title(self) -> str:
        return self.action.label if self.action else f"Unknown action {self.action_type!r}"


@dataclass
class ParameterView:
    """One row of the parameters table."""

    uid: str
    values: dict
    errors: dict
    type_choices: list


def _choices(options, current: str, *, blank: str = "") -> list[tuple[str, str, bool]]:
    """(value, label, selected) for a select; a current value that is not an option stays selectable."""
    items = [("", blank, current == "")] if blank else []
    items += [(option, option, option == current) for option in options]
    if current and current not in options:
        items.append((current, current, True))
    return items


def step_views(data, *, errors=None, warnings=None, scope=None) -> list[StepView]:
    """The step cards of a form, in the form's order, with errors and warnings by input."""
    errors, warnings, scope = errors or {}, warnings or {}, scope or {}
    views = []
    for index, uid in enumerate(_uids(data, "steps")):
        views.append(step_view(data, uid, index, errors=errors, warnings=warnings, scope=scope.get(uid, [])))
    return views


def step_view(data, uid: str, index: int, *, errors=None, warnings=None, scope=()) -> StepView:
    errors, warnings = errors or {}, warnings or {}
    prefix = f"s-{uid}-"
    action_type = _get(data, prefix + "action")
    fields = []
    for config_field in config_fields(action_type):
        name = f"{prefix}c-{config_field.key}"
        as_json = config_field.kind == MAPPING and _get(data, name + "-mode") == JSON
        view = FieldView(
            name=name,
            label=config_field.label,
            kind=config_field.kind,
            required=config_field.required,
            help_text=config_field.help_text,
            placeholder=config_field.placeholder,
            multiline=config_field.multiline,
            as_json=as_json,
            suggests=config_field.suggests,
            error=errors.get(name, ""),
            warning=warnings.get(name, ""),
        )
        if config_field.kind == MAPPING and not as_json:
            keys, values = data.getlist(name + "-k"), data.getlist(name + "-v")
            view.rows = [(key, value) for key, value in zip(keys, values, strict=False) if key or value]
        else:
            view.value = _get(data, name)
        if config_field.kind in (CHOICE, BOOLEAN):
            options = config_field.choices if config_field.kind == CHOICE else ("true", "false")
            default = display(config_field.kind, config_field.default) if config_field.default is not OMIT else ""
            blank = f"Default ({default})" if default else "—"
            view.choices = _choices(options, view.value, blank=blank if not config_field.required else "")
        fields.append(view)
    meta = ("key", "only_when", "on_error", "retry_max_attempts", "retry_backoff_seconds", "description")
    return StepView(
        uid=uid,
        index=index,
        action_type=action_type,
        action=registry.get(action_type),
        key=_get(data, prefix + "key"),
        fields=fields,
        values={name: _get(data, prefix + name) for name in meta},
        errors={name: errors.get(prefix + name, "") for name in meta} | {"step": errors.get(f"s-{uid}", "")},
        warnings={name: warnings.get(prefix + name, "") for name in meta},
        scope=list(scope),
    )


def parameter_types(data_types=()) -> list[str]:
    return [*PARAMETER_TYPES, *(f"record:{name}" for name in data_types)]


def parameter_views(data, *, errors=None, data_types=()) -> list[ParameterView]:
    """The rows of the parameters table, in the form's order."""
    return [parameter_view(data, uid, errors=errors, data_types=data_types) for uid in _uids(data, "params")]


def parameter_view(data, uid: str, *, errors=None, data_types=()) -> ParameterView:
    errors = errors or {}
    prefix = f"p-{uid}-"
    names = ("name", "type", "list", "required", "default", "description")
    values = {name: _get(data, prefix + name) for name in names}
    return ParameterView(
        uid=uid,
        values=values,
        errors={name: errors.get(prefix + name, "") for name in names} | {"row": errors.get(f"p-{uid}", "")},
        type_choices=_choices(parameter_types(data_types), values["type"] or "text"),
    )


def settings_values(data) -> dict:
    """The last value of every settings input, for the settings section."""
    names = (
        "name", "description", "enabled", "auth", "signing_secret", "signature_header", "response",
        "sync_wait_seconds", "timeout_seconds", "retry_max_attempts", "retry_backoff_seconds", "on_error",
        "only_when", "idempotency_key", "trigger_on", "trigger_type", "on_failure", "max_concurrency",
    )
    values = {name: _get(data, name) for name in names}
    values["methods"] = data.getlist("methods")
    return values
