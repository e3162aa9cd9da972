"""Who may do what: admin tokens and people with the roles admin, editor and viewer.

People's roles are config.roles' one rule; an admin token counts as admin.
Limited tokens reach only their workflows' endpoints and runs, never the rest of the management API.
"""
from rest_framework import permissions

from config.roles import ADMIN, EDITOR, VIEWER, role_at_least, user_role

from .selectors import TokenInfo

__all__ = ["ADMIN", "EDITOR", "VIEWER", "role_at_least", "user_role"]


def request_role(request) -> str | None:
    """The role of whoever makes the request: an admin token counts as admin, a limited token as none."""
    if isinstance(request.auth, TokenInfo):
        return ADMIN if request.auth.admin else None
    return user_role(request.user)


class _AtLeast(permissions.BasePermission):
    minimum = VIEWER
    message = "You may not do this."

    def has_permission(self, request, view):
        return role_at_least(request_role(request), self.minimum)


class IsViewer(_AtLeast):
    """Any signed-in person, or an admin token: reading the management API."""

    minimum = VIEWER
    message = "This needs a signed-in session or an admin token."


class IsEditor(_AtLeast):
    """Editors and admins (and admin tokens): changing workflows, data and runs."""

    minimum = EDITOR
    message = "This needs the editor or admin role, or an admin token."


class IsAdmin(_AtLeast):
    """Admins and admin tokens: tokens and secrets."""

    minimum = ADMIN
    message = "This needs the admin role or an admin token."


class CanReadRuns(permissions.BasePermission):
    """Any signed-in person, or any valid token (a limited one sees only its workflows' runs)."""

    message = "This needs a signed-in session or an API token."

    def has_permission(self, request, view):
        return isinstance(request.auth, TokenInfo) or user_role(request.user) is not None
