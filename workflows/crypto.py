"""Encryption at rest for secrets: MultiFernet over ENGINE_ROOM_SECRETS_KEY (newest key first)."""
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def fernet() -> MultiFernet:
    """The MultiFernet for the configured key list; rotating keys means putting a new key first."""
    return _fernet(tuple(settings.ENGINE_ROOM_SECRETS_KEY))


def encrypt(value: str) -> bytes:
    return fernet().encrypt(value.encode())


def decrypt(token: bytes) -> str:
    return fernet().decrypt(bytes(token)).decode()
