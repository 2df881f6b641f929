"""Helpers shared by the tests: free ports, a hand-moved clock, Prometheus samples, a real `bentoml serve`, and raw
HTTP requests (a declared body that never comes, a Content-Length no client library would send)."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client import REGISTRY

from pricing.local_server import ROOT as ROOT
from pricing.local_server import free_port as free_port
from pricing.local_server import serve

SERVE_DEADLINE_S = 90


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def metric(name: str, **labels: str) -> float:
    """Current value of one labelled sample in this process's Prometheus registry (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def bentoml_serve(env: Mapping[str, str], log_path: Path, ready_path: str = "/readyz") -> Iterator[str]:
    """Run `bentoml serve service:Pricing` on a free port with ``env`` added; yield its URL once ``ready_path``
    answers 200, and stop the whole process group afterwards."""
    with serve(log_path, env, ready_path, SERVE_DEADLINE_S) as server:
        yield server.url


def scrape(url: str, name: str, **labels: str) -> float:
    """One labelled sample from a server's /metrics (0 when absent)."""
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def open_request(url: str, method: str, path: str, headers: Mapping[str, str], body: bytes = b"") -> socket.socket:
    """Send a request's head as given (``headers`` verbatim, Content-Length included or not) and ``body``, which may
    be shorter than the Content-Length it declares; return the open connection for ``read_answer``."""
    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=60)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return connection


def read_answer(connection: socket.socket) -> RawAnswer:
    """The answer to the request sent on ``connection`` (which is closed afterwards)."""
    with connection:
        response = http.client.HTTPResponse(connection)
        response.begin()
        return RawAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
