"""A run's steps laid out on the run's own time scale, so the bottleneck shows at a glance."""
from dataclasses import dataclass
from datetime import datetime

from .models import StepRun, StepStatus, WorkflowRun


@dataclass
class Bar:
    """One step attempt: where it starts and how wide it is, in percent of the run's duration."""

    step: StepRun
    offset_ms: float
    offset_pct: float
    width_pct: float
    share_pct: float  # of the run's whole duration
    slowest: bool


def _total_ms(run: WorkflowRun, steps: list[StepRun], now: datetime) -> float:
    if run.duration_ms:
        total = run.duration_ms
    elif run.started_at:
        total = (now - run.started_at).total_seconds() * 1000  # still running: the scale grows with it
    else:
        total = 0.0
    start = run.started_at
    ends = [
        (step.started_at - start).total_seconds() * 1000 + step.duration_ms for step in steps if start
    ]
    # A step logged after the run's own clock stopped (rounding, clock skew) still fits on the scale.
    return max([total, *ends, 1.0])


def waterfall(*, run: WorkflowRun, steps: list[StepRun], now: datetime) -> list[Bar]:
    """Bars for every step attempt, the slowest one (the bottleneck) marked; skipped steps take no width."""
    if not steps:
        return []
    total = _total_ms(run, steps, now)
    start = run.started_at or steps[0].started_at
    ran = [step for step in steps if step.status != StepStatus.SKIPPED]
    slowest = max(ran, key=lambda step: step.duration_ms) if ran else None
    bars = []
    for step in steps:
        offset = max(0.0, (step.started_at - start).total_seconds() * 1000)
        offset_pct = min(100.0, offset / total * 100)
        width = step.duration_ms / total * 100 if step.status != StepStatus.SKIPPED else 0.0
        bars.append(Bar(
            step=step,
            offset_ms=offset,
            offset_pct=round(offset_pct, 3),
            # At least a sliver, so that a 1 ms step among 10 s ones is still visible.
            width_pct=round(min(100.0 - offset_pct, max(width, 0.4)), 3),
            share_pct=round(width, 1),
            slowest=step is slowest and len(ran) > 1,
        ))
    return bars
