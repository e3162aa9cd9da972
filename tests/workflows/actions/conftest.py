"""Fixtures for action tests: a StepContext factory, a real SMTP server on loopback, no traffic elsewhere."""
import ipaddress
import socket
import time
from types import SimpleNamespace
from uuid import uuid4

import pytest

from workflows.actions.base import StepContext


@pytest.fixture
def make_context():
    """make_context(**overrides) -> a StepContext for step 0 ("s") of a stand-in run, 60 s to go."""

    def make(**overrides):
        values = {
            "run": SimpleNamespace(id=uuid4()),
            "step": SimpleNamespace(index=0, key="s"),
            "attempt": 1,
            "deadline": time.monotonic() + 60,
        }
        values.update(overrides)
        return StepContext(**values)

    return make


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Every socket connect made during the test, refusing any that is not to loopback."""
    attempts: list = []
    original_connect = socket.socket.connect

    def connect(sock, address):
        if isinstance(address, tuple):
            attempts.append(address)
            host = address[0].split("%", 1)[0]
            # This machine must send nothing past loopback: a guard bug fails the test, not the network.
            assert ipaddress.ip_address(host).is_loopback, f"test tried to connect to {address}"
        return original_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts
