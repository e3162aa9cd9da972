"""The Action base class, its config schema base and the context a step runs with."""
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework import serializers

from config.errors import ActionError
from config.exception_handler import flatten_errors

_runtime_serializers = threading.local()


class ActionConfig(serializers.Serializer):
    """An action's config schema, declared once: it validates definitions, renders the editor form
    and documents the action in OpenAPI. Unknown keys are refused so that typos never pass."""

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({key: "unknown key" for key in sorted(unknown)})
        return attrs


class ValueField(serializers.JSONField):
    """Any JSON value in a config, or what an expression yields: null, dates and datetimes included."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("encoder", DjangoJSONEncoder)
        super().__init__(**kwargs)


@dataclass
class StepContext:
    """What an action may know and do while it runs: its run, where it is, and the run's effects."""

    run: Any
    step: Any
    attempt: int
    deadline: float
    dry_run: bool = False
    wu: float = 0.0
    response: dict | None = None
    terminated: bool = False
    captured: list = field(default_factory=list)
    # Set by the engine: starts a child run inline and returns it finished (run_workflow).
    run_child: Any = None
    # Set by the engine: the run's SecretScope, which knows the secrets this run revealed.
    secrets: Any = None

    @property
    def index(self) -> int:
        return self.step.index

    @property
    def idempotency_key(self) -> str:
        """Sent with outbound calls so receivers can drop a repeat after a worker died mid-step."""
        return f"{self.run.id}:{self.step.index}"

    def refuse_secrets(self, params: dict) -> None:
        """Fail the step if params for another run hold a secret this run revealed (docs/security.md)."""
        # That run's row, logs and pages would show the value: its own scope never revealed it, so
        # nothing there could mask it. It reads the secret itself instead.
        holders = self.secrets.holders(params) if self.secrets is not None else {}
        if not holders:
            return
        reasons = [
            f"parameter {key!r} holds the secret{'s' if len(names) > 1 else ''} {', '.join(names)}"
            for key, names in holders.items()
        ]
        secrets = list(dict.fromkeys(name for names in holders.values() for name in names))
        reads = ", ".join(f"{{{{ secrets.{name} }}}}" for name in secrets)
        message = "; ".join(reasons)
        raise ActionError(
            f"{message[0].upper()}{message[1:]}: secrets are not passed between runs; "
            f"read {'it' if len(secrets) == 1 else 'them'} in the called workflow with {reads}",
            extra={"fields": {key: "holds a secret" for key in holders}},
        )

    def add_wu(self, amount: float) -> None:
        self.wu += amount

    def remaining_seconds(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class Action:
    """One kind of step. Subclasses set the class attributes and implement run()."""

    type: ClassVar[str]
    version: ClassVar[int] = 1
    label: ClassVar[str]
    description: ClassVar[str]
    group: ClassVar[str] = "Data"
    Config: ClassVar[type[ActionConfig]]
    # Base cost of one run of the action (docs/workload-units.md); run() may add more.
    wu_cost: ClassVar[float] = 0.0
    # A valid config, used by the contract test and as the editor's starting point.
    example: ClassVar[dict] = {}
    # Transactional actions run inside the step's transaction, so their writes commit with its
    # StepRun; the rest (a child run, which commits its own steps; a call out or an email, which
    # write nothing and must not hold a transaction open while they wait) run outside it.
    transactional: ClassVar[bool] = True
    # False for actions that only read or compute: the engine commits their log rows with the next
    # write instead of one transaction each (a worker that dies in between repeats them, harmlessly).
    writes: ClassVar[bool] = True

    def validate_definition(self, config: dict) -> dict[str, str]:
        """Errors in a config as written in a definition; expression values are checked at run time."""
        from workflows import expressions

        literal = {key: value for key, value in config.items() if not expressions.is_expression(value)}
        serializer = self.Config(data=literal, partial=True)
        errors = {} if serializer.is_valid() else flatten_errors(serializer.errors)
        for name, config_field in serializer.fields.items():
            if config_field.required and name not in config:
                errors.setdefault(name, "This field is required.")
        return errors

    def validate_runtime(self, rendered: dict) -> dict:
        """The rendered config checked against the schema; a bad value fails the step, naming the field."""
        # One serializer per action and thread, reused: building one deep-copies its fields, which
        # cost more than the validation itself on every step.
        serializer = getattr(_runtime_serializers, self.type, None)
        if serializer is None:
            serializer = self.Config(data={})
            setattr(_runtime_serializers, self.type, serializer)
        serializer.initial_data = rendered
        try:
            return serializer.run_validation(rendered)
        except serializers.ValidationError as exc:
            fields = flatten_errors(exc.detail)
            detail = "; ".join(f"{key}: {message}" for key, message in fields.items())
            raise ActionError(f"Invalid config after rendering: {detail}", extra={"fields": fields}) from None

    def run(self, *, config: dict, context: StepContext) -> Any:
        raise NotImplementedError
