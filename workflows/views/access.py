"""Who may change what on the pages, and the page rendering they share.

Roles are api_endpoints.permissions' (one rule for pages and API alike): superusers and staff are
admins; otherwise the Group "admin", "editor" or "viewer" decides, the strongest winning; a signed-in
person in none of them is an editor. Viewers see every page but change nothing.
"""
from functools import wraps

from django.shortcuts import render

from api_endpoints.permissions import ADMIN, EDITOR, VIEWER, role_at_least, user_role

__all__ = ["ADMIN", "EDITOR", "VIEWER", "can_edit", "forbidden", "is_admin", "page", "role_required"]


def can_edit(user) -> bool:
    """Editors and admins change workflows and data."""
    return role_at_least(user_role(user), EDITOR)


def is_admin(user) -> bool:
    """Admins manage tokens, secrets and people."""
    return role_at_least(user_role(user), ADMIN)


def page(request, template: str, context: dict, *, section: str, status: int = 200):
    """Render a page with the navigation's section and what the reader may do."""
    role = user_role(request.user)
    return render(
        request,
        template,
        {"section": section, "role": role, "can_edit": role_at_least(role, EDITOR),
         "is_admin": role_at_least(role, ADMIN), **context},
        status=status,
    )


def forbidden(request, *, needed: str, section: str):
    """The 403 page: what the reader's role is and which role the change needs."""
    return page(request, "workflows/forbidden.html", {"needed": needed}, section=section, status=403)


def role_required(minimum: str, *, section: str):
    """Refuse (403, with a page that says why) anyone whose role is below `minimum`."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not role_at_least(user_role(request.user), minimum):
                return forbidden(request, needed=minimum, section=section)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
