"""The Procfile's web line: its processes each listen on their own socket and share a burst of connections, and
its access log never shows an `?api_token=` value."""
import http.client
import re
import subprocess
import time

import pytest
import requests

from api_endpoints.services import token_create
from tests.conftest import free_port
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _sockets(port: int, state: str) -> list[int]:
    """The pids owning TCP sockets on `port` in `state` (ss from iproute2)."""
    shown = subprocess.run(["ss", "-Htnp", "state", state, f"( sport = :{port} )"], capture_output=True, text=True,
                           check=True).stdout
    return [int(pid) for pid in re.findall(r"pid=(\d+),", shown)]


def test_the_web_processes_share_a_burst_of_connections(processes):
    """Each gunicorn process listens on a socket of its own (--reuse-port), so the kernel spreads a burst of
    keep-alive connections over both rather than leaving one process to take them all."""
    port = free_port()
    web = processes.procfile("web", env={"BIND": f"127.0.0.1:{port}"}, ready="Booting worker")
    log = next(path for process, path in processes.running if process is web)
    wait_until(lambda: log.read_text().count("Booting worker") == 2, message="both web processes")
    listening = wait_until(lambda: len(_sockets(port, "listening")) == 2 and _sockets(port, "listening"),
                           message="a listening socket per web process")
    assert len(set(listening)) == 2

    connections = []
    for _ in range(32):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        connections.append(connection)  # kept open, as a load balancer's or wrk's keep-alive connections
    time.sleep(0.2)
    owners = _sockets(port, "established")
    for connection in connections:
        connection.close()
    shares = sorted(owners.count(pid) for pid in set(listening))
    assert sum(shares) == 32
    # A hash of 32 addresses over two sockets: fewer than 4 on one side is a one-in-a-hundred-thousand draw.
    assert shares[0] >= 4, shares


def test_the_access_log_masks_api_tokens_in_the_request_line_and_the_referer(processes):
    """Swagger UI opened with ?api_token= fetches the schema with it, the page's URL as Referer: the access log
    lists both requests by path, with the token masked in each spelling Django reads it in."""
    token = token_create(name="docs").value
    port = free_port()
    web = processes.procfile("web", env={"BIND": f"127.0.0.1:{port}", "WEB_WORKERS": "1"}, ready="Booting worker")
    log = next(path for process, path in processes.running if process is web)
    base = f"http://127.0.0.1:{port}"
    docs = requests.get(f"{base}/api/docs/?api_token={token}", timeout=30)
    assert docs.status_code == 200
    # http.client sends the URL as written (requests would decode `%5F`); Django reads `api%5Ftoken` as api_token.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", f"/api/schema/?format=json&API_Token=x&api%5Ftoken={token}",
                       headers={"Referer": f"{base}/api/docs/?api_token={token}"})
    assert connection.getresponse().status == 200  # the real token, used
    connection.close()
    wait_until(lambda: log.read_text().count('"GET /api/') == 2, message="both access log lines")
    text = log.read_text()
    lines = [line for line in text.splitlines() if '"GET /api/' in line]
    assert '"GET /api/docs/?api_token=[masked] HTTP/1.1" 200' in lines[0]
    assert '"GET /api/schema/?format=json&API_Token=[masked]&api%5Ftoken=[masked] HTTP/1.1" 200' in lines[1]
    assert f'"{base}/api/docs/?api_token=[masked]"' in lines[1]  # the Referer
    assert token not in text and token.split("_")[-1] not in text
