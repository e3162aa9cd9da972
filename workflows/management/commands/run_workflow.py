"""manage.py run_workflow NAME --param key=value [--wait|--inline]: start a run and show its steps."""
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.http import QueryDict

from config.errors import ApplicationError, ParameterError
from logs.models import RunTrigger, WorkflowRun
from workflows.engine import run_execute
from workflows.parameters import coerce_params
from workflows.selectors import workflow_definition, workflow_get
from workflows.services import run_enqueue


class Command(BaseCommand):
    help = "Run a workflow's live version (or --draft) with parameters, optionally waiting for the outcome."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                            help="A parameter; repeat the key for a list.")
        parser.add_argument("--draft", action="store_true", help="Run the draft instead of the live version.")
        parser.add_argument("--wait", action="store_true", help="Wait for a worker to finish the run.")
        parser.add_argument("--inline", action="store_true", help="Execute here, without a worker.")
        parser.add_argument("--timeout", type=float, default=120, help="Seconds --wait waits (default 120).")

    def handle(self, *args, name, param, draft, wait, inline, timeout, **options):
        raw = QueryDict(mutable=True)
        for item in param:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--param {item!r}: expected KEY=VALUE")
            raw.appendlist(key, value)
        try:
            workflow = workflow_get(name=name)
            parsed = workflow_definition(workflow, draft=draft)
            params = coerce_params(parsed.parameters, raw, source="query")
            with transaction.atomic():
                run = run_enqueue(workflow=workflow, params=params, trigger=RunTrigger.MANUAL, draft=draft,
                                  caller="manage.py", dispatch_on_commit=not inline)
        except ParameterError as exc:
            raise CommandError("Bad parameters:\n" + "\n".join(f"  {k}: {v}" for k, v in exc.fields.items())) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Run {run.id} queued.")
        if inline:
            run_execute(run.id)
        elif wait:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if run.finished:
                    break
                time.sleep(0.2)
        run.refresh_from_db()
        self._report(run)
        if run.finished and run.status == "failed":
            raise CommandError(f"Run failed ({run.error_code}): {run.error}")

    def _report(self, run: WorkflowRun) -> None:
        duration = f"{run.duration_ms:.1f} ms" if run.duration_ms is not None else "-"
        self.stdout.write(f"Status: {run.status}  duration: {duration}  WU: {run.wu:.2f}")
        if run.error:
            self.stdout.write(f"Error: {run.error}")
        rows = [("#", "key", "action", "try", "status", "ms", "note")]
        for step in run.steps.order_by("index", "attempt"):
            note = step.error or step.skipped_reason
            rows.append((str(step.index + 1), step.key, step.action, str(step.attempt), step.status,
                         f"{step.duration_ms:.1f}", note[:60]))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if run.response:
            self.stdout.write(f"Response: {run.response}")
