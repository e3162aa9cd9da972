"""The one error hierarchy: every error a user can cause or see is an ApplicationError with a code."""
from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable machine-readable error codes, shown in API bodies and run logs."""

    INVALID = "invalid"
    DEFINITION_INVALID = "definition_invalid"
    PARAMETER_INVALID = "bad_request"
    EXPRESSION = "expression_error"
    RECORD_INVALID = "record_invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    ACTION_FAILED = "action_failed"
    HTTP_BLOCKED = "http_blocked"
    HTTP_FAILED = "http_failed"
    EMAIL_FAILED = "email_failed"
    STEP_FAILED = "step_failed"
    TIMEOUT = "timeout"
    DEPTH_LIMIT = "depth_limit"
    CHAIN_LIMIT = "chain_limit"
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"
    BUDGET_EXCEEDED = "budget_exceeded"


class ApplicationError(Exception):
    """Base of every error the product reports: a message for people, a code and extra details."""

    code: ErrorCode = ErrorCode.INVALID
    # The HTTP status an API answers with when this error reaches it (never a 500 for bad input).
    http_status: int = 400

    def __init__(self, message: str, *, extra: dict | None = None, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code is not None:
            self.code = code


class ValidationError(ApplicationError):
    """Bad input, field by field: `fields` maps a dotted path to its message."""

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, code: ErrorCode | None = None):
        super().__init__(message, extra={"fields": fields or {}}, code=code)
        self.fields = fields or {}


class DefinitionError(ValidationError):
    """A workflow definition that cannot be saved."""

    code = ErrorCode.DEFINITION_INVALID


class ParameterError(ValidationError):
    """Parameters that are missing or do not coerce to their declared types."""

    code = ErrorCode.PARAMETER_INVALID


class RecordError(ValidationError):
    """Record values that do not fit their data type, or a bad filter."""

    code = ErrorCode.RECORD_INVALID


class ExpressionError(ApplicationError):
    """An expression that does not parse, escapes the sandbox or exceeds its bounds."""

    code = ErrorCode.EXPRESSION


class NotFoundError(ApplicationError):
    """A thing addressed by name or id that does not exist."""

    code = ErrorCode.NOT_FOUND
    http_status = 404


class ConflictError(ApplicationError):
    """A write that lost a race with another writer."""

    code = ErrorCode.CONFLICT
    http_status = 409


class ActionError(ApplicationError):
    """An action that failed while running; `retryable` says whether a retry may succeed."""

    code = ErrorCode.ACTION_FAILED

    def __init__(self, message: str, *, retryable: bool = False, extra: dict | None = None, code=None):
        super().__init__(message, extra=extra, code=code)
        self.retryable = retryable
