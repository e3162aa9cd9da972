"""Drill: beat SIGKILLed and restarted while recurring events fire every two seconds.

Two events on one workflow, one per missed-run policy. The ledger (the event row) must take each
slot once: no slot may appear in two runs (doubled), and every slot from the first fire to the last
must be taken — run on time, or folded into the one catch-up run (catch_up) or the one skipped run
(skip) that the policy writes after the outage. A slot due before the end that no run accounts for
is lost.
"""
import re
import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from logs.models import FINISHED_STATUSES, WorkflowRun
from scheduler.models import RecurringEvent
from scheduler.services import recurring_event_create, recurring_event_set_enabled
from tests.integration.conftest import wait_until
from tests.reliability.conftest import size
from tests.reliability.drills import FAST, marking_workflow

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVERY = 2
# Past this lateness a slot counts as missed, so the outage below exercises both policies.
BEAT_ENV = {**FAST, "ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS": "3", "ENGINE_ROOM_RECURRING_FALLBACK_SECONDS": "1"}


def slot_of(caller: str) -> datetime:
    return datetime.fromisoformat(caller.split(" @ ")[1].split(" ")[0])


def account(event: RecurringEvent, horizon: datetime) -> dict:
    """The event's slots from its first to `horizon`, and how its runs took them."""
    runs = list(WorkflowRun.objects.filter(caller__startswith=f"recurring {event.id} @").order_by("created"))
    taken = [slot_of(run.caller) for run in runs]
    doubled = len(taken) - len(set(taken))
    first = min(taken)
    expected = []
    slot = first
    while slot <= horizon:
        expected.append(slot)
        slot += timedelta(seconds=EVERY)
    # A run takes its slot and (catch-up or skip after an outage) every slot since the previous take.
    covered, previous, folded, jumps = set(), None, 0, 0
    for slot in sorted(set(taken)):
        covered.update(s for s in expected if (previous is None or s > previous) and s <= slot)
        if previous is not None and slot - previous > timedelta(seconds=EVERY):
            jumps += 1
            folded += round((slot - previous).total_seconds() / EVERY) - 1
        previous = slot
    return {
        "runs": runs, "doubled": doubled, "lost": len([s for s in expected if s not in covered]),
        "expected": len(expected), "jumps": jumps, "folded": folded,
        "caught_up": sum(1 for run in runs if "catch-up" in run.caller),
        "skipped": sum(1 for run in runs if run.status == "skipped"),
        "missed_reported": sum(int(n) for run in runs for n in re.findall(r"catch-up of (\d+) missed", run.caller)),
    }


def test_beat_killed_and_restarted_loses_and_doubles_no_recurring_fire(processes, drill_table):
    outages = size(1, 3)
    table = drill_table(f"beat SIGKILL x{outages}, 2 s events")
    workflow = marking_workflow("tick")
    processes.worker(concurrency=2, env=BEAT_ENV)
    beat = processes.beat(env=BEAT_ENV)
    first = timezone.now().replace(microsecond=0) + timedelta(seconds=3)
    events = [recurring_event_create(workflow=workflow, frequency={"every": EVERY, "unit": "seconds"}, start=first,
                                     overlap="allow", missed=policy, params={"n": index})
              for index, policy in enumerate(("catch_up", "skip"))]

    for _ in range(outages):
        time.sleep(6)  # fires on time
        processes.kill(beat)
        time.sleep(8)  # four slots pass with nobody to fire them
        beat = processes.beat(env=BEAT_ENV)
    time.sleep(6)  # fires resume after the restart
    for event in events:
        recurring_event_set_enabled(event=event, enabled=False)
    horizon = timezone.now() - timedelta(seconds=EVERY + 2)  # slots a running beat must have taken by now
    wait_until(lambda: not WorkflowRun.objects.exclude(status__in=FINISHED_STATUSES).exists(), timeout=60,
               message="the fired runs to finish")

    accounts = [account(event, horizon) for event in events]
    table.accepted = sum(a["expected"] for a in accounts)
    table.finished = table.accepted - sum(a["lost"] for a in accounts)
    table.lost = sum(a["lost"] for a in accounts)
    table.duplicated = sum(a["doubled"] for a in accounts)
    table.notes.update(runs=sum(len(a["runs"]) for a in accounts), catch_up_runs=accounts[0]["caught_up"],
                       slots_folded=accounts[0]["folded"] + accounts[1]["folded"],
                       skipped_runs=accounts[1]["skipped"])

    assert table.lost == 0, (accounts, processes.logs())
    assert table.duplicated == 0, processes.logs()
    # Each outage folds its missed slots into one take per event, never a burst of runs; the
    # catch-up run says how many slots it stands for.
    for a in accounts:
        assert a["jumps"] == outages, a
    assert accounts[0]["caught_up"] == outages and accounts[0]["missed_reported"] == accounts[0]["folded"], accounts[0]
    assert {run.status for a in accounts for run in a["runs"]} <= {"succeeded", "skipped"}
