"""`make bench`: measure Engine Room and the bare baseline in one run, print the table, write BENCHMARKS.md."""
import argparse
import atexit
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stack  # noqa: E402
from bench.load import wrk_path  # noqa: E402

GROUPS = ("structure", "intake", "sync", "drain", "bulk", "accuracy", "isolation")


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=("full", "small"), default=os.environ.get("BENCH_SIZE", "full"),
                        help="full: the sizes of issue 8 (what BENCHMARKS.md reports); small: a quick check")
    parser.add_argument("--only", help=f"comma-separated figure groups: {', '.join(GROUPS)}")
    parser.add_argument("--save", help="also write the results as JSON to this file")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs for inspection")
    parser.add_argument("--render", metavar="JSON", help="only rewrite BENCHMARKS.md from results saved with --save")
    return parser.parse_args()


def _prerequisites() -> None:
    missing = [what for what, port in (("PostgreSQL", 5432), ("Redis", 6379)) if not stack.answers("127.0.0.1", port)]
    if missing:
        sys.exit(f"make bench needs {' and '.join(missing)} on 127.0.0.1 (the same services as make test).")
    if shutil.which("psql") is None:
        sys.exit("make bench needs the psql client (apt-get install -y postgresql-client).")
    if wrk_path() is None:
        # wrk is the load generator of the intake figures; it comes from Debian's archive.
        print("wrk is not installed: installing it with apt-get (Debian package 'wrk') ...", flush=True)
        result = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, text=True, check=False)
        if result.returncode or wrk_path() is None:
            sys.exit(f"Could not install wrk (run `apt-get update && apt-get install -y wrk` as root):\n{result.stderr}")


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal")))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_kb / 1024 / 1024, 1),
            "kernel": os.uname().release, "load_at_start": [round(x, 2) for x in os.getloadavg()]}


def _cpu_ticks() -> tuple[int, int]:
    """All CPU ticks and the stolen ones so far (/proc/stat)."""
    # A virtual machine's host can take a large, changing share of its cores, lowering every figure meanwhile.
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def _versions() -> dict:
    from importlib.metadata import version

    import redis as redis_client

    packages = {name: version(name) for name in ("Django", "djangorestframework", "celery", "kombu", "redis",
                                                  "psycopg", "gunicorn", "Jinja2", "django-celery-beat")}
    wrk = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)
    return {
        "python": sys.version.split()[0],
        **packages,
        "postgresql": stack.psql("SHOW server_version"),
        "redis_server": redis_client.Redis.from_url(stack.REDIS_URL).info("server")["redis_version"],
        "wrk": (wrk.stdout + wrk.stderr).split("\n")[0].split(" [")[0].removeprefix("wrk "),
    }


def _migrate(env: dict) -> None:
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "-m", "django", "migrate", "baseline", "--noinput", "-v0"], cwd=ROOT,
                   env={**env, "DJANGO_SETTINGS_MODULE": "bench.baseline.settings"}, check=True)


def main() -> int:
    args = _arguments()
    if args.render:
        from bench import report
        from bench.figures import Results

        results = Results(**json.loads(Path(args.render).read_text()))
        report.write_markdown(results, ROOT / "bench" / "BENCHMARKS.md")
        report.update_readme(results, ROOT / "README.md")
        print(report.table(results))
        return 0
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(GROUPS):
        sys.exit(f"Unknown figure group(s): {', '.join(sorted(only - set(GROUPS)))}; choose from {', '.join(GROUPS)}")
    _prerequisites()
    tmp = Path(tempfile.mkdtemp(prefix="engine-room-bench-"))
    env = stack.environment(tmp)
    os.environ.update(env)
    run_stack = stack.Stack(tmp=tmp, env=env)

    def cleanup() -> None:
        run_stack.stop_all()
        if not args.keep:
            try:
                stack.database_drop()
            except RuntimeError as exc:
                print(f"Could not drop the benchmark database: {exc}", file=sys.stderr)
            try:
                # The bench's own Redis database number: nothing else uses it.
                __import__("redis").Redis.from_url(stack.REDIS_URL).flushdb()
            except Exception as exc:  # Redis gone: nothing of ours is left in it to clean
                print(f"Could not empty Redis database {stack.REDIS_DB}: {exc}", file=sys.stderr)
            shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(cleanup)
    # A Ctrl-C or a kill still stops every process the benchmark started.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda *_: sys.exit(130))

    from bench.figures import SIZES, Bench, Results

    size = SIZES[args.size]
    results = Results(size=size.name, started=datetime.now(UTC).isoformat(timespec="seconds"), machine=_machine(),
                      limits=dataclasses.asdict(size))
    began, ticks_at_start = time.monotonic(), _cpu_ticks()
    print(f"Engine Room benchmark ({size.name}); logs in {tmp}", flush=True)
    stack.database_create()
    redis_db = __import__("redis").Redis.from_url(stack.REDIS_URL)
    redis_db.flushdb()
    _migrate(env)

    import django

    django.setup()
    from bench import fixtures

    bench = Bench(size, run_stack, results, only)
    bench.token = fixtures.seed()
    results.versions = _versions()
    try:
        if bench.wanted("structure"):
            bench.structure()
        fixtures.reset_runs()
        bench.purge_queues()
        needs_baseline = bench.wanted("intake") or bench.wanted("sync") or bench.wanted("drain")
        bench.start_web()
        if needs_baseline:
            bench.start_base_web()
        if bench.wanted("intake"):
            bench.log("1. webhook intake burst (no worker draining)")
            bench.intake_burst()
        if needs_baseline:
            worker = bench.base_worker(f"{stack.QUEUE_PREFIX}baseline")
            bench.memory("baseline worker", "after start", worker)
            if bench.wanted("intake"):
                bench.sustained_baseline()
            if bench.wanted("sync"):
                bench.sync_baseline()
            bench.memory("baseline worker", "after load", worker)
            run_stack.stop(worker)
            if bench.wanted("drain"):
                bench.drain_baseline()
            run_stack.stop(bench.base_web)
            bench.base_web = None
        bench.start_workers()
        time.sleep(2)
        # The web's own "after start" was taken when it started, before the intake load.
        bench.memory_workers("after start")
        if bench.wanted("intake"):
            bench.log("1. sustained webhook → finished run")
            bench.sustained_product()
        if bench.wanted("sync") or bench.wanted("isolation"):
            bench.log("2. sync calls, idle")
            bench.sync_product()
        if bench.wanted("accuracy"):
            bench.log("5. scheduling accuracy")
            bench.accuracy()
        if bench.wanted("bulk"):
            bench.log("4. bulk: schedule_workflow_on_list")
            bench.bulk()
        if bench.wanted("isolation"):
            bench.log("6. isolation: sync calls while a list batch drains")
            bench.isolation()
        if bench.wanted("drain"):
            bench.log("3 and 7. run drain, one worker and two")
            bench.drain_product()
        time.sleep(1)
        bench.memory_all("at the end")
    finally:
        results.seconds = round(time.monotonic() - began, 1)
        results.machine["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        total, stolen = (end - start for end, start in zip(_cpu_ticks(), ticks_at_start, strict=True))
        results.machine["steal_percent"] = round(100 * stolen / total, 1) if total else 0.0
    from bench import report

    print()
    print(report.table(results))
    print(f"\nTotal: {results.seconds:.0f} s; CPU stolen by the host: {results.machine['steal_percent']}%")
    if args.save:
        Path(args.save).write_text(json.dumps(report.as_dict(results), indent=2, default=str))
    if not args.no_report and size.name == "full" and only is None:
        report.write_markdown(results, ROOT / "bench" / "BENCHMARKS.md")
        print("Wrote bench/BENCHMARKS.md" + (" and README.md's headline" if report.update_readme(
            results, ROOT / "README.md") else ""))
    elif not args.no_report:
        print("(BENCHMARKS.md is only written by a full run of every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
