"""The outbound HTTP guard with a local resolver stub: names that resolve inside, redirects to such
names, DNS rebinding between hops, and the IPv6 spellings of internal addresses — refused before any
packet leaves. (Literal addresses, mixed answers, proxies and schemes: tests/workflows/test_outbound.py.)
"""
import ipaddress
import socket

import pytest
import requests

from config.errors import ErrorCode
from workflows import outbound
from workflows.outbound import OutboundBlockedError


@pytest.fixture
def connects(monkeypatch):
    """Every socket connect; one that is not to loopback fails the test at once (nothing leaves)."""
    attempts: list = []
    original = socket.socket.connect

    def connect(sock, address):
        if isinstance(address, tuple):
            attempts.append(address[:2])
            assert ipaddress.ip_address(address[0].split("%", 1)[0]).is_loopback, f"connect to {address}"
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def resolver(monkeypatch):
    """A local DNS: resolver["name"] = ["addr", ...] or a callable returning them; other names fail."""
    answers: dict = {}
    lookups: list = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        lookups.append(host)
        if host not in answers:
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            found = [host]
        else:
            found = answers[host]() if callable(answers[host]) else answers[host]
        results = []
        for address in found:
            if ":" in address:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return results

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["__lookups__"] = lookups
    return answers


@pytest.fixture
def allow_loopback(settings):
    # The test's own HTTP server is on loopback; everything else stays refused.
    settings.ENGINE_ROOM_HTTP_ALLOW = ["127.0.0.1"]


def get(url: str) -> outbound.OutboundResponse:
    return outbound.send(requests.Request("GET", url).prepare(), timeout=5)


@pytest.mark.parametrize("address, reason", [
    ("169.254.169.254", "link-local"),          # AWS, GCP, Azure instance metadata
    ("100.100.100.200", "shared"),              # Alibaba Cloud metadata (carrier-grade NAT range)
    ("fd00:ec2::254", "private"),               # AWS metadata over IPv6
    ("64:ff9b::a9fe:a9fe", "link-local"),       # NAT64 spelling of 169.254.169.254
    ("2002:a9fe:a9fe::1", "link-local"),        # 6to4 spelling of 169.254.169.254
    ("::ffff:10.0.0.5", "private"),             # IPv4-mapped private address
    ("fe80::1%eth0", "link-local"),             # link-local with a zone
    ("ff02::1", "multicast"),
    ("0.1.2.3", "private"),
    ("255.255.255.255", "reserved"),
    ("198.18.0.1", "private"),                  # benchmarking range
    ("240.0.0.1", "reserved"),
    ("192.168.0.10", "private"),
])
def test_a_name_resolving_inside_is_refused_before_connecting(resolver, connects, settings, address, reason):
    settings.ENGINE_ROOM_HTTP_ALLOW = []
    resolver["internal.example.test"] = [address]

    with pytest.raises(OutboundBlockedError) as caught:
        get("http://internal.example.test/latest/meta-data/")

    assert caught.value.code == ErrorCode.HTTP_BLOCKED and caught.value.retryable is False
    assert reason in caught.value.message and "internal.example.test" in caught.value.message
    assert connects == []


def test_metadata_host_names_are_refused(resolver, connects, settings):
    settings.ENGINE_ROOM_HTTP_ALLOW = []
    resolver["metadata.google.internal"] = ["169.254.169.254"]
    with pytest.raises(OutboundBlockedError, match="169.254.169.254"):
        get("http://metadata.google.internal/computeMetadata/v1/")
    assert connects == []


def test_a_redirect_to_a_name_resolving_inside_is_refused_at_that_hop(resolver, connects, allow_loopback,
                                                                      httpserver):
    resolver["public.example.test"] = ["127.0.0.1"]
    resolver["metadata.example.test"] = ["169.254.169.254"]
    httpserver.expect_request("/go").respond_with_data(
        "", status=302, headers={"Location": "http://metadata.example.test/latest/meta-data/iam/"})

    with pytest.raises(OutboundBlockedError, match="metadata.example.test"):
        get(f"http://public.example.test:{httpserver.port}/go")

    assert connects == [("127.0.0.1", httpserver.port)]
    assert [request.path for request, _ in httpserver.log] == ["/go"]


def test_dns_rebinding_between_redirect_hops_is_refused(resolver, connects, allow_loopback, httpserver):
    """The same name answers loopback (allowed) first and a private address on the next hop's lookup."""
    answers = iter([["127.0.0.1"], ["10.0.0.7"]])
    resolver["rebind.example.test"] = lambda: next(answers)
    # Another port: a new connection, so the name is resolved (and checked) again.
    httpserver.expect_request("/first").respond_with_data(
        "", status=307, headers={"Location": f"http://rebind.example.test:{httpserver.port + 1}/second"})

    with pytest.raises(OutboundBlockedError, match="10.0.0.7"):
        get(f"http://rebind.example.test:{httpserver.port}/first")

    assert resolver["__lookups__"].count("rebind.example.test") == 2
    assert connects == [("127.0.0.1", httpserver.port)]


def test_one_bad_answer_among_good_ones_refuses_the_name(resolver, connects, allow_loopback):
    """A resolver may mix a reachable address with an internal one, hoping the client picks the second."""
    resolver["mixed.example.test"] = ["127.0.0.1", "169.254.169.254"]
    with pytest.raises(OutboundBlockedError, match="169.254.169.254"):
        get("http://mixed.example.test/")
    assert connects == []


@pytest.mark.django_db
def test_a_workflow_step_to_an_internal_name_fails_as_http_blocked_without_retrying(resolver, connects, settings,
                                                                                   make_workflow):
    """End to end: the step fails at once with http_blocked (not retried), the run says why."""
    from django.db import transaction

    from workflows import engine
    from workflows.services import run_enqueue

    settings.ENGINE_ROOM_HTTP_ALLOW = []
    resolver["metadata.google.internal"] = ["169.254.169.254"]
    workflow = make_workflow("fetch", retry={"max_attempts": 3, "backoff_seconds": 1}, steps=[
        {"key": "meta", "action": "http_request",
         "config": {"url": "http://metadata.google.internal/computeMetadata/v1/instance/"}},
    ])
    with transaction.atomic():
        run = run_enqueue(workflow=workflow, params={}, trigger="manual", dispatch_on_commit=False)
    run = engine.run_execute(run.id)

    assert run.status == "failed" and run.attempt == 1
    step = run.steps.get()
    assert step.error_code == "http_blocked" and "169.254.169.254" in step.error
    assert connects == []
