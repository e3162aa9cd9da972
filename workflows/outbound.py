"""The outbound HTTP guard: every address is checked where the socket connects, redirects hop by hop."""
import ipaddress
import socket
import sys
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family

from config.errors import ActionError, ErrorCode
from workflows import expressions

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
ALLOWED_SCHEMES = ("http", "https")
USER_AGENT = "Engine Room"
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
# Prefixes whose addresses carry an IPv4 address that a gateway on the path will connect to.
_NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")
# Special-purpose ranges (IANA's registries) that Python 3.12's ipaddress counts as global.
_NOT_GLOBAL_NETWORKS = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments; 3.12 knows only parts of it
    ipaddress.ip_network("3fff::/20"),  # IPv6 documentation (RFC 9637)
)
_BODY_HEADERS = ("Content-Type", "Content-Length", "Transfer-Encoding")
_CROSS_ORIGIN_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundBlockedError(ActionError):
    """An outbound request refused by the guard: a forbidden address, scheme or route."""

    code = ErrorCode.HTTP_BLOCKED

    def __init__(self, message: str, *, host: str = "", address: str = ""):
        super().__init__(message, retryable=False, extra={"host": host, "address": address})
        self.host = host
        self.address = address


@dataclass
class OutboundResponse:
    """A finished outbound exchange: the last hop's status, headers and (size-capped) body."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_NETWORK:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why an address must not be reached from a workflow ("loopback", "private", …), or None."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refusal(embedded)
        if reason is not None:
            return f"{reason} (IPv4 {embedded} inside IPv6)"
        if ip.ipv4_mapped is not None:
            return None
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared", ip.version == 4 and ip in _SHARED_NETWORK),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        # Deprecated (RFC 3879), but still routed inside some sites, and not private to ipaddress.
        ("site-local", ip.version == 6 and ip.is_site_local),
        # Documentation, benchmarking and other special-purpose ranges: nothing a workflow should call.
        ("not public", not ip.is_global),
        ("not public", any(ip.version == network.version and ip in network for network in _NOT_GLOBAL_NETWORKS)),
    )
    for reason, refused in checks:
        if refused:
            return reason
    return None


def is_allowed(host: str, ip: IPAddress) -> bool:
    """Whether settings.ENGINE_ROOM_HTTP_ALLOW (IPs, CIDRs or host names) lets this host or address through."""
    name = _normalize_host(host)
    candidates = [ip] + ([ip.ipv4_mapped] if ip.version == 6 and ip.ipv4_mapped else [])
    for entry in settings.ENGINE_ROOM_HTTP_ALLOW:
        entry = entry.strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if _normalize_host(entry) == name:
                return True
            continue
        if any(candidate.version == network.version and candidate in network for candidate in candidates):
            return True
    return False


def check_address(host: str, address: str | IPAddress) -> None:
    """Raise OutboundBlockedError unless `host` may be reached at `address`."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    reason = address_refusal(ip)
    if reason is not None and not is_allowed(host, ip):
        # Python before 3.13 prints a mapped address in hex (::ffff:7f00:1); people know the dotted form.
        shown = f"::ffff:{ip.ipv4_mapped}" if ip.version == 6 and ip.ipv4_mapped else str(ip)
        raise OutboundBlockedError(
            f"Outbound request to {host} blocked: it resolves to {shown}, a {reason} address.",
            host=host,
            address=shown,
        )


def resolve_checked(host: str, port: int) -> list[tuple]:
    """Resolve `host` and check every address it has; getaddrinfo's results, safe to connect to."""
    host = host.strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        # Refused before the resolver runs, so the answer never depends on this machine's IPv6 support.
        check_address(host, literal)
    results = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    for *_, sockaddr in results:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the zone is not part of the address.
        check_address(host, sockaddr[0].split("%", 1)[0])
    return results


class _GuardedConnectionMixin:
    """Resolves the host itself and connects only to addresses it has checked.

    The socket goes to the very IP that was checked, so a DNS answer that changes between the check
    and the connect (rebinding) cannot reach another address; TLS still uses the host name for SNI
    and certificate checks, because urllib3 wraps the socket with `self.host`.
    """

    def _new_conn(self) -> socket.socket:
        try:
            results = resolve_checked(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        error: OSError | None = None
        for family, socktype, proto, _, sockaddr in results:
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except TimeoutError as exc:
                sock.close()
                raise urllib3.exceptions.ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise urllib3.exceptions.NewConnectionError(self, f"Failed to establish a new connection: {error}")


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    """An HTTP connection that refuses internal addresses."""


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    """An HTTPS connection that refuses internal addresses."""


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests transport adapter whose every connection goes through the guard."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # A proxy would connect to the target on our behalf, past every check above.
        raise OutboundBlockedError("Outbound requests through a proxy are not allowed.")


class GuardedSession(requests.Session):
    """A requests session that only speaks http/https through the guard and never follows redirects."""

    def __init__(self):
        super().__init__()
        # Proxies and .netrc credentials from the environment would bypass the guard or leak secrets.
        self.trust_env = False
        self.adapters.clear()
        adapter = GuardedAdapter()
        for scheme in ALLOWED_SCHEMES:
            self.mount(f"{scheme}://", adapter)

    def resolve_redirects(self, *args, **kwargs):
        # send() follows redirects hop by hop; requests' follower would first read a redirect's whole
        # body into memory, whatever its size.
        return iter(())


def guarded_session() -> GuardedSession:
    """A new session for outbound calls from workflows; use it as a context manager."""
    return GuardedSession()


def _check_scheme(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise OutboundBlockedError(
            f"Outbound request to {url!r} blocked: only http and https URLs are allowed.", host=parts.hostname or ""
        )


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)


def _leaves_origin(source: str, target: str) -> bool:
    """Whether a redirect goes to another scheme, host or port; not the upgrade of http to https on the
    same host and default ports, as requests has it: the first hop sent the credentials in the clear."""
    before, after = _origin(source), _origin(target)
    return before != after and (before, after) != (("http", before[1], 80), ("https", before[1], 443))


def _next_request(response: requests.Response, request, location: str):
    following = request.copy()
    following.prepare_url(urljoin(request.url, location), None)
    status = response.status_code
    if (status == 303 and request.method != "HEAD") or (status in (301, 302) and request.method == "POST"):
        following.method = "GET"
        following.body = None
        for name in _BODY_HEADERS:
            following.headers.pop(name, None)
    if _leaves_origin(request.url, following.url):
        _strip_credentials(following, status=status, source=request.url)
    return following


def _strip_credentials(following, *, status: int, source: str) -> None:
    """Drop what would hand the run's credentials to another origin (scheme, host and port)."""
    for name in _CROSS_ORIGIN_HEADERS:
        following.headers.pop(name, None)
    secrets = expressions.current_secrets.get()
    if secrets is None:
        return
    # A custom header (X-Api-Key: {{ secrets.K }}) is as much a credential as Authorization.
    for name, value in list(following.headers.items()):
        if secrets.appears_in(value):
            del following.headers[name]
    if isinstance(following.body, str | bytes) and secrets.appears_in(following.body):
        # A 307/308 asks for the same request again: sent without its body it would be another request,
        # which the target could act on; so the step stops and the workflow can call that URL itself.
        _, host, port = _origin(following.url)
        raise ActionError(
            f"Request to {urlsplit(source).hostname} was redirected ({status}) to {host}:{port}, another origin; "
            "its body holds a secret, which is not sent on there. Call that URL directly if it should have it.",
            code=ErrorCode.HTTP_FAILED,
        )


def _read_limited(response: requests.Response, *, max_bytes: int | None, deadline: float, host: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ActionError(f"response larger than {max_bytes} bytes", code=ErrorCode.HTTP_FAILED)
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise requests.exceptions.ReadTimeout(f"reading the response from {host} took too long")
        connection = response.raw.connection
        if connection is not None and connection.sock is not None:
            # Each read waits at most for what is left of the whole exchange's time, so a server that
            # trickles bytes cannot stretch it.
            connection.sock.settimeout(remaining)
        chunk = response.raw.read1(64 * 1024, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise ActionError(f"response larger than {max_bytes} bytes", code=ErrorCode.HTTP_FAILED)
        chunks.append(chunk)


def _as_action_error(exc: Exception, *, host: str, timeout: float) -> ActionError:
    if isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return ActionError(
            f"Request to {host} timed out after {timeout:g} s.", retryable=True, code=ErrorCode.HTTP_FAILED
        )
    if isinstance(exc, requests.exceptions.SSLError | urllib3.exceptions.SSLError):
        return ActionError(f"TLS error talking to {host}: {exc}", code=ErrorCode.HTTP_FAILED)
    if isinstance(exc, requests.exceptions.ConnectionError | urllib3.exceptions.ProtocolError | OSError):
        return ActionError(f"Could not reach {host}: {exc}", retryable=True, code=ErrorCode.HTTP_FAILED)
    return ActionError(f"Request to {host} failed: {exc}", code=ErrorCode.HTTP_FAILED)


def send(
    request: requests.PreparedRequest,
    *,
    timeout: float,
    max_bytes: int | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> OutboundResponse:
    """Send a prepared request through the guard, following up to `max_redirects` redirects.

    `timeout` bounds the whole exchange (connects, redirects and reading the body); the body is read
    up to `max_bytes`. Failures are ActionErrors: timeouts and connection errors are retryable, a
    blocked address (OutboundBlockedError), an oversized body or too many redirects are not.
    """
    deadline = time.monotonic() + timeout
    request.headers.setdefault("User-Agent", USER_AGENT)
    redirects = 0
    with guarded_session() as session:
        while True:
            _check_scheme(request.url)
            host = urlsplit(request.url).hostname or ""
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _as_action_error(requests.exceptions.Timeout(), host=host, timeout=timeout)
            try:
                response = session.send(request, stream=True, allow_redirects=False, timeout=remaining)
            except requests.exceptions.RequestException as exc:
                raise _as_action_error(exc, host=host, timeout=timeout) from exc
            with response:
                location = session.get_redirect_target(response)
                if response.status_code in _REDIRECT_STATUSES and location:
                    if redirects == max_redirects:
                        raise ActionError(
                            f"Request to {host} redirected more than {max_redirects} times.",
                            code=ErrorCode.HTTP_FAILED,
                        )
                    redirects += 1
                    request = _next_request(response, request, location)
                    continue
                try:
                    content = _read_limited(response, max_bytes=max_bytes, deadline=deadline, host=host)
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                    raise _as_action_error(exc, host=host, timeout=timeout) from exc
                return OutboundResponse(
                    status=response.status_code,
                    headers={name.lower(): value for name, value in response.headers.items()},
                    content=content,
                    url=response.url,
                )
