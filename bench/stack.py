"""The processes a benchmark needs: its own database and Redis number, the Procfile's processes, the baseline's."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
DB_NAME = os.environ.get("BENCH_DB_NAME", "engine_room_bench")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "8"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
QUEUE_PREFIX = "bench-"
# The baseline's processes read their own settings module (the rest of the environment is shared).
BASELINE_ENV = {"DJANGO_SETTINGS_MODULE": "bench.baseline.settings"}
DATABASE_URL = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DB_NAME}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def psql(sql: str, database: str = "postgres") -> str:
    """Run one statement with psql as the postgres user on loopback; its output."""
    result = subprocess.run(
        ["psql", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"], "-d", database, "-v", "ON_ERROR_STOP=1",
         "-tAc", sql],
        capture_output=True, text=True, check=False,
    )
    if result.returncode:
        raise RuntimeError(f"psql failed: {sql}\n{result.stderr}")
    return result.stdout.strip()


def database_create() -> None:
    """A fresh benchmark database (dropped first if a killed run left one)."""
    database_drop()
    psql(f'CREATE DATABASE "{DB_NAME}"')


def database_drop() -> None:
    psql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def environment(tmp: Path) -> dict:
    """What every process of the stack (and this one) reads: production settings, the bench's own stores."""
    # Production settings serve static files through WhiteNoise, which warns when the folder is missing.
    (tmp / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENGINE_ROOM_ENV": "production",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": "bench-not-a-secret-" + "x" * 40,
        # A fixed Fernet key: the bench stores no real secret.
        "ENGINE_ROOM_SECRETS_KEY": "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmU=",
        "ENGINE_ROOM_VAR_DIR": str(tmp / "var"),
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "ENGINE_ROOM_REDIS": "1",
        "ENGINE_ROOM_QUEUE_PREFIX": QUEUE_PREFIX,
        "ENGINE_ROOM_CACHE_PREFIX": "er-bench",
        "ENGINE_ROOM_DB_APPLICATION_NAME": "engine_room_bench",
        # The per-token limit stays on (one INCR per call, as always) but high enough for a load test.
        "ENGINE_ROOM_RATE_PER_TOKEN": "100000000/min",
        "ENGINE_ROOM_RATE_PER_IP": "100000000/min",
        "EMAIL_URL": "consolemail://",
        "BASELINE_QUEUE": f"{QUEUE_PREFIX}baseline",
    }


def procfile() -> dict[str, str]:
    """The Procfile's command lines by process name."""
    lines = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            lines[name.strip()] = command.strip()
    return lines


def baseline_command(command: str) -> str:
    """A Procfile line turned into the same line for the baseline project (its WSGI module or Celery app)."""
    replaced = command.replace("gunicorn config.wsgi", "gunicorn bench.baseline.wsgi")
    replaced = replaced.replace("celery -A config ", "celery -A bench.baseline.celery_app ")
    if replaced == command:
        raise RuntimeError(f"Cannot derive the baseline's command from the Procfile line: {command}")
    return replaced


def set_option(command: str, option: str, value: str) -> str:
    """A command line with `option VALUE` replaced (after shell expansion of the Procfile's defaults)."""
    pattern = re.compile(rf"{re.escape(option)} \S+")
    if not pattern.search(command):
        raise RuntimeError(f"No {option} in the Procfile line: {command}")
    return pattern.sub(f"{option} {value}", command, count=1)


def drop_flag(command: str, flag: str) -> str:
    """A command line without the option `flag` (one that takes no value)."""
    return re.sub(rf"\s{re.escape(flag)}(?=\s|$)", "", command)


@dataclass
class Process:
    """One started command (its own process group) and its log."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Stack:
    """Starts and stops every process of a benchmark; stop_all() runs on exit, even after a failure."""

    tmp: Path
    env: dict
    running: list[Process] = field(default_factory=list)
    counter: int = 0

    def start(self, name: str, command: str, env: dict | None = None) -> Process:
        """Start a Procfile-style command line through bash (which expands ${VAR:-default})."""
        self.counter += 1
        log = self.tmp / f"{self.counter:02d}-{name}.log"
        popen = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=ROOT, env={**self.env, **(env or {})},
            stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        process = Process(name, popen, log)
        self.running.append(process)
        return process

    def wait_log(self, process: Process, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in process.tail(200_000):
                return
            if not process.alive():
                break
            time.sleep(0.1)
        raise RuntimeError(f"{process.name} did not start (waited for {text!r}):\n{process.tail()}")

    def wait_http(self, process: Process, url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                break
            try:
                urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback only
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means the server is up
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{process.name} did not answer {url}:\n{process.tail()}")

    def web(self, name: str, command: str, port: int, probe_path: str, env: dict | None = None) -> Process:
        process = self.start(name, command, {**(env or {}), "BIND": f"127.0.0.1:{port}"})
        self.wait_http(process, f"http://127.0.0.1:{port}{probe_path}")
        return process

    def worker(self, name: str, command: str, env: dict | None = None) -> Process:
        process = self.start(name, command, env)
        self.wait_log(process, " ready.")
        return process

    def stop(self, process: Process, timeout: float = 20) -> None:
        """SIGTERM the process group (a warm shutdown), SIGKILL what is left after timeout."""
        if process.alive():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            # Children of a worker that outlived their main process die with the group.
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process, timeout=10)


# --- memory ---------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the ppid follows the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def pss_mb(pid: int) -> float:
    """Proportional set size of a process and all its descendants, in MB (shared pages split between them)."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024
