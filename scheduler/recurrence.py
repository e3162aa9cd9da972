"""Recurring frequencies: parsing, the due slots in an IANA timezone, and their beat schedule."""
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from celery import schedules
from croniter import croniter
from dateutil.relativedelta import relativedelta

UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}
CALENDAR = ("daily", "weekly", "monthly", "quarterly", "yearly")
# Average lengths, only used to jump close to a far-away slot before stepping exactly.
_APPROX_SECONDS = {"daily": 86400, "weekly": 604800, "monthly": 2629746, "quarterly": 7889238, "yearly": 31556952}
_STEP = {
    "daily": lambda k: relativedelta(days=k),
    "weekly": lambda k: relativedelta(weeks=k),
    # relativedelta clamps the day to the month's end (Jan 31 + 1 month = Feb 28/29), and each
    # slot is computed from the anchor rather than from the previous slot, so the 31st comes back.
    "monthly": lambda k: relativedelta(months=k),
    "quarterly": lambda k: relativedelta(months=3 * k),
    "yearly": lambda k: relativedelta(years=k),
}
_CRON_FIELDS = re.compile(r"^\S+(\s+\S+){4}$")


class FrequencyError(ValueError):
    """A frequency, timezone or cron expression that cannot be scheduled."""


@dataclass(frozen=True)
class Frequency:
    """A parsed frequency: kind is "interval", one of CALENDAR, or "cron"."""

    kind: str
    seconds: int = 0
    every: int = 0
    unit: str = ""
    cron: str = ""

    @property
    def document(self):
        """The frequency as the definition format writes it."""
        if self.kind == "interval":
            return {"every": self.every, "unit": self.unit}
        if self.kind == "cron":
            return {"cron": self.cron}
        return self.kind

    def describe(self) -> str:
        if self.kind == "interval":
            unit = self.unit[:-1] if self.every == 1 else self.unit
            return f"every {self.every} {unit}" if self.every != 1 else f"every {unit}"
        if self.kind == "cron":
            return f"cron {self.cron}"
        return self.kind


def parse_frequency(raw) -> Frequency:
    """A Frequency from `{"every", "unit"}`, a calendar name or `{"cron"}`; FrequencyError says why not."""
    if isinstance(raw, str):
        if raw in CALENDAR:
            return Frequency(kind=raw)
        raise FrequencyError(f"unknown frequency {raw!r}; use {', '.join(CALENDAR)}, {{every, unit}} or {{cron}}")
    if not isinstance(raw, dict):
        raise FrequencyError("must be a name (daily, weekly, …), {\"every\": N, \"unit\": …} or {\"cron\": …}")
    if set(raw) == {"cron"}:
        return Frequency(kind="cron", cron=_valid_cron(raw["cron"]))
    if set(raw) == {"every", "unit"}:
        every, unit = raw["every"], raw["unit"]
        if unit not in UNITS:
            raise FrequencyError(f"unit must be one of {', '.join(UNITS)}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise FrequencyError("every must be a whole number of 1 or more")
        seconds = every * UNITS[unit]
        if seconds > 366 * 86400:
            raise FrequencyError("an interval may be at most a year; use yearly or a cron expression")
        return Frequency(kind="interval", seconds=seconds, every=every, unit=unit)
    raise FrequencyError(f"unknown key(s) {', '.join(sorted(map(str, raw)))}; use every and unit, or cron")


def _valid_cron(expression) -> str:
    if not isinstance(expression, str) or not _CRON_FIELDS.match(expression.strip()):
        raise FrequencyError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    expression = " ".join(expression.split())
    if not croniter.is_valid(expression):
        raise FrequencyError(f"invalid cron expression {expression!r}")
    minute, hour, day_of_month, month, day_of_week = expression.split()
    try:
        # Beat must be able to load it too: a syntax only croniter knows would never reach beat.
        schedules.crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
                          day_of_week=day_of_week)
    except (ValueError, TypeError) as exc:
        raise FrequencyError(f"cron expression {expression!r} is not supported: {exc}") from None
    return expression


def zone(name) -> ZoneInfo:
    """The IANA timezone called name; FrequencyError for anything else (abbreviations included)."""
    if not isinstance(name, str) or name not in _timezone_names():
        raise FrequencyError(f"unknown timezone {name!r}; use an IANA name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FrequencyError(f"unknown timezone {name!r}") from None


_TIMEZONES: frozenset[str] = frozenset()


def _timezone_names() -> frozenset[str]:
    global _TIMEZONES
    if not _TIMEZONES:
        _TIMEZONES = frozenset(available_timezones())
    return _TIMEZONES


def timezone_choices() -> list[str]:
    return sorted(_timezone_names())


def to_wall(moment: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock time of an instant in tz."""
    return moment.astimezone(tz).replace(tzinfo=None)


def from_wall(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in tz, by DESIGN.md's rule for DST days.

    fold=0 gives both halves of the rule: a time in the spring gap is read with the offset before
    the change, i.e. it lands the gap's length later on the clock (02:30 → 03:30 in Berlin), and a
    time that occurs twice in autumn is its first occurrence only.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


class Schedule:
    """The slots of one recurring event: anchor (wall time in tz), frequency, optional end."""

    def __init__(self, frequency: Frequency, tz: ZoneInfo, start: datetime, anchor: datetime | None = None,
                 end: datetime | None = None):
        self.frequency = frequency
        self.tz = tz
        # The wall time is kept apart from the instant: 02:30 on a spring-forward day has no
        # instant of its own, yet a daily event anchored there fires at 02:30 every other day.
        anchor = anchor if anchor is not None else to_wall(start, tz)
        if frequency.kind == "interval":
            self.anchor = anchor.replace(microsecond=0)
            self.anchor_instant = start.astimezone(UTC).replace(microsecond=0)
        else:
            # Calendar and cron events fire on whole minutes (beat's crontab cannot do better).
            self.anchor = anchor.replace(second=0, microsecond=0)
            self.anchor_instant = from_wall(self.anchor, tz)
        self.end = end

    def _calendar_slot(self, k: int) -> datetime:
        return from_wall(self.anchor + _STEP[self.frequency.kind](k), self.tz)

    def first_after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after moment (an aware instant), or None past the end."""
        slot = self._first_after(moment)
        if slot is not None and self.end is not None and slot > self.end:
            return None
        return slot

    def first_at_or_after(self, moment: datetime) -> datetime | None:
        return self.first_after(moment - timedelta(microseconds=1))

    def _first_after(self, moment: datetime) -> datetime:
        kind = self.frequency.kind
        if moment < self.anchor_instant:
            if kind == "cron":
                return self._cron_after(self.anchor_instant - timedelta(seconds=1))
            return self.anchor_instant
        if kind == "interval":
            step = self.frequency.seconds
            k = math.floor((moment - self.anchor_instant).total_seconds() / step) + 1
            return self.anchor_instant + timedelta(seconds=k * step)
        if kind == "cron":
            return self._cron_after(moment)
        estimate = int((moment - self.anchor_instant).total_seconds() // _APPROX_SECONDS[kind])
        k = max(0, estimate - 3)
        while k > 0 and self._calendar_slot(k) > moment:
            k -= 1
        while (slot := self._calendar_slot(k)) <= moment:
            k += 1
        return slot

    def _cron_after(self, moment: datetime) -> datetime:
        # croniter walks naive wall times; each is then read by from_wall's DST rule. A wall time
        # that maps onto an instant already passed (the gap's shifted time meeting the next real
        # one) is skipped, so a slot fires once.
        wall = to_wall(moment, self.tz)
        walker = croniter(self.frequency.cron, wall)
        for _ in range(1000):
            candidate = from_wall(walker.get_next(datetime), self.tz)
            if candidate > moment:
                return candidate
        raise FrequencyError(f"cron expression {self.frequency.cron!r} has no next time")

    def slots_between(self, after: datetime, until: datetime, limit: int = 100_000) -> list[datetime]:
        """Slots s with after < s <= until (at most limit of them)."""
        found, slot = [], self.first_after(after)
        while slot is not None and slot <= until and len(found) < limit:
            found.append(slot)
            slot = self.first_after(slot)
        return found

    def last_at_or_before(self, moment: datetime, after: datetime) -> tuple[datetime | None, int]:
        """The latest slot in (after, moment] and how many slots that range holds."""
        first = self.first_after(after)
        if first is None or first > moment:
            return None, 0
        if self.frequency.kind == "interval":
            step = self.frequency.seconds
            count = math.floor((moment - first).total_seconds() / step) + 1
            latest = first + timedelta(seconds=(count - 1) * step)
            if self.end is not None and latest > self.end:
                count = math.floor((self.end - first).total_seconds() / step) + 1
                latest = first + timedelta(seconds=(count - 1) * step)
            return latest, count
        # Calendar and cron slots are at least a minute apart; a long outage costs a short walk.
        slots = self.slots_between(after, moment)
        return slots[-1], len(slots)

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        """The next count slots at or after moment."""
        found, slot = [], self.first_at_or_after(moment)
        while slot is not None and len(found) < count:
            found.append(slot)
            slot = self.first_after(slot)
        return found


def beat_schedule(frequency: Frequency, anchor: datetime, tz_name: str) -> dict:
    """The django-celery-beat schedule that wakes the ledger for these slots.

    {"interval": {"every", "period"}} or {"crontab": {minute, hour, day_of_week, day_of_month,
    month_of_year, timezone}}. Monthly, quarterly and yearly anchors past the 28th fire on every
    candidate day (28th–31st); the ledger takes only the due one.
    """
    if frequency.kind == "interval":
        return {"interval": {"every": frequency.every, "period": frequency.unit}}
    if frequency.kind == "cron":
        minute, hour, day_of_month, month, day_of_week = frequency.cron.split()
        return {"crontab": {"minute": minute, "hour": hour, "day_of_month": day_of_month,
                            "month_of_year": month, "day_of_week": day_of_week, "timezone": tz_name}}
    day = anchor.day
    fields = {"minute": str(anchor.minute), "hour": str(anchor.hour), "day_of_week": "*",
              "day_of_month": "*", "month_of_year": "*", "timezone": tz_name}
    if frequency.kind == "weekly":
        fields["day_of_week"] = str(anchor.isoweekday() % 7)
    elif frequency.kind in ("monthly", "quarterly", "yearly"):
        fields["day_of_month"] = str(day) if day <= 28 else f"28-{day}"
        if frequency.kind == "quarterly":
            fields["month_of_year"] = ",".join(str(m) for m in sorted((anchor.month - 1 + 3 * k) % 12 + 1
                                                                       for k in range(4)))
        elif frequency.kind == "yearly":
            fields["month_of_year"] = str(anchor.month)
    return {"crontab": fields}
