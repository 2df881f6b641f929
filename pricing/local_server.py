"""The service as a local `bentoml serve` process: for the tests, the benchmarks and the load test.

The server runs in its own session, so the whole tree (the server and its workers) is stopped as one
process group. Nothing here imports BentoML: callers may still be choosing their BentoML home.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent  # where service.py is
BENTOML = str(Path(sys.executable).parent / "bentoml")


class ServerNotReadyError(RuntimeError):
    """The server exited or did not answer its readiness path in time; the message ends with its log."""


@dataclass(frozen=True)
class LocalServer:
    """A running local server."""

    url: str
    pid: int


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(port: int, log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `bentoml serve service:Pricing` on ``port`` (``env`` added to ours), logging to ``log_path``."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [BENTOML, "serve", "service:Pricing", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    url: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float,
    path: str = "/readyz",
    poll_s: float = 0.2,
) -> None:
    """Return once ``url + path`` answers 200; raise ServerNotReadyError if the server exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise ServerNotReadyError(
                f"bentoml serve did not answer {path} on {url} (exit code {proc.poll()}):\n{tail}"
            )
        time.sleep(poll_s)


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM the process group led by ``proc`` and reap it; SIGKILL it if it has not exited in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def serve(
    log_path: Path, env: Mapping[str, str] | None = None, ready_path: str = "/readyz", timeout_s: float = 90
) -> Iterator[LocalServer]:
    """Run the service on a free port; yield it once ``ready_path`` answers 200, and stop it afterwards."""
    port = free_port()
    proc = launch(port, log_path, env)
    try:
        server = LocalServer(f"http://127.0.0.1:{port}", proc.pid)
        wait_ready(server.url, proc, log_path, timeout_s, ready_path)
        yield server
    finally:
        stop_group(proc)
