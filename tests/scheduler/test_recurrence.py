"""Recurring slots in an IANA timezone: DST gaps and repeats, month ends, cron, and beat's schedule."""
from datetime import UTC, datetime

import pytest

from scheduler.recurrence import FrequencyError, Schedule, beat_schedule, from_wall, parse_frequency, zone

BERLIN = zone("Europe/Berlin")


def local(schedule: Schedule, after: datetime, count: int) -> list[str]:
    return [slot.astimezone(schedule.tz).strftime("%Y-%m-%d %H:%M %Z") for slot in schedule.upcoming(after, count)]


def berlin_schedule(frequency, wall: datetime) -> Schedule:
    return Schedule(parse_frequency(frequency), BERLIN, start=from_wall(wall, BERLIN), anchor=wall)


def test_daily_0230_berlin_across_spring_forward_runs_an_hour_later_once():
    schedule = berlin_schedule("daily", datetime(2025, 3, 1, 2, 30))
    assert local(schedule, datetime(2025, 3, 28, tzinfo=UTC), 4) == [
        "2025-03-28 02:30 CET",
        "2025-03-29 02:30 CET",
        "2025-03-30 03:30 CEST",  # 02:30 does not exist that night: shifted forward by the gap
        "2025-03-31 02:30 CEST",
    ]


def test_daily_0230_berlin_across_fall_back_runs_once():
    schedule = berlin_schedule("daily", datetime(2025, 3, 1, 2, 30))
    slots = schedule.upcoming(datetime(2025, 10, 25, tzinfo=UTC), 3)
    assert [s.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for s in slots] == [
        "10-25 02:30 CEST", "10-26 02:30 CEST", "10-27 02:30 CET"
    ]
    # 02:30 happens twice on 10-26 (00:30 and 01:30 UTC): only the first is a slot.
    assert slots[1] == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert schedule.first_after(slots[1]) == slots[2]


def test_weekly_keeps_its_weekday_and_wall_time_through_both_dst_changes():
    schedule = berlin_schedule("weekly", datetime(2025, 3, 23, 2, 30))  # a Sunday
    assert local(schedule, datetime(2025, 3, 22, tzinfo=UTC), 3) == [
        "2025-03-23 02:30 CET", "2025-03-30 03:30 CEST", "2025-04-06 02:30 CEST"
    ]
    assert local(schedule, datetime(2025, 10, 18, tzinfo=UTC), 3) == [
        "2025-10-19 02:30 CEST", "2025-10-26 02:30 CEST", "2025-11-02 02:30 CET"
    ]


def test_monthly_on_the_31st_falls_on_the_last_day_of_shorter_months_and_comes_back():
    schedule = berlin_schedule("monthly", datetime(2025, 1, 31, 9, 0))
    assert local(schedule, datetime(2025, 1, 1, tzinfo=UTC), 12) == [
        "2025-01-31 09:00 CET", "2025-02-28 09:00 CET", "2025-03-31 09:00 CEST", "2025-04-30 09:00 CEST",
        "2025-05-31 09:00 CEST", "2025-06-30 09:00 CEST", "2025-07-31 09:00 CEST", "2025-08-31 09:00 CEST",
        "2025-09-30 09:00 CEST", "2025-10-31 09:00 CET", "2025-11-30 09:00 CET", "2025-12-31 09:00 CET",
    ]


def test_monthly_in_a_leap_year_uses_the_29th_of_february():
    schedule = berlin_schedule("monthly", datetime(2024, 1, 30, 9, 0))
    assert local(schedule, datetime(2024, 2, 1, tzinfo=UTC), 2) == ["2024-02-29 09:00 CET", "2024-03-30 09:00 CET"]


def test_quarterly_from_august_31st():
    schedule = berlin_schedule("quarterly", datetime(2024, 8, 31, 2, 30))
    assert local(schedule, datetime(2024, 8, 1, tzinfo=UTC), 5) == [
        "2024-08-31 02:30 CEST", "2024-11-30 02:30 CET", "2025-02-28 02:30 CET",
        "2025-05-31 02:30 CEST", "2025-08-31 02:30 CEST",
    ]


def test_yearly_on_a_dst_night_and_on_february_29th():
    # 2024-03-31 was the spring-forward night in Berlin; in 2025 it is an ordinary day.
    dst_night = berlin_schedule("yearly", datetime(2024, 3, 31, 2, 30))
    assert local(dst_night, datetime(2024, 1, 1, tzinfo=UTC), 3) == [
        "2024-03-31 03:30 CEST", "2025-03-31 02:30 CEST", "2026-03-31 02:30 CEST"
    ]
    leap = berlin_schedule("yearly", datetime(2024, 2, 29, 12, 0))
    assert local(leap, datetime(2024, 1, 1, tzinfo=UTC), 5) == [
        "2024-02-29 12:00 CET", "2025-02-28 12:00 CET", "2026-02-28 12:00 CET", "2027-02-28 12:00 CET",
        "2028-02-29 12:00 CET",
    ]


def test_a_far_away_slot_is_found_directly():
    schedule = berlin_schedule("monthly", datetime(2000, 1, 31, 9, 0))
    assert schedule.first_after(datetime(2031, 5, 1, tzinfo=UTC)).astimezone(BERLIN) == datetime(
        2031, 5, 31, 9, 0, tzinfo=BERLIN
    )


def test_hourly_cron_fires_once_per_real_hour_over_the_gap_and_once_per_wall_time_over_the_repeat():
    schedule = Schedule(parse_frequency({"cron": "30 * * * *"}), BERLIN, start=datetime(2025, 1, 1, tzinfo=UTC))
    spring = schedule.upcoming(datetime(2025, 3, 30, 0, 0, tzinfo=UTC), 3)
    assert [s.strftime("%H:%M") for s in spring] == ["00:30", "01:30", "02:30"]  # UTC: one per real hour
    autumn = schedule.upcoming(datetime(2025, 10, 26, 0, 0, tzinfo=UTC), 3)
    # Wall 02:30 occurs twice (00:30 and 01:30 UTC); it fires once.
    assert [s.strftime("%H:%M") for s in autumn] == ["00:30", "02:30", "03:30"]


def test_interval_slots_count_real_seconds_from_the_start():
    start = datetime(2025, 3, 30, 0, 59, 50, tzinfo=UTC)
    schedule = Schedule(parse_frequency({"every": 10, "unit": "seconds"}), BERLIN, start=start)
    assert schedule.first_after(datetime(2025, 3, 30, 1, 0, 0, tzinfo=UTC)) == datetime(2025, 3, 30, 1, 0, 10, tzinfo=UTC)
    latest, count = schedule.last_at_or_before(datetime(2025, 3, 30, 1, 1, 5, tzinfo=UTC), after=start)
    assert (latest, count) == (datetime(2025, 3, 30, 1, 1, 0, tzinfo=UTC), 7)


def test_end_stops_the_slots():
    schedule = Schedule(parse_frequency("daily"), BERLIN, start=from_wall(datetime(2025, 1, 1, 8), BERLIN),
                        end=from_wall(datetime(2025, 1, 3, 8), BERLIN))
    assert len(schedule.upcoming(datetime(2024, 12, 1, tzinfo=UTC), 10)) == 3


@pytest.mark.parametrize("raw, message", [
    ("hourly", "unknown frequency"),
    ({"every": 0, "unit": "seconds"}, "1 or more"),
    ({"every": 5, "unit": "days"}, "unit must be"),
    ({"every": 5}, "unknown key"),
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * *"}, "five fields"),
    (5, "must be a name"),
])
def test_bad_frequencies_say_what_is_wrong(raw, message):
    with pytest.raises(FrequencyError, match=message):
        parse_frequency(raw)


def test_unknown_timezones_are_refused():
    with pytest.raises(FrequencyError, match="IANA"):
        zone("CEST")


@pytest.mark.parametrize("frequency, wall, expected", [
    ({"every": 5, "unit": "minutes"}, datetime(2025, 1, 1), {"interval": {"every": 5, "period": "minutes"}}),
    ("daily", datetime(2025, 1, 1, 2, 30), {"minute": "30", "hour": "2", "day_of_month": "*", "day_of_week": "*",
                                            "month_of_year": "*"}),
    ("weekly", datetime(2025, 3, 23, 2, 30), {"day_of_week": "0"}),  # Sunday
    ("monthly", datetime(2025, 1, 31, 9), {"day_of_month": "28-31", "month_of_year": "*"}),
    ("monthly", datetime(2025, 1, 15, 9), {"day_of_month": "15"}),
    ("quarterly", datetime(2024, 11, 30, 9), {"day_of_month": "28-30", "month_of_year": "2,5,8,11"}),
    ("yearly", datetime(2024, 2, 29, 9), {"day_of_month": "28-29", "month_of_year": "2"}),
    ({"cron": "*/15 8-18 * * 1-5"}, datetime(2025, 1, 1), {"minute": "*/15", "hour": "8-18", "day_of_week": "1-5"}),
])
def test_beat_schedule_mapping(frequency, wall, expected):
    spec = beat_schedule(parse_frequency(frequency), wall, "Europe/Berlin")
    if "interval" in expected:
        assert spec == expected
    else:
        assert spec["crontab"]["timezone"] == "Europe/Berlin"
        assert expected.items() <= spec["crontab"].items()
