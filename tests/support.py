"""Small helpers shared by the tests: free ports, a hand-moved clock, Prometheus sample values."""

from __future__ import annotations

import socket

from prometheus_client import REGISTRY


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def metric(name: str, **labels: str) -> float:
    """Current value of one labelled sample in this process's Prometheus registry (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
