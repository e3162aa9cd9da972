"""Signals of the run log: other apps react to a run ending without the engine knowing them."""
from django.dispatch import Signal

# Sent once a run has reached a finished status (its row is committed), with `run`: the WorkflowRun.
# Receivers run in the process that finished the run (usually a worker) and must not raise: the
# engine logs and ignores their errors, the run's outcome is already stored.
run_finished = Signal()

# Sent when a step's return_response has committed (the run may go on), with `run`: a sync caller
# waiting on the run can answer now.
run_answered = Signal()
