"""Fault drills: real worker, beat and web processes, a private Redis to restart, and the drill tables.

Each drill appends its table (accepted, finished, lost, duplicated, …) to TABLES; the tables are
printed in pytest's terminal summary, so `make test` and `make reliability` show them.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.integration.conftest import _empty_test_queues, processes  # noqa: F401  (fixtures, shared)

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
LARGE = os.environ.get("ENGINE_ROOM_RELIABILITY_SIZE") == "large"
TABLES: list["DrillTable"] = []


def size(bounded: int, large: int) -> int:
    """The drill's size: bounded for `make test`, large for `make reliability`."""
    return large if LARGE else bounded


@dataclass
class DrillTable:
    """One drill's outcome; `lost` and `duplicated` must be 0."""

    drill: str
    accepted: int = 0
    finished: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: dict = field(default_factory=dict)

    def line(self) -> str:
        extra = "  ".join(f"{key}={value}" for key, value in self.notes.items())
        return (f"{self.drill:<34} {self.accepted:>9} {self.finished:>9} {self.lost:>6} {self.duplicated:>11}"
                f"  {extra}")


@pytest.fixture
def drill_table(request):
    """A table for this drill, printed at the end of the session (also when the drill fails)."""

    def make(name: str) -> DrillTable:
        table = DrillTable(f"{name}{' (large)' if LARGE else ''}")
        TABLES.append(table)
        return table

    return make


def pytest_terminal_summary(terminalreporter):
    if not TABLES:
        return
    terminalreporter.section("reliability drills")
    terminalreporter.write_line(
        f"{'drill':<34} {'accepted':>9} {'finished':>9} {'lost':>6} {'duplicated':>11}  notes")
    for table in TABLES:
        terminalreporter.write_line(table.line())


class RedisServer:
    """A redis-server of the drill's own on a free port: never the machine's shared one."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # No persistence: a restart loses every queued message, the hardest case for delivery.
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=(self.dir / "redis.log").open("a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                import redis

                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("the drill's redis-server did not start")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no save, no goodbye to clients."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()


@pytest.fixture
def redis_server(tmp_path):
    """A private Redis for drills that restart it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class WebServer:
    """gunicorn (gthread, as in production) serving the app against the test database."""

    def __init__(self, env: dict, tmp_path: Path, threads: int = 8):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"web-{self.port}.log"
        self.process = subprocess.Popen(
            [GUNICORN, "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
             "--workers", "1", "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "5",
             "--access-logfile", "-", "--logger-class", "config.gunicorn_logging.AccessLogger"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz?scope=web", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def logs(self, full: bool = False) -> str:
        text = self.log.read_text()
        return text if full else text[-6000:]


@pytest.fixture
def web_server(processes, tmp_path):  # noqa: F811  (the shared fixture, used here)
    """web_server(env={...}) -> a running gunicorn; its database connections are named engine_room_test_web."""
    started = []

    def start(env: dict | None = None, threads: int = 8) -> WebServer:
        server = WebServer({**processes.env, "ENGINE_ROOM_DB_APPLICATION_NAME": "engine_room_test_web",
                            **(env or {})}, tmp_path, threads)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
