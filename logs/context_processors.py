"""Template context for every page: the workload budget banner once 80% of the month's budget is used."""
from .budget import wu_budget_status


def wu_budget(request) -> dict:
    """`wu_budget`: the budget status when a signed-in person should see the banner, else nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    status = wu_budget_status()
    return {"wu_budget": status} if status is not None and status.warning else {}
