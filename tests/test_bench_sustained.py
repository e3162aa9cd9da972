"""The benchmark's sustained figure (bench.figures.sustained_search) on simulated systems: the rate it
reports is one the system kept up with, never what an overloaded web merely accepted."""
from dataclasses import dataclass

import pytest

from bench.figures import KEPT_UP, Trial, sustained_search

WINDOW_S = 10.0


@dataclass
class _Window:
    """What wrk reports of one window (the fields Trial reads)."""

    seconds: float
    ok: int
    rps: float
    p50_ms: float
    p99_ms: float


class _System:
    """A web that accepts `accepts` calls/s flat out and workers that finish at most `capacity` runs/s,
    less while the web is flooded (its CPU is theirs); a paced load comes at its rate, up to what the web accepts."""

    def __init__(self, *, accepts: float, capacity: float, flooded_capacity: float, latency_ms: float = 6.0):
        self.accepts, self.capacity, self.flooded = accepts, capacity, flooded_capacity
        self.latency_ms = latency_ms
        self.rates: list[float | None] = []

    def trial(self, rate: float | None) -> Trial:
        self.rates.append(rate)
        if rate is None:
            offered, capacity = self.accepts, self.flooded
        else:
            offered, capacity = min(self.accepts, rate), self.capacity
        accepted = round(offered * WINDOW_S)
        finished = min(accepted, round(capacity * WINDOW_S))
        window = _Window(WINDOW_S, accepted, offered, self.latency_ms, 3 * self.latency_ms)
        return Trial(window, finished, rate)


def test_an_overloaded_system_is_reported_at_the_rate_it_keeps_up_with():
    system = _System(accepts=280, capacity=160, flooded_capacity=120)

    figure = sustained_search(system.trial, repeats=3, paced_trials=5)

    assert figure["kept_up"] is True
    # Within the search's resolution below the true capacity, and never above it.
    assert 0.9 * 160 <= figure["rate"] <= 160
    # Every paced trial was offered the rate it was paced to.
    assert all(trial["rps"] == pytest.approx(trial["target"], abs=0.1) for trial in figure["paced"])
    # The unpaced figures stay beside it: what the web accepted and what finished meanwhile.
    assert figure["closed_rps"] == pytest.approx(280)
    assert figure["overloaded_rate"] == pytest.approx(120)
    # Every paced trial is recorded, the last one confirming the rate reported.
    assert len(figure["paced"]) == len(system.rates) - 3
    assert figure["paced"][-1]["kept_up"] is True


def test_a_system_that_keeps_up_unpaced_is_not_paced():
    system = _System(accepts=300, capacity=400, flooded_capacity=400)

    figure = sustained_search(system.trial, repeats=3, paced_trials=5)

    assert system.rates == [None, None, None]
    assert figure["kept_up"] is True
    assert figure["rate"] == pytest.approx(300)


def test_a_system_that_never_keeps_up_reports_its_unpaced_figure_as_such():
    # Even one call a second more than the workers finish leaves it behind: no paced rate is claimed.
    system = _System(accepts=280, capacity=0.1, flooded_capacity=0.1)

    figure = sustained_search(system.trial, repeats=1, paced_trials=3)

    assert figure["kept_up"] is False
    assert figure["rate"] == pytest.approx(0.1)
    assert all(not trial["kept_up"] for trial in figure["paced"])


def test_a_rate_kept_up_once_but_not_on_its_confirmation_is_not_claimed():
    system = _System(accepts=280, capacity=160, flooded_capacity=120)
    kept_up_before: set[float] = set()

    def flaky(rate):
        trial = system.trial(rate)
        if rate is not None and trial.kept_up:
            if rate in kept_up_before:  # the same load again: this time the workers fall behind
                trial = Trial(trial.result, round(0.5 * trial.result.ok), rate)
            kept_up_before.add(rate)
        return trial

    figure = sustained_search(flaky, repeats=1, paced_trials=5)

    assert figure["kept_up"] is False
    assert figure["rate"] == pytest.approx(120)  # the unpaced figure, said to be such
    assert figure["paced"][-1]["kept_up"] is False


def test_when_the_fastest_rate_does_not_hold_a_slower_one_that_does_is_the_figure():
    system = _System(accepts=280, capacity=160, flooded_capacity=120)
    kept_up: list[Trial] = []

    def marginal(rate):
        trial = system.trial(rate)
        if rate is not None and trial.kept_up:
            fastest = max(kept_up, key=lambda t: t.rate, default=None)
            if fastest is not None and rate == fastest.target and trial.rate >= fastest.rate:
                # The fastest kept-up load, run again, falls behind; slower ones hold.
                trial = Trial(trial.result, round(0.9 * trial.result.ok), rate)
            else:
                kept_up.append(trial)
        return trial

    figure = sustained_search(marginal, repeats=1, paced_trials=5)

    assert figure["kept_up"] is True
    rates = sorted({t.rate for t in kept_up}, reverse=True)
    assert len(rates) >= 2 and figure["rate"] == pytest.approx(rates[1])
    assert [t["kept_up"] for t in figure["paced"][-2:]] == [False, True]


def test_an_unpaced_load_kept_up_in_most_repeats_is_the_ceiling():
    system = _System(accepts=300, capacity=400, flooded_capacity=400)
    answers = iter([True, False, True])

    def mostly(rate):
        trial = system.trial(rate)
        return trial if next(answers) else Trial(trial.result, round(0.9 * trial.result.ok), rate)

    figure = sustained_search(mostly, repeats=3, paced_trials=4)

    assert figure["kept_up"] is True and figure["paced"] == []
    assert system.rates == [None, None, None]


def test_a_trial_keeps_up_only_when_nearly_all_it_accepted_finished():
    accepted = 1000
    window = _Window(WINDOW_S, accepted, accepted / WINDOW_S, 5.0, 9.0)

    assert Trial(window, round(KEPT_UP * accepted), 100.0).kept_up
    assert not Trial(window, round(KEPT_UP * accepted) - 1, 100.0).kept_up
