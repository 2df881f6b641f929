"""Helpers shared by the tests: free ports, a hand-moved clock, Prometheus samples, a real `bentoml serve`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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
