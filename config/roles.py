"""People's roles, one rule for pages and APIs alike: admin, editor or viewer.

Superusers and staff are admins; otherwise a Group named "admin", "editor" or "viewer" decides (the
strongest wins); a signed-in person in none of them is an editor (a collaborator, as in Bubble). An admin
puts read-only people in "viewer". It lives in config because every app's pages need it.
"""
ADMIN, EDITOR, VIEWER = "admin", "editor", "viewer"
_RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}


def user_role(user) -> str | None:
    """A signed-in person's role, or None for anonymous callers and token callers."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return None
    if user.is_superuser or user.is_staff:
        return ADMIN
    groups = set(user.groups.filter(name__in=_RANK).values_list("name", flat=True))
    if not groups:
        return EDITOR
    return max(groups, key=_RANK.__getitem__)


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and _RANK[role] >= _RANK[minimum]


def user_is_editor(user) -> bool:
    """Whether `user` may change things (editor or admin)."""
    return role_at_least(user_role(user), EDITOR)


def editor_required_for_changes(view):
    """A page view that anyone signed in may read, but only editors and admins may POST to (403)."""
    from functools import wraps

    from django.core.exceptions import PermissionDenied

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD", "OPTIONS") and not user_is_editor(request.user):
            raise PermissionDenied("Viewers can look but not change; ask an admin for the editor role.")
        return view(request, *args, **kwargs)

    return wrapped
