"""Real processes for the integration layer: Celery workers and beat against the test database."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def _queues() -> str:
    return ",".join([settings.QUEUE_INTERACTIVE, settings.QUEUE_DEFAULT, settings.QUEUE_BULK])


@pytest.fixture(autouse=True)
def _empty_test_queues():
    """Messages left by earlier tests must not reach this test's worker."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield


class Processes:
    """Starts and stops the real celery processes one test needs, and keeps their logs."""

    def __init__(self, env: dict, tmp_path: Path):
        self.env = env
        self.tmp_path = tmp_path
        self.running: list[tuple[subprocess.Popen, Path]] = []

    def _spawn(self, name: str, args: list[str], extra_env: dict | None) -> subprocess.Popen:
        log = self.tmp_path / f"{name}-{len(self.running)}.log"
        process = subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((process, log))
        return process

    def worker(self, *, concurrency: int = 1, queues: str | None = None, env: dict | None = None,
               name: str = "worker") -> subprocess.Popen:
        """A `celery worker` process; returns once it says it is ready."""
        process = self._spawn(name, [
            CELERY, "-A", "config", "worker", "-Q", queues or _queues(), "--concurrency", str(concurrency),
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "-n", f"{name}{len(self.running)}@%h",
        ], env)
        self._wait_for(process, "ready.")
        return process

    def beat(self, *, env: dict | None = None) -> subprocess.Popen:
        """A `celery beat` process with the database scheduler."""
        schedule = self.tmp_path / "beat-schedule"
        process = self._spawn("beat", [
            CELERY, "-A", "config", "beat", "--loglevel", "INFO", "-s", str(schedule), "--max-interval", "1",
        ], env)
        self._wait_for(process, "beat: Starting")
        return process

    def procfile(self, name: str, *, env: dict | None = None, ready: str = "ready.") -> subprocess.Popen:
        """A line of the Procfile, run through the shell as honcho runs it (so its ${VAR:-default}s expand)."""
        line = next(text.partition(":")[2].strip() for text in (ROOT / "Procfile").read_text().splitlines()
                    if text.startswith(f"{name}:"))
        path = f"{Path(CELERY).parent}{os.pathsep}{self.env.get('PATH', '')}"
        process = self._spawn(name, ["bash", "-c", f"exec {line}"], {"PATH": path, **(env or {})})
        self._wait_for(process, ready)
        return process

    def _wait_for(self, process: subprocess.Popen, text: str, timeout: float = 60) -> None:
        log = next(log for proc, log in self.running if proc is process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text():
                return
            if process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{log.name} did not start:\n{log.read_text()[-3000:]}")

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the process and all its children (a prefork worker's pool), as a crash would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process, _ in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for _, log in self.running)


@pytest.fixture
def processes(database_url, tmp_path, settings):
    """Launch real celery workers/beat against the test database; they are stopped after the test."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "ENGINE_ROOM_QUEUE_PREFIX": settings.QUEUE_PREFIX,
        "ENGINE_ROOM_HTTP_ALLOW": ",".join(settings.ENGINE_ROOM_HTTP_ALLOW),
        "ENGINE_ROOM_DB_APPLICATION_NAME": "engine_room_test_worker",
        "PYTHONUNBUFFERED": "1",
    }
    started = Processes(env, tmp_path)
    yield started
    started.stop_all()


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    """Poll until predicate() is truthy; its last value is returned. Generous bounds, never a benchmark."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
