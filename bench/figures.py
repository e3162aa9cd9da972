"""Each figure of issue 8, measured against the production-shaped stack and, beside it, the baseline."""
import json
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from celery import Celery

from . import fixtures, stack
from .load import WrkResult, median, percentile, sequential, wrk

# Burst and sustained loads at these connection counts (issue 8: 16 and 64).
CONNECTIONS = (16, 64)


# The sustained figure's load: 16 connections, as fast as they go, then paced below that (sustained_search).
SUSTAINED_CONNECTIONS = 16
# A paced trial kept up when this share of the calls it accepted had finished by the end of its window.
KEPT_UP = 0.97


@dataclass
class Trial:
    """One sustained-load window: wrk's result, how much of the work finished in it, and its pacing."""

    result: WrkResult
    finished: int
    # The rate the load was paced to (calls/s), None for unpaced.
    target: float | None

    @property
    def rate(self) -> float:
        return self.finished / self.result.seconds

    @property
    def kept_up(self) -> bool:
        return self.finished >= KEPT_UP * self.result.ok

    def describe(self, what: str) -> str:
        pacing = f" (paced to {self.target:.0f}/s)" if self.target is not None else ""
        verdict = "kept up" if self.kept_up else "fell behind"
        return f"{pacing}: {self.result.rps:.0f} req/s in, {self.rate:.0f} {what}/s done, {verdict}"

    def summary(self) -> dict:
        target = round(self.target, 1) if self.target is not None else None
        return {"target": target, "rps": round(self.result.rps, 1), "rate": round(self.rate, 1),
                "kept_up": self.kept_up, "p99_ms": self.result.p99_ms}


# A statement that writes a table, whatever it starts with (a data-modifying WITH too).
WRITES = re.compile(r'\b(?:UPDATE|INSERT INTO|DELETE FROM) "')


def _enqueue_delay(row) -> float:
    """Due → enqueued, in seconds. A run the dispatcher sent ahead (Celery holds it until its due time)
    was waiting in the queue when it came due: 0, not the negative lead; its start delay tells the rest."""
    return max(0.0, (row.dispatched_at - row.due_at).total_seconds())


@dataclass(frozen=True)
class Size:
    """How much of each load a run makes; `full` is what BENCHMARKS.md reports."""

    name: str
    burst_seconds: float
    burst_repeats: int
    sustained_seconds: float
    sustained_repeats: int
    # Paced trials at most in the search for the sustained rate (Bench._sustained), before its confirmation.
    paced_trials: int
    sync_calls: int
    drain: int
    list_items: int
    big_list: int
    due_same_second: int
    single_due: int
    interval_window: float
    isolation_calls: int
    inline_runs: int
    # Every drain stops waiting after this long; its rate is then taken over the runs that finished.
    drain_cap_s: float


SIZES = {
    "full": Size("full", burst_seconds=8, burst_repeats=3, sustained_seconds=10, sustained_repeats=3, paced_trials=4,
                 sync_calls=1000, drain=10_000, list_items=10_000, big_list=100_000, due_same_second=1000,
                 single_due=12, interval_window=15, isolation_calls=1000, inline_runs=300, drain_cap_s=45),
    "small": Size("small", burst_seconds=3, burst_repeats=1, sustained_seconds=4, sustained_repeats=1, paced_trials=2,
                  sync_calls=100, drain=600, list_items=600, big_list=5000, due_same_second=100,
                  single_due=4, interval_window=5, isolation_calls=100, inline_runs=30, drain_cap_s=45),
}


@dataclass
class Results:
    """Everything measured, as plain data (saved as JSON, rendered as BENCHMARKS.md)."""

    size: str
    started: str = ""
    seconds: float = 0.0
    machine: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    # The Size the run used (repeats, counts, caps), for the report's text.
    limits: dict = field(default_factory=dict)

    def put(self, key: str, **values) -> None:
        self.figures.setdefault(key, {}).update(values)


def _iso(value: datetime) -> float:
    return value.timestamp()


def sustained_search(trial, *, repeats: int, paced_trials: int, confirmations: int = 2) -> dict:
    """The rate a system keeps up with: calls accepted and their work finished at the same pace.

    First as fast as the connections go (unpaced, `repeats` times): a system that keeps up in most of them
    is at its ceiling, their median. One that does not (its web accepts calls faster than its workers
    finish them, and the queue grows) is then paced below that, bisecting between what finished and what
    was accepted. Loads near the limit keep up one time and not the next, so a paced rate counts only once
    the same rate keeps up again: the kept-up trials are tried again from the fastest down, at most
    `confirmations` of them, and the first that holds gives the figure (the lower of its two rates). The
    unpaced figures (calls accepted, runs finished while overloaded) are kept beside it.
    `trial(rate)` runs one window paced to that many calls a second (None: unpaced) and returns its Trial."""
    unpaced = [trial(None) for _ in range(repeats)]
    figure = {
        "rate": median([t.rate for t in unpaced]), "rps": median([t.result.rps for t in unpaced]),
        "p50_ms": median([t.result.p50_ms for t in unpaced]), "p99_ms": median([t.result.p99_ms for t in unpaced]),
        "repeats": [round(t.rate) for t in unpaced], "overloaded_rate": median([t.rate for t in unpaced]),
        "closed_rps": median([t.result.rps for t in unpaced]),
        "kept_up": sum(t.kept_up for t in unpaced) * 2 > len(unpaced), "paced": [],
    }
    if figure["kept_up"] or not paced_trials:
        return figure
    low, high = figure["rate"], figure["rps"]
    kept: list[Trial] = []
    for _ in range(paced_trials):
        paced = trial(round((low + high) / 2, 1))
        figure["paced"].append(paced.summary())
        if paced.kept_up:
            kept.append(paced)
            low = max(low, paced.result.rps)
        else:
            high = min(high, paced.result.rps)
            low = min(low, 0.85 * high)  # the unpaced finished rate is not a proven floor
        if high - low < 0.03 * high:
            break
    tried: set[float] = set()
    for first in sorted(kept, key=lambda t: t.rate, reverse=True):
        if len(tried) >= confirmations:
            break
        if first.target in tried:
            continue
        tried.add(first.target)
        again = trial(first.target)
        figure["paced"].append(again.summary())
        if again.kept_up:
            figure.update(rate=min(first.rate, again.rate), rps=min(first.result.rps, again.result.rps),
                          p50_ms=max(first.result.p50_ms, again.result.p50_ms),
                          p99_ms=max(first.result.p99_ms, again.result.p99_ms), kept_up=True)
            return figure
    # Nothing kept up twice: too near the limit to claim a paced rate; the unpaced figure stands.
    return figure


class Bench:
    """The benchmark run: its stack, its size, the token, and the results as they come in."""

    def __init__(self, size: Size, run_stack: stack.Stack, results: Results, only: set[str] | None):
        self.size = size
        self.stack = run_stack
        self.results = results
        self.only = only
        self.procfile = stack.procfile()
        self.redis = redis.Redis.from_url(stack.REDIS_URL)
        self.token = ""
        self.port = stack.free_port()
        self.base_port = stack.free_port()
        self.web = self.base_web = None
        self.workers: dict[str, stack.Process] = {}
        self.sender = Celery("bench-sender", broker=stack.REDIS_URL)
        self.sender.conf.update(task_serializer="json", broker_connection_retry_on_startup=True)

    def wanted(self, group: str) -> bool:
        return self.only is None or group in self.only

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    # --- the stack -------------------------------------------------------------------------------

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def start_web(self) -> None:
        self.web = self.stack.web("web", self.procfile["web"], self.port, "/api/wf/bench_async")
        self.memory("web", "after start", self.web)

    def start_base_web(self) -> None:
        command = stack.baseline_command(self.procfile["web"])
        self.base_web = self.stack.web("baseline-web", command, self.base_port, "/hook", env=stack.BASELINE_ENV)
        self.memory("baseline web", "after start", self.base_web)

    def start_workers(self) -> None:
        """The Procfile's two workers, as `make run` starts them; beat runs inside `worker` (--beat)."""
        self.workers["worker_interactive"] = self.stack.worker("worker_interactive", self.procfile["worker_interactive"])
        self.workers["worker"] = self.stack.worker("worker", self.procfile["worker"])
        self.stack.wait_log(self.workers["worker"], "beat: Starting")

    @property
    def single_worker(self) -> str:
        """The `worker` line without the beat it embeds: extra workers must not add a second beat."""
        return stack.drop_flag(self.procfile["worker"], "--beat")

    def base_worker(self, queue: str, concurrency: int | None = None, name: str = "baseline") -> stack.Process:
        command = stack.set_option(stack.baseline_command(self.single_worker), "-Q", queue)
        command = stack.set_option(command, "-n", f"{name}@%h")
        if concurrency is not None:
            command = stack.set_option(command, "--concurrency", str(concurrency))
        return self.stack.worker(name, command, env=stack.BASELINE_ENV)

    def product_worker(self, queue: str, concurrency: int | None, name: str, beat: bool) -> stack.Process:
        # The one that keeps --beat carries the stack's beat while the Procfile's own `worker` is stopped.
        command = stack.set_option(self.procfile["worker"] if beat else self.single_worker, "-Q", queue)
        command = stack.set_option(command, "-n", f"{name}@%h")
        if concurrency is not None:
            command = stack.set_option(command, "--concurrency", str(concurrency))
        return self.stack.worker(name, command)

    def memory(self, process_name: str, moment: str, process: stack.Process | None) -> None:
        if process is None or not process.alive():
            return
        self.results.memory.setdefault(process_name, {})[moment] = round(stack.pss_mb(process.pid), 1)

    def memory_all(self, moment: str) -> None:
        self.memory("web", moment, self.web)
        self.memory_workers(moment)

    def memory_workers(self, moment: str) -> None:
        for name, process in self.workers.items():
            self.memory(name, moment, process)

    def purge_queues(self) -> None:
        """Drop the messages waiting in the bench's queues (never the exchange bindings, which workers need),
        and the run lists with their drainers' places: a place whose drainer message was dropped would
        otherwise hold its slot until it went stale, 30 s, and starve the next load of drainers."""
        for key in self.redis.scan_iter(match=f"{stack.QUEUE_PREFIX}*"):
            if self.redis.type(key) == b"list" or b"er:runs:" in key:
                self.redis.delete(key)
        self.redis.delete("unacked", "unacked_index")

    def backlog(self, queue: str) -> int:
        return self.redis.llen(queue) + self.redis.hlen("unacked")

    # --- structural figures (in this process) -----------------------------------------------------

    def structure(self) -> None:
        """SQL queries per webhook call and per step, commits per step, and the engine's inline overhead."""
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from logs.models import RunTrigger, WorkflowRun
        from workflows import engine
        from workflows.actions import registry
        from workflows.selectors import version_definition, version_number
        from workflows.services import run_enqueue

        client = Client(HTTP_HOST="127.0.0.1")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        body = json.dumps(fixtures.BODY)
        client.post("/api/wf/bench_async", body, content_type="application/json", **headers)  # warms the caches
        with CaptureQueriesContext(connection) as webhook:
            response = client.post("/api/wf/bench_async", body, content_type="application/json", **headers)
        assert response.status_code == 202, response.content

        def execute(name: str, params: dict) -> tuple[list[dict], int, list[str]]:
            """(the queries of one inline run, how many commits, the writes made outside a transaction)."""
            workflow = fixtures.workflow(name)
            # Cached per process, as in a worker that ran the version once.
            version_definition(workflow.live_version_id)
            version_number(workflow.live_version_id)
            run = run_enqueue(workflow=workflow, params=params, trigger=RunTrigger.MANUAL, dispatch_on_commit=False)
            commits, autocommitted = 0, []
            original = connection.commit

            def counted():
                nonlocal commits
                commits += 1
                original()

            def outside(execute, sql, params, many, context):
                # A write outside a transaction commits on its own (on PostgreSQL the run's end is one
                # data-modifying WITH statement).
                if not connection.in_atomic_block and WRITES.search(sql):
                    autocommitted.append(sql[:60])
                return execute(sql, params, many, context)

            connection.commit = counted
            try:
                with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(outside):
                    engine.run_execute(run.id)
            finally:
                del connection.commit
            status = WorkflowRun.objects.get(id=run.id).status
            if status != "succeeded":
                raise RuntimeError(f"{name} ended {status}")
            # Commits after the claim (the first autocommitted write): what the steps and the run's end cost.
            statements = [q for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
            return statements, commits + len(autocommitted) - 1, autocommitted

        statements = [q for q in webhook.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
        one, one_commits, _ = execute("bench_steps1", {"n": 1})
        three, three_commits, autocommitted = execute("bench_steps3", {"n": 1})
        workflow, workflow_commits, _ = execute("bench_async", dict(fixtures.BODY))
        per_step = (len(three) - len(one)) / 2
        self.results.put(
            "queries", webhook_call=len(statements), webhook_transactions=sum(
                1 for q in webhook.captured_queries if q["sql"] == "COMMIT"),
            webhook_sql=[q["sql"][:100] for q in statements],
            per_step=per_step, per_run=len(one) - per_step, commits_three_steps=three_commits,
            autocommitted_writes=autocommitted, three_step_workflow=len(workflow),
            three_step_workflow_commits=workflow_commits,
        )

        # The engine's own time per step: a run's wall time minus the time spent inside action.run().
        spent = {"total": 0.0}
        actions = {a.type: a for a in registry.all()}
        originals = {}
        for type_id in ("set_values", "find_records", "return_response"):
            action = actions[type_id]
            originals[type_id] = action.run

            def timed(*, config, context, _run=action.run):
                began = time.perf_counter()
                try:
                    return _run(config=config, context=context)
                finally:
                    spent["total"] += time.perf_counter() - began

            action.run = timed
        walls, own = [], []
        try:
            target = fixtures.workflow("bench_async")
            for _ in range(self.size.inline_runs):
                run = run_enqueue(workflow=target, params=dict(fixtures.BODY), trigger=RunTrigger.MANUAL,
                                  dispatch_on_commit=False)
                spent["total"] = 0.0
                began = time.perf_counter()
                engine.run_execute(run.id)
                walls.append((time.perf_counter() - began) * 1000)
                own.append(spent["total"] * 1000)
        finally:
            for type_id, run_method in originals.items():
                del actions[type_id].run
                assert actions[type_id].run == run_method
        overheads = [(wall - mine) / 3 for wall, mine in zip(walls, own, strict=True)]
        self.results.put(
            "inline", runs=len(walls), wall_p50_ms=median(walls), actions_p50_ms=median(own),
            overhead_per_step_p50_ms=median(overheads), overhead_per_step_p99_ms=percentile(overheads, 99),
        )
        self.log(f"structure: {len(statements)} statements per webhook call, {per_step:g} per step, "
                 f"{three_commits} commits for 3 steps; inline overhead {median(overheads):.2f} ms/step")

    # --- 1. webhook intake ------------------------------------------------------------------------

    def intake_burst(self) -> None:
        """Async 202s with no worker draining: Engine Room's endpoint vs the bare validate-and-enqueue one."""
        tmp = self.stack.tmp
        product_url = f"http://127.0.0.1:{self.port}/api/wf/bench_async"
        base_url = f"http://127.0.0.1:{self.base_port}/hook"
        # Warm both servers (every thread's connections, the caches) before measuring.
        wrk(product_url, fixtures.BODY, connections=16, seconds=1, headers=self.auth, tmp=tmp)
        wrk(base_url, fixtures.BODY, connections=16, seconds=1, tmp=tmp)
        runs: dict[tuple[str, int], list] = {}
        for _ in range(self.size.burst_repeats):
            for connections in CONNECTIONS:
                for system, url, headers in (("baseline", base_url, None), ("product", product_url, self.auth)):
                    result = wrk(url, fixtures.BODY, connections=connections, seconds=self.size.burst_seconds,
                                 headers=headers, tmp=tmp)
                    runs.setdefault((system, connections), []).append(result)
                    if not result.ok:
                        raise RuntimeError(f"{system} answered no request with a 2xx: {result.codes}")
                    bad = result.requests - result.ok
                    if bad:
                        self.results.notes.append(f"intake burst {system} c{connections}: {bad} non-2xx answers "
                                                  f"{result.codes}, {result.errors} socket errors")
                    self.log(f"burst {system:8s} c{connections}: {result.rps:7.0f} req/s "
                             f"p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms")
                fixtures.reset_runs()
                self.purge_queues()
        for connections in CONNECTIONS:
            product, base = runs[("product", connections)], runs[("baseline", connections)]
            # The best repeat of each side, the least disturbed: a repeat can be halved by other work on the
            # machine or (on a shared listening socket, before --reuse-port) by gunicorn handing most of wrk's
            # connections to one of its two processes, and a median of three would compare it with a whole one.
            best, base_best = max(product, key=lambda r: r.rps), max(base, key=lambda r: r.rps)
            self.results.put(
                f"intake_c{connections}",
                rps=best.rps, base_rps=base_best.rps, p50_ms=best.p50_ms, p99_ms=best.p99_ms,
                base_p50_ms=base_best.p50_ms, base_p99_ms=base_best.p99_ms,
                repeats=[round(r.rps) for r in product], base_repeats=[round(r.rps) for r in base],
            )
        self.memory("web", "after intake burst", self.web)
        self.memory("baseline web", "after intake burst", self.base_web)

    def sustained_baseline(self) -> None:
        """The bare endpoint with a no-op worker draining at the same time: tasks completed per second."""
        queue = f"{stack.QUEUE_PREFIX}baseline"
        url = f"http://127.0.0.1:{self.base_port}/hook"

        def trial(rate: float | None) -> Trial:
            self.purge_queues()
            fixtures.checkpoint()
            result = wrk(url, fixtures.BODY, connections=SUSTAINED_CONNECTIONS, seconds=self.size.sustained_seconds,
                         tmp=self.stack.tmp, rate=rate)
            trial = Trial(result, result.ok - self.backlog(queue), rate)
            self.log(f"sustained baseline{trial.describe('tasks')}")
            return trial

        figure = sustained_search(trial, repeats=self.size.sustained_repeats, paced_trials=self.size.paced_trials)
        self.purge_queues()
        self.results.put("sustained", **{f"base_{key}": value for key, value in figure.items()})

    def sustained_product(self) -> None:
        """Webhook calls while the Procfile's workers drain them: three-step runs finished per second."""
        from logs.models import FINISHED_STATUSES, WorkflowRun

        url = f"http://127.0.0.1:{self.port}/api/wf/bench_async"
        failed = 0

        def trial(rate: float | None) -> Trial:
            nonlocal failed
            fixtures.reset_runs()
            self.purge_queues()
            result = wrk(url, fixtures.BODY, connections=SUSTAINED_CONNECTIONS, seconds=self.size.sustained_seconds,
                         headers=self.auth, tmp=self.stack.tmp, rate=rate)
            finished = WorkflowRun.objects.filter(status__in=FINISHED_STATUSES).count()
            failed += WorkflowRun.objects.exclude(status__in=("succeeded", "queued", "running")).count()
            trial = Trial(result, finished, rate)
            self.log(f"sustained product{trial.describe('runs')}")
            return trial

        figure = sustained_search(trial, repeats=self.size.sustained_repeats, paced_trials=self.size.paced_trials)
        self.purge_queues()
        fixtures.reset_runs()
        if failed:
            self.results.notes.append(f"sustained: {failed} runs did not succeed, over all its unpaced and paced trials")
        self.results.put("sustained", **figure)
        self.memory_all("after sustained load")

    # --- 2. end-to-end latency --------------------------------------------------------------------

    def sync_baseline(self) -> None:
        fixtures.checkpoint()
        result = sequential(self.base_port, "/sync", fixtures.BODY, calls=self.size.sync_calls)
        self.results.put("sync", base_p50_ms=result.p50, base_p99_ms=result.p99, base_calls=result.calls,
                         base_codes=result.codes)
        self.log(f"sync baseline: p50 {result.p50:.2f} ms p99 {result.p99:.2f} ms")

    def sync_product(self, key: str = "sync") -> "object":
        """1,000 sequential three-step sync calls on an idle stack; the engine's overhead from the run log."""
        from logs.models import StepRun, WorkflowRun

        fixtures.reset_runs()
        result = sequential(self.port, "/api/wf/bench_sync", fixtures.BODY, calls=self.size.sync_calls,
                            headers=self.auth)
        runs = list(WorkflowRun.objects.filter(workflow_name="bench_sync", status="succeeded")
                    .values_list("id", "duration_ms", "created", "started_at"))
        steps: dict = {}
        for run_id, duration in StepRun.objects.filter(run__workflow_name="bench_sync").values_list("run_id",
                                                                                                  "duration_ms"):
            steps[run_id] = steps.get(run_id, 0.0) + duration
        outside = [(duration - steps.get(run_id, 0.0)) / 3 for run_id, duration, _, _ in runs if duration is not None]
        waits = [(started - created).total_seconds() * 1000 for _, _, created, started in runs]
        inline = self.results.figures.get("inline", {})
        self.results.put(
            key, p50_ms=result.p50, p99_ms=result.p99, calls=result.calls, codes=result.codes,
            run_duration_p50_ms=median([d for _, d, _, _ in runs]),
            outside_steps_per_step_p50_ms=median(outside), queue_wait_p50_ms=median(waits),
            overhead_per_step_ms=(median([d for _, d, _, _ in runs]) - inline.get("actions_p50_ms", 0)) / 3
            if inline else None,
        )
        self.log(f"sync product: p50 {result.p50:.2f} ms p99 {result.p99:.2f} ms ({result.codes})")
        return result

    # --- 3 and 7. drains --------------------------------------------------------------------------

    def _send_noop(self, queue: str, count: int, tag: str) -> None:
        self.sender.send_task("bench.baseline.tasks.stamp", args=[f"bench:{tag}:first"], queue=queue)
        for _ in range(count):
            self.sender.send_task("bench.baseline.tasks.noop", queue=queue)
        self.sender.send_task("bench.baseline.tasks.stamp", args=[f"bench:{tag}:last"], queue=queue)

    def _wait_stamps(self, tags: list[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        keys = [f"bench:{tag}:{end}" for tag in tags for end in ("first", "last")]
        while time.monotonic() < deadline:
            values = self.redis.mget(keys)
            if all(values):
                stamps = [float(v) for v in values]
                return max(stamps[1::2]) - min(stamps[0::2])
            time.sleep(0.1)
        raise RuntimeError(f"no-op drain did not finish within {timeout} s")

    def _hold(self, start, names: list[str]) -> list[stack.Process]:
        """Workers started on a queue nobody sends to, so that start-up time is not part of a drain."""
        return [start(f"{stack.QUEUE_PREFIX}hold-{name}", name) for name in names]

    def _release(self, queues: dict[str, str]) -> None:
        """Point each held worker (node name → queue) at its queue at the same moment."""
        host = socket.gethostname()
        for name, queue in queues.items():
            replies = self.sender.control.add_consumer(queue, destination=[f"{name}@{host}"], reply=True, timeout=10)
            if not replies:
                raise RuntimeError(f"worker {name} did not take queue {queue}")

    def drain_baseline(self) -> None:
        """N no-op tasks drained by the Procfile's worker command line (one process, its concurrency)."""
        count = self.size.drain
        queue = f"{stack.QUEUE_PREFIX}baseline"
        self.purge_queues()
        fixtures.checkpoint()
        (worker,) = self._hold(lambda hold, name: self.base_worker(hold, name=name), ["baseline"])
        self._send_noop(queue, count, "one")
        self._release({"baseline": queue})
        seconds = self._wait_stamps(["one"], timeout=300)
        self.stack.stop(worker)
        self.results.put("drain", base_rate=count / seconds, base_seconds=seconds)
        self.log(f"drain baseline (1 worker): {count / seconds:.0f} tasks/s")
        # Scale-out: two single-process workers, each on its own queue.
        self.purge_queues()
        workers = self._hold(lambda hold, name: self.base_worker(hold, concurrency=1, name=name),
                             ["baseline-a", "baseline-b"])
        self._send_noop(f"{queue}-a", count // 2, "a")
        self._send_noop(f"{queue}-b", count - count // 2, "b")
        self._release({"baseline-a": f"{queue}-a", "baseline-b": f"{queue}-b"})
        seconds = self._wait_stamps(["a", "b"], timeout=300)
        for worker in workers:
            self.stack.stop(worker)
        self.results.put("scale_out", base_rate=count / seconds, base_seconds=seconds)
        self.log(f"drain baseline (2 workers x 1): {count / seconds:.0f} tasks/s")

    def _wait_runs(self, count: int, timeout: float, **filters) -> tuple[float, int, int]:
        """Wait until `count` runs matching filters have finished, or `timeout` passed; (first start → last
        finish in s, failed, finished)."""
        from django.db.models import Max, Min

        from logs.models import FINISHED_STATUSES, WorkflowRun

        runs = WorkflowRun.objects.filter(**filters)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if runs.filter(status__in=FINISHED_STATUSES).count() >= count:
                break
            time.sleep(0.25)
        done = runs.filter(status__in=FINISHED_STATUSES)
        finished = done.count()
        if finished < count:
            self.results.notes.append(f"a drain of {count:,} runs ({filters}) was stopped after {timeout:.0f} s "
                                      f"with {finished:,} finished; its rate is over those")
        span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
        if not finished:
            raise RuntimeError(f"no run of {count} finished within {timeout} s")
        failed = done.exclude(status="succeeded").count()
        return (span["last"] - span["first"]).total_seconds(), failed, finished

    def drain_product(self) -> None:
        """N queued three-step runs drained by the Procfile's `worker` line, then by two single-process workers."""
        count = self.size.drain
        self.stack.stop(self.workers.pop("worker"))
        fixtures.reset_runs()
        self.purge_queues()
        (worker,) = self._hold(lambda hold, name: self.product_worker(hold, None, name, beat=True), ["worker"])
        began = time.monotonic()
        fixtures.enqueue_runs(count, queues=["default"])
        enqueue_rate = count / (time.monotonic() - began)
        self._release({"worker": f"{stack.QUEUE_PREFIX}default"})
        seconds, failed, finished = self._wait_runs(count, timeout=self.size.drain_cap_s, caller="bench")
        self.results.put("drain", rate=finished / seconds, seconds=seconds, failed=failed, finished=finished,
                         enqueue_rate=enqueue_rate)
        self.log(f"drain product (1 worker): {finished / seconds:.0f} runs/s ({failed} failed); "
                 f"enqueued at {enqueue_rate:.0f}/s")
        self.memory("worker", "after drain", worker)
        self.stack.stop(worker)
        # Scale-out: two single-process workers on separate queues (default and bulk).
        fixtures.reset_runs()
        self.purge_queues()
        workers = self._hold(lambda hold, name: self.product_worker(hold, 1, name, beat=name == "worker-a"),
                             ["worker-a", "worker-b"])
        fixtures.enqueue_runs(count, queues=["default", "bulk"])
        self._release({"worker-a": f"{stack.QUEUE_PREFIX}default", "worker-b": f"{stack.QUEUE_PREFIX}bulk"})
        seconds, failed, finished = self._wait_runs(count, timeout=self.size.drain_cap_s, caller="bench")
        for worker in workers:
            self.memory(worker.name, "after drain", worker)
            self.stack.stop(worker)
        self.results.put("scale_out", rate=finished / seconds, seconds=seconds, failed=failed, finished=finished)
        self.log(f"drain product (2 workers x 1): {finished / seconds:.0f} runs/s ({failed} failed)")
        fixtures.reset_runs()
        self.purge_queues()
        self.workers["worker"] = self.stack.worker("worker", self.procfile["worker"])

    # --- 4. bulk ----------------------------------------------------------------------------------

    def _call(self, name: str, body: dict) -> str:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("POST", f"/api/wf/{name}", json.dumps(body),
                           {"Content-Type": "application/json", **self.auth})
        response = connection.getresponse()
        payload = json.loads(response.read())
        connection.close()
        if response.status != 202:
            raise RuntimeError(f"{name} answered {response.status}: {payload}")
        return payload["run_id"]

    def _wait_run(self, run_id: str, timeout: float):
        from logs.models import WorkflowRun

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = WorkflowRun.objects.get(id=run_id)
            if run.finished:
                return run
            time.sleep(0.1)
        raise RuntimeError(f"run {run_id} did not finish within {timeout} s")

    def _wait_batch(self, parent_run, total: int, timeout: float) -> int:
        """Wait until the batch's item runs have all finished, or `timeout` passed; how many finished."""
        from logs.models import FINISHED_STATUSES, WorkflowRun

        items = WorkflowRun.objects.filter(trigger="list", parent_run=parent_run, status__in=FINISHED_STATUSES)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if items.count() >= total:
                return total
            time.sleep(0.25)
        finished = items.count()
        self.results.notes.append(f"the {total:,}-item list was stopped after {timeout:.0f} s with {finished:,} items "
                                  "finished; its rate is over those")
        return finished

    def bulk(self) -> None:
        """schedule_workflow_on_list over N records: time to schedule, time until every item run finished."""
        from django.db.models import Max, Min

        from logs.models import FINISHED_STATUSES, StepRun, WorkflowRun
        from scheduler.models import Batch, ScheduledRun

        count = self.size.list_items
        fixtures.reset_runs()
        called = datetime.now(UTC)
        run = self._wait_run(self._call("bench_list", {"limit": count}), timeout=300)
        if run.status != "succeeded":
            raise RuntimeError(f"bench_list failed: {run.error}")
        schedule_step = StepRun.objects.get(run=run, key="schedule")
        batch_id = schedule_step.output["batch_id"]
        finished = self._wait_batch(run, count, timeout=self.size.drain_cap_s)
        items = WorkflowRun.objects.filter(trigger="list", parent_run=run, status__in=FINISHED_STATUSES)
        span = items.aggregate(first=Min("started_at"), last=Max("finished_at"), dispatched=Max("created"))
        failed = items.exclude(status="succeeded").count()
        batch = Batch.objects.get(id=batch_id)
        drain_seconds = (span["last"] - span["first"]).total_seconds()
        self.results.put(
            "bulk", items=count, finished=finished, schedule_step_s=schedule_step.duration_ms / 1000,
            list_run_s=run.duration_ms / 1000, call_to_all_finished_s=(span["last"] - called).total_seconds(),
            items_per_s=finished / drain_seconds,
            dispatch_span_s=(span["dispatched"] - batch.created).total_seconds(), failed=failed,
            batch_done=batch.done, batch_failed=batch.failed,
        )
        self.log(f"bulk {count}: scheduled in {schedule_step.duration_ms / 1000:.2f} s, {finished} finished "
                 f"{(span['last'] - called).total_seconds():.1f} s after the call, {finished / drain_seconds:.0f} items/s")
        self.purge_queues()
        self.memory_all("after 10,000-item list")

        # 100,000 items a day apart: the calling run must succeed; the batch is then cancelled.
        fixtures.reset_runs()
        big = self.size.big_list
        run = self._wait_run(self._call("bench_big_list", {"count": big}), timeout=600)
        step = StepRun.objects.filter(run=run, key="schedule").first()
        written = ScheduledRun.objects.filter(batch__isnull=False).count()
        self.results.put("big_list", items=big, status=run.status, error=run.error[:300],
                         schedule_step_s=(step.duration_ms / 1000) if step else None,
                         run_s=(run.duration_ms or 0) / 1000, rows=written)
        self.log(f"bulk {big}: calling run {run.status} in {(run.duration_ms or 0) / 1000:.1f} s, {written} rows")
        self.memory_all("after 100,000-item list")
        fixtures.reset_runs()

    # --- 5. scheduling accuracy -------------------------------------------------------------------

    def accuracy(self) -> None:
        """One-off runs due alone, an interval event every second, and 1,000 one-off runs due in one second."""
        from logs.models import WorkflowRun
        from scheduler.models import ScheduledRun
        from scheduler.services import recurring_event_create, recurring_event_delete, scheduled_run_create

        fixtures.reset_runs()
        tick = fixtures.workflow("bench_tick")
        now = datetime.now(UTC)
        for index in range(self.size.single_due):
            scheduled_run_create(workflow=tick, params={"n": index},
                                 due_at=now + timedelta(seconds=2 + index * 1.3))
        event = recurring_event_create(workflow=tick, params={}, frequency={"every": 1, "unit": "seconds"},
                                       start=now + timedelta(seconds=2))
        wait = max(2 + self.size.single_due * 1.3, 2 + self.size.interval_window) + 3
        time.sleep(wait)
        recurring_event_delete(event=event)
        time.sleep(2)
        singles = list(ScheduledRun.objects.filter(batch__isnull=True).select_related("run"))
        dispatch = [_enqueue_delay(s) for s in singles if s.dispatched_at]
        start = [(s.run.started_at - s.due_at).total_seconds() for s in singles if s.run and s.run.started_at]
        recurring = []
        for caller, started in WorkflowRun.objects.filter(trigger="recurring").values_list("caller", "started_at"):
            slot = datetime.fromisoformat(caller.split(" @ ", 1)[1].split(" ", 1)[0])
            if started:
                recurring.append((started - slot).total_seconds())
        self.results.put(
            "due_single", count=len(singles), dispatched=len(dispatch),
            dispatch_p50_s=median(dispatch), dispatch_p99_s=percentile(dispatch, 99),
            start_p50_s=median(start), start_p99_s=percentile(start, 99),
        )
        self.results.put("interval", fires=len(recurring), start_p50_s=median(recurring),
                         start_p99_s=percentile(recurring, 99))
        self.log(f"one due run: dispatch p99 {percentile(dispatch, 99):.2f} s; interval event: "
                 f"{len(recurring)} fires, start p99 {percentile(recurring, 99):.2f} s")

        # N one-off runs due in the same second.
        fixtures.reset_runs()
        count = self.size.due_same_second
        due = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        rows = [ScheduledRun(workflow=tick, workflow_name=tick.name, params={"n": n}, due_at=due, trigger="schedule")
                for n in range(count)]
        ScheduledRun.objects.bulk_create(rows)
        self._wait_runs(count, timeout=self.size.drain_cap_s, trigger="schedule")
        rows = list(ScheduledRun.objects.select_related("run"))
        dispatch = [_enqueue_delay(s) for s in rows if s.dispatched_at]
        start = [(s.run.started_at - s.due_at).total_seconds() for s in rows if s.run and s.run.started_at]
        self.results.put(
            "due_same_second", count=count, dispatch_p50_s=median(dispatch), dispatch_p99_s=percentile(dispatch, 99),
            start_p50_s=median(start), start_p99_s=percentile(start, 99),
        )
        self.log(f"{count} due in one second: dispatch p99 {percentile(dispatch, 99):.2f} s, "
                 f"start p99 {percentile(start, 99):.2f} s")
        fixtures.reset_runs()

    # --- 6. isolation -----------------------------------------------------------------------------

    def isolation(self) -> None:
        """Sequential sync calls while a list batch drains on the bulk queue, against their idle p99."""
        from logs.models import FINISHED_STATUSES, StepRun, WorkflowRun

        count = self.size.list_items
        fixtures.reset_runs()
        run = self._wait_run(self._call("bench_list", {"limit": count}), timeout=300)
        batch_id = StepRun.objects.get(run=run, key="schedule").output["batch_id"]
        items = WorkflowRun.objects.filter(trigger="list", parent_run=run)
        deadline = time.monotonic() + 30
        while not items.filter(status__in=FINISHED_STATUSES).exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        checks = {"n": 0, "drained": False}

        def drained() -> bool:
            # Counting 10,000 rows costs the database: looked at every 25 calls only.
            checks["n"] += 1
            if checks["n"] % 25 == 0:
                checks["drained"] = items.filter(status__in=FINISHED_STATUSES).count() >= count
            return checks["drained"]

        result = sequential(self.port, "/api/wf/bench_sync", fixtures.BODY, calls=self.size.isolation_calls,
                            headers=self.auth, until=drained, warmup=0)
        done = items.filter(status__in=FINISHED_STATUSES).count()
        self.results.put("isolation", p50_ms=result.p50, p99_ms=result.p99, calls=result.calls,
                         items_finished_during=done, items=count, batch=batch_id, still_draining=not drained())
        self.log(f"isolation: sync p50 {result.p50:.2f} ms p99 {result.p99:.2f} ms with the batch draining "
                 f"({done}/{count} items finished by the end of the calls)")
        self.memory_all("after isolation")
        fixtures.reset_runs()
        self.purge_queues()
