"""Helpers shared by the tests: free ports, a hand-moved clock, Prometheus samples, a real `bentoml serve`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
SERVE_DEADLINE_S = 90


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


@contextmanager
def bentoml_serve(env: Mapping[str, str], log_path: Path, ready_path: str = "/readyz") -> Iterator[str]:
    """Run `bentoml serve service:Pricing` on a free port with ``env`` added; yield its URL once ``ready_path``
    answers 200, and stop the whole process group afterwards."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "bentoml"), "serve", "service:Pricing", "--port", str(port)]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while not _answers(url + ready_path):
            if proc.poll() is not None or time.monotonic() - started > SERVE_DEADLINE_S:
                pytest.fail(
                    f"bentoml serve did not answer {ready_path}:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def scrape(url: str, name: str, **labels: str) -> float:
    """One labelled sample from a server's /metrics (0 when absent)."""
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0
