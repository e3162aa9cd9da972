"""The API token format: `er_<8-char prefix>_<32 url-safe chars>`, random, kept as a SHA-256 digest."""
import hashlib
import re
import secrets
import string

TOKEN_RE = re.compile(r"^er_([a-z0-9]{8})_([A-Za-z0-9_-]{32})$")
PREFIX_ALPHABET = string.ascii_lowercase + string.digits


def token_generate() -> tuple[str, str]:
    """A new token and its prefix; the token itself is shown once and never stored."""
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(8))
    # 24 random bytes are exactly 32 url-safe characters (192 bits).
    return f"er_{prefix}_{secrets.token_urlsafe(24)}", prefix


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str | None:
    """The prefix of a well-formed token, else None (nothing is looked up for a malformed one)."""
    match = TOKEN_RE.match(token or "")
    return match.group(1) if match else None
