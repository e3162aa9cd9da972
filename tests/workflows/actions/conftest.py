"""Fixtures for action tests: a StepContext factory, a real SMTP server on loopback, no traffic elsewhere."""
import ipaddress
import socket

import pytest


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
