"""Load generators: wrk with a Lua script for concurrent POSTs, and a keep-alive Python client for sequential calls."""
import http.client
import json
import math
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# wrk calls done() once with every thread's counters; status codes are gathered per thread by response().
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(headers)s
%(delay)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} end
function response(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("codes")) do agg[tostring(status)] = (agg[tostring(status)] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(agg) do table.insert(parts, string.format('"%%s": %%d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"mean_us": %%f, "errors": %%d, "codes": {%%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, e.connect + e.read + e.write + e.timeout, table.concat(parts, ", ")))
end
"""

# Paced load: the thread's requests get send times `interval_ms` apart, each connection taking the next
# one when its answer is in (wrk's delay(), called before each request), so that the rate is the same
# whether calls take 5 ms or 50 (a fixed pause per connection gave connections / (pause + latency), which
# moved with the latency it was meant to probe). Behind schedule, requests go at once to catch up, by at
# most a second's worth. The clock is CLOCK_MONOTONIC through LuaJIT's FFI: Lua itself has no finer one.
PACED_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local slot = nil
function delay()
  local now = now_ms()
  slot = math.max((slot or now) + %(interval_ms)f, now - 1000)
  return math.max(0, math.floor(slot - now + 0.5))
end
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return percentile(values, 50)


@dataclass
class WrkResult:
    """One wrk run: requests/s, latency percentiles (ms) and status codes."""

    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.codes.items() if code.startswith("2"))


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk(url: str, body: dict, *, connections: int, seconds: float, headers: dict | None = None,
        threads: int = 1, tmp: Path, rate: float | None = None) -> WrkResult:
    """POST body to url from `connections` keep-alive connections for `seconds`; one wrk thread is
    enough for a few thousand requests/s and leaves the cores to the server. With `rate` (requests/s),
    the load is paced to that rate whatever the server's latency (PACED_SCRIPT), as long as the
    connections suffice; without it, each connection sends its next request as soon as it has its answer."""
    script = tmp / "post.lua"
    header_lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items())
    delay = PACED_SCRIPT % {"interval_ms": 1000 * threads / rate} if rate is not None else ""
    script.write_text(WRK_SCRIPT % {"body": json.dumps(json.dumps(body)), "headers": header_lines, "delay": delay})
    command = [wrk_path() or "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
               "--timeout", "10s", "-s", str(script), url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((line for line in result.stdout.splitlines() if line.startswith("BENCH-JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH-JSON "))
    duration = data["duration_us"] / 1e6
    return WrkResult(
        connections=connections, seconds=duration, requests=data["requests"],
        rps=data["requests"] / duration if duration else 0.0,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        errors=data["errors"], codes=data["codes"],
    )


@dataclass
class Sequential:
    """Latencies (ms) and status codes of calls made one after another on one keep-alive connection."""

    latencies_ms: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def calls(self) -> int:
        return len(self.latencies_ms)


def sequential(port: int, path: str, body: dict, *, calls: int, headers: dict | None = None,
               max_seconds: float = 120, until=None, warmup: int = 20) -> Sequential:
    """`calls` POSTs in a row (after `warmup` unmeasured ones), stopping early at max_seconds or when until() is true."""
    payload = json.dumps(body).encode()
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    result = Sequential()

    def call() -> tuple[float, int]:
        nonlocal connection
        began = time.perf_counter()
        try:
            connection.request("POST", path, payload, request_headers)
            response = connection.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            # The server closed the keep-alive connection: reconnect and count the call as it went.
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("POST", path, payload, request_headers)
            response = connection.getresponse()
            response.read()
        return (time.perf_counter() - began) * 1000, response.status

    for _ in range(warmup):
        call()
    result.started = time.time()
    deadline = time.monotonic() + max_seconds
    while result.calls < calls and time.monotonic() < deadline:
        if until is not None and until():
            break
        elapsed, status = call()
        result.latencies_ms.append(elapsed)
        result.codes[status] = result.codes.get(status, 0) + 1
    result.finished = time.time()
    connection.close()
    return result
