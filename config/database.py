"""Telling a database connection that went away from a statement that failed."""
from django.db import InterfaceError, OperationalError


def connection_lost(exc: BaseException) -> bool:
    """Whether exc says the database connection went away (a restart, a failover, a killed backend)
    rather than that a statement failed: no SQLSTATE, a connection exception (class 08), or the server
    shutting the session down (57P01-57P03). Django's atomic block reconnects on exit, so the
    connection's own state cannot tell."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")
