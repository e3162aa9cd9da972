"""The outbound HTTP guard: internal addresses are refused at connect time, with nothing sent."""
import ipaddress
import socket

import pytest
import requests

from config.errors import ErrorCode
from workflows import outbound
from workflows.outbound import OutboundBlockedError, address_refusal, check_address


@pytest.fixture(autouse=True)
def connects(monkeypatch):
    """Every socket connect made during the test; one to a non-loopback address fails the test."""
    attempts: list = []
    original_connect = socket.socket.connect

    def connect(sock, address):
        if isinstance(address, tuple):
            attempts.append(address)
            # This machine must send nothing past loopback: a guard bug fails the test, not the network.
            assert ipaddress.ip_address(address[0].split("%", 1)[0]).is_loopback, f"connect to {address}"
        return original_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def no_allow_list(settings):
    settings.ENGINE_ROOM_HTTP_ALLOW = []


def get(url: str) -> outbound.OutboundResponse:
    return outbound.send(requests.Request("GET", url).prepare(), timeout=5)


@pytest.mark.parametrize(
    "host, address",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", None),
        ("10.0.0.1", "10.0.0.1"),
        ("192.168.1.1", "192.168.1.1"),
        ("172.16.0.1", "172.16.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("100.64.0.1", "100.64.0.1"),
        ("[::1]", "::1"),
        ("[fe80::1]", "fe80::1"),
        ("[fd00::1]", "fd00::1"),
        ("0.0.0.0", "0.0.0.0"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[::ffff:169.254.169.254]", "::ffff:169.254.169.254"),
        ("2130706433", "127.0.0.1"),
        ("224.0.0.1", "224.0.0.1"),
    ],
)
def test_internal_addresses_are_refused_without_traffic(no_allow_list, connects, httpserver, host, address):
    port = httpserver.port

    with pytest.raises(OutboundBlockedError) as caught:
        get(f"http://{host}:{port}/latest/meta-data/")

    error = caught.value
    assert error.code == ErrorCode.HTTP_BLOCKED and error.retryable is False
    assert error.host == host.strip("[]")
    assert error.address == address if address else error.address in ("127.0.0.1", "::1")
    assert host.strip("[]") in error.message and error.address in error.message
    assert connects == []
    assert httpserver.log == []


def test_every_resolved_address_is_checked(no_allow_list, settings, monkeypatch, connects):
    settings.ENGINE_ROOM_HTTP_ALLOW = ["127.0.0.1"]

    def resolve(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)

    with pytest.raises(OutboundBlockedError, match="10.1.2.3"):
        get("http://mixed.example.test/")
    assert connects == []


def test_connects_to_the_address_it_checked(settings, monkeypatch, httpserver, connects):
    settings.ENGINE_ROOM_HTTP_ALLOW = ["127.0.0.1"]
    httpserver.expect_request("/").respond_with_data("reached")
    answers = iter(["127.0.0.1", "10.9.9.9"])
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        # A rebinding resolver: the first answer passes the check, a later one points inside.
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    response = get(f"http://rebind.example.test:{httpserver.port}/")

    assert response.content == b"reached"
    assert lookups == ["rebind.example.test"]
    assert connects == [("127.0.0.1", httpserver.port)]
    assert httpserver.log[0][0].headers["Host"] == f"rebind.example.test:{httpserver.port}"


def test_an_allowed_cidr_lets_the_address_through(settings, httpserver):
    settings.ENGINE_ROOM_HTTP_ALLOW = ["127.0.0.0/8"]
    httpserver.expect_request("/ok").respond_with_data("fine")

    response = get(f"http://127.0.0.1:{httpserver.port}/ok")

    assert response.status == 200 and response.content == b"fine"


def test_an_allowed_host_name_lets_its_addresses_through(settings, httpserver):
    settings.ENGINE_ROOM_HTTP_ALLOW = ["LOCALHOST."]
    httpserver.expect_request("/ok").respond_with_data("fine")

    assert get(f"http://localhost:{httpserver.port}/ok").content == b"fine"
    with pytest.raises(OutboundBlockedError):
        get(f"http://127.0.0.1:{httpserver.port}/ok")


def test_allow_entries_only_cover_what_they_name(settings):
    settings.ENGINE_ROOM_HTTP_ALLOW = ["10.0.0.0/24", "metadata.internal", "fd00::5"]

    check_address("10.0.0.7", "10.0.0.7")
    check_address("metadata.internal", "169.254.169.254")
    check_address("fd00::5", "fd00::5")
    for host, address in [("10.0.1.1", "10.0.1.1"), ("other.internal", "169.254.169.254"), ("fd00::6", "fd00::6")]:
        with pytest.raises(OutboundBlockedError):
            check_address(host, address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"])
def test_public_addresses_pass_the_check(no_allow_list, address):
    # Only the check function: nothing may be sent to a public address from this machine.
    assert address_refusal(ipaddress.ip_address(address)) is None
    check_address("example.com", address)


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fc00::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:100.64.0.1", "shared"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"),
        # Deprecated (RFC 3879), still routed inside some sites; no Python release counts it private.
        ("fec0::1", "site-local"),
        ("feff:ffff::1", "site-local"),
    ],
)
def test_refusal_reasons(address, reason):
    assert address_refusal(ipaddress.ip_address(address)).startswith(reason)


# Ranges early 3.12 releases' ipaddress counts as global (later ones as private: the reason varies with
# the interpreter, the refusal does not), checked against IANA's special-purpose lists.
@pytest.mark.parametrize("address", ["3fff::1", "192.0.0.8"])  # IPv6 documentation (RFC 9637); IETF protocol block
def test_special_purpose_ranges_are_refused_on_every_python(address):
    assert address_refusal(ipaddress.ip_address(address)) in ("private", "not public")


@pytest.mark.parametrize(
    "source, target, leaves",
    [
        ("http://api.example.com/a", "https://api.example.com/b", False),  # the upgrade requests allows too
        ("https://api.example.com:443/a", "https://API.example.com/b", False),
        ("http://api.example.com/a", "https://api.example.com:8443/b", True),
        ("http://api.example.com:8080/a", "https://api.example.com/b", True),
        ("https://api.example.com/a", "http://api.example.com/b", True),  # a downgrade
        ("https://api.example.com/a", "https://other.example.com/a", True),
        ("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a", True),
    ],
)
def test_which_redirects_leave_the_origin(source, target, leaves):
    # Leaving it drops the run's credentials (test_http_request.py follows real redirects between two servers).
    assert outbound._leaves_origin(source, target) is leaves


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://127.0.0.1:70/"])
def test_only_http_and_https(url, connects):
    with pytest.raises(OutboundBlockedError, match="only http and https"):
        get(url)
    assert connects == []


def test_sessions_ignore_proxies_from_the_environment(monkeypatch, httpserver):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("http_proxy", "http://10.0.0.1:3128")
    httpserver.expect_request("/direct").respond_with_data("direct")

    assert get(httpserver.url_for("/direct")).content == b"direct"


def test_a_proxy_is_refused():
    with outbound.guarded_session() as session, pytest.raises(OutboundBlockedError, match="proxy"):
        session.get("http://example.com/", proxies={"http": "http://10.0.0.1:3128"})


def test_redirect_bodies_are_not_read(httpserver, settings):
    settings.ENGINE_ROOM_HTTP_ALLOW = ["127.0.0.1", "::1"]
    produced = []

    def huge_redirect(request):
        from werkzeug import Response

        def chunks():
            for _ in range(10_000):
                produced.append(1)
                yield b"r" * 1000

        return Response(chunks(), status=302, headers={"Location": "/target"})

    httpserver.expect_request("/redirect").respond_with_handler(huge_redirect)
    httpserver.expect_request("/target").respond_with_data("target")

    response = get(httpserver.url_for("/redirect"))

    assert response.content == b"target"
    assert len(produced) < 10_000


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for "localhost" and its key, as files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_https_keeps_the_host_name_for_sni_and_certificate_checks(tls_files, connects):
    import ssl

    from pytest_httpserver import HTTPServer

    cert_path, key_path = tls_files
    server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.expect_request("/secure").respond_with_data("over tls")
    server.start()
    try:
        with outbound.guarded_session() as session:
            response = session.get(f"https://localhost:{server.port}/secure", verify=str(cert_path), timeout=5)
    finally:
        server.stop()

    assert response.text == "over tls"
    assert server_names == ["localhost"]
    assert connects and all(address[0] in ("127.0.0.1", "::1") for address in connects)
