"""The monthly workload-unit budget: how much of it is used, the 80% warning, and the refusal of new runs."""
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode

from .models import RunDailyStat, WorkflowRun


class BudgetExceededError(ApplicationError):
    """The enforced monthly WU budget is used up: new runs are refused (HTTP 429) until the month ends."""

    code = ErrorCode.BUDGET_EXCEEDED
    http_status = 429


@dataclass(frozen=True)
class WuBudgetStatus:
    """The month's budget, what runs have used of it, and what that means."""

    budget: float
    used: float
    enforced: bool
    warn_ratio: float
    month_start: datetime
    resets_at: datetime

    @property
    def ratio(self) -> float:
        return self.used / self.budget if self.budget > 0 else 1.0

    @property
    def percent(self) -> int:
        return int(self.ratio * 100)

    @property
    def warning(self) -> bool:
        return self.ratio >= self.warn_ratio

    @property
    def exceeded(self) -> bool:
        return self.used >= self.budget

    @property
    def message(self) -> str:
        """What a refused caller and the banner say."""
        if self.exceeded and self.enforced:
            return (
                f"The monthly workload budget of {_amount(self.budget)} WU is used up ({_amount(self.used)} WU since "
                f"{self.month_start:%Y-%m-%d}): new runs are refused until {self.resets_at:%Y-%m-%d} 00:00 UTC "
                "or until an admin raises ENGINE_ROOM_WU_MONTHLY_BUDGET."
            )
        if self.exceeded:
            return (
                f"The monthly workload budget of {_amount(self.budget)} WU is used up ({_amount(self.used)} WU since "
                f"{self.month_start:%Y-%m-%d}); runs go on, because the budget is not enforced."
            )
        refusal = " New runs will be refused once it is used up." if self.enforced else ""
        return (
            f"{self.percent}% of the monthly workload budget is used ({_amount(self.used)} of "
            f"{_amount(self.budget)} WU since {self.month_start:%Y-%m-%d}).{refusal}"
        )


def _amount(value: float) -> str:
    """1,234.5 — at most two decimals, none when whole."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def month_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of the current UTC calendar month and of the next one."""
    now = (now or timezone.now()).astimezone(timezone.UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, following


def wu_used_between(start: datetime, end: datetime) -> float:
    """WU of the runs created in [start, end): those still stored plus the daily aggregates of pruned ones."""
    live = WorkflowRun.objects.filter(created__gte=start, created__lt=end).aggregate(total=Sum("wu"))["total"]
    # Aggregates are whole UTC days and hold only deleted runs, so adding both never counts a run twice.
    pruned = RunDailyStat.objects.filter(day__gte=start.date(), day__lt=_day(end)).aggregate(total=Sum("wu"))["total"]
    return float(live or 0) + float(pruned or 0)


def _day(moment: datetime) -> date:
    return moment.astimezone(timezone.UTC).date()


# A per-process memo: (month start, monotonic time of the count, WU used). The budget check runs on
# every enqueue, so it must not sum a month of runs each time; see ENGINE_ROOM_WU_BUDGET_RECOUNT_SECONDS.
_memo: dict = {}
_memo_lock = threading.Lock()


def forget_usage() -> None:
    """Drop this process's remembered WU count (tests, and after a change of settings)."""
    with _memo_lock:
        _memo.clear()


def _used_this_month(start: datetime, end: datetime, fresh: bool) -> float:
    now = time.monotonic()
    with _memo_lock:
        remembered = _memo.get("usage")
        if not fresh and remembered and remembered[0] == start and now - remembered[1] < settings.ENGINE_ROOM_WU_BUDGET_RECOUNT_SECONDS:
            return remembered[2]
    used = wu_used_between(start, end)
    with _memo_lock:
        _memo["usage"] = (start, now, used)
    return used


def wu_budget_status(*, fresh: bool = False) -> WuBudgetStatus | None:
    """The month's budget status, or None when no budget is set (ENGINE_ROOM_WU_MONTHLY_BUDGET)."""
    budget = settings.ENGINE_ROOM_WU_MONTHLY_BUDGET
    if budget is None:
        return None
    start, end = month_bounds()
    return WuBudgetStatus(
        budget=float(budget),
        used=_used_this_month(start, end, fresh),
        enforced=settings.ENGINE_ROOM_WU_BUDGET_ENFORCE,
        warn_ratio=settings.ENGINE_ROOM_WU_BUDGET_WARN_RATIO,
        month_start=start,
        resets_at=end,
    )


def check_wu_budget() -> None:
    """Raise BudgetExceededError when an enforced budget is used up; free (no query) when there is none."""
    if settings.ENGINE_ROOM_WU_MONTHLY_BUDGET is None or not settings.ENGINE_ROOM_WU_BUDGET_ENFORCE:
        return
    status = wu_budget_status()
    if status.exceeded:
        raise BudgetExceededError(
            status.message, extra={"budget": status.budget, "used": round(status.used, 3),
                                   "resets_at": status.resets_at.isoformat()},
        )
