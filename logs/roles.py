"""Who may do what on the logs pages: everyone signed in reads; editors and admins cancel and re-run.

The rule is the project's one rule for pages and API alike (api_endpoints.permissions.user_role):
superusers and staff are admins; otherwise the Group "admin", "editor" or "viewer" decides, the
strongest winning; a signed-in person in none of them is an editor. It is restated here because logs
sits below api_endpoints (DESIGN.md: dependencies point one way); tests/logs/test_roles.py pins the
two together.
"""
ADMIN, EDITOR, VIEWER = "admin", "editor", "viewer"
_RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}


def user_role(user) -> str | None:
    """A signed-in person's role, or None for anonymous visitors."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return None
    if user.is_superuser or user.is_staff:
        return ADMIN
    groups = set(user.groups.filter(name__in=_RANK).values_list("name", flat=True))
    if not groups:
        return EDITOR
    return max(groups, key=_RANK.__getitem__)


def user_can_operate_runs(user) -> bool:
    """Whether `user` may cancel and re-run runs (editor or admin)."""
    role = user_role(user)
    return role is not None and _RANK[role] >= _RANK[EDITOR]
