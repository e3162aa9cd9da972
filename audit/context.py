"""The request an audited change happens in, so that model signals can name who acted and from where."""
from contextvars import ContextVar

current_request: ContextVar = ContextVar("audit_current_request", default=None)
# People whose group membership is changing in this context: pk -> (role before, check scheduled).
role_changes: ContextVar = ContextVar("audit_role_changes", default=None)


class AuditContextMiddleware:
    """Keeps the request in a context variable while the view runs (signals carry no request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        # A fresh ledger per request: a role change rolled back in an earlier request leaves nothing.
        pending = role_changes.set({})
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)
            role_changes.reset(pending)
