"""Signed webhooks: generic HMAC-SHA256 of the raw body (GitHub style) and Stripe's `Stripe-Signature`."""
import base64
import binascii
import hashlib
import hmac
import time

DEFAULT_HMAC_HEADER = "X-Hub-Signature-256"
STRIPE_HEADER = "Stripe-Signature"


def hmac_sign(secret: str, body: bytes) -> str:
    """The header value a sender computes: `sha256=<hex>` (what GitHub sends)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hmac_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` holds the HMAC-SHA256 of body: `sha256=<hex>`, bare hex, or base64 (Shopify)."""
    if not header or not secret:
        return False
    value = header.strip()
    if value.lower().startswith("sha256="):
        value = value[len("sha256="):]
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    candidates = [value.lower().encode()]
    try:
        candidates.append(base64.b64decode(value, validate=True).hex().encode())
    except (binascii.Error, ValueError):
        pass
    expected = digest.hex().encode()
    # Every candidate is compared in constant time; `any` over a fixed-size list leaks nothing useful.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def stripe_sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value as Stripe computes it: `t=<unix time>,v1=<hex>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def stripe_valid(secret: str, body: bytes, header: str | None, *, tolerance: int = 300, now: float | None = None) -> bool:
    """Stripe's scheme: one `t=` timestamp within `tolerance` seconds, and any `v1=` matching HMAC(t.body)."""
    if not header or not secret:
        return False
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value.lower().encode())
    if timestamp is None or not timestamp.isdigit() or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
    # Several v1 signatures arrive while the endpoint's secret is being rolled; any one may match.
    matches = [hmac.compare_digest(expected, signature) for signature in signatures]
    return any(matches)
