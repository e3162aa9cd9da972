"""The Procfile's web line: its processes each listen on their own socket and share a burst of connections."""
import http.client
import re
import subprocess
import time

import pytest

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
