"""Run a real ``redis-server`` for the integration tests: find or install it, start, stop and restart it.

The server runs as a subprocess in its own process group on a free 127.0.0.1 port, persists nothing, and
logs to a file whose content goes into the failure message when it does not come up. A missing
``redis-server`` is installed from Debian's package when running as root; otherwise the tests fail with
the reason, never skip, so that a missing install step shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.support import free_port

START_DEADLINE_S = 10.0
STOP_TIMEOUT_S = 10.0
APT_TIMEOUT_S = 600
CLUSTER_SLOTS = 16_384


def redis_server_binary() -> str:
    """Return the path of ``redis-server``, installing Debian's package first if it is missing and we are root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("redis-server is not installed and only root can install it here: apt-get install -y redis-server")
    # Debian's package starts no service where there is no init system; the tests run the binary themselves.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(command)}` did not finish in {APT_TIMEOUT_S} s")
        if proc.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` exited with {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}")
    found = shutil.which("redis-server")
    if not found:
        pytest.fail("apt-get installed redis-server but no redis-server is on PATH")
    return found


class RedisServer:
    """One ``redis-server`` process on a fixed 127.0.0.1 port, which can be stopped and started again there.

    With ``cluster=True`` it is a one-node Redis Cluster that owns every hash slot.
    """

    def __init__(self, workdir: Path, cluster: bool = False) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        # The cluster bus listens on a port of its own; by default port + 10000, which may not exist.
        self.cluster_port = free_port() if cluster else None
        self.workdir = workdir
        self.cluster = cluster
        self.log_path = workdir / "redis-server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's ``redis://`` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain client for checking the server's content behind the cache's back."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        """Start the server and wait until it answers PING (and, for a cluster, until every slot is served)."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir)]
        if self.cluster:
            command += ["--cluster-enabled", "yes", "--cluster-port", str(self.cluster_port)]
            command += ["--cluster-config-file", str(self.workdir / "nodes.conf")]
        # A file, not a pipe: nobody reads a pipe while the server runs, and a full one would stall it.
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        started = time.monotonic()
        self._wait_for(self._answers_ping, started)
        if self.cluster:
            self._assign_all_slots()
            self._wait_for(self._cluster_ok, started)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers) and reap it."""
        if self.proc is None:
            return
        for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
                os.killpg(self.proc.pid, signal.SIGCONT)  # a paused server handles SIGTERM only once resumed
            try:
                self.proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port (with an empty data set)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answers, as behind a dead network link."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        os.killpg(self.proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def _wait_for(self, ready, started: float) -> None:
        """Poll `ready()` until it is true; fail with the server's output if it exits or the deadline passes."""
        while not ready():
            exited = self.proc.poll() is not None
            if exited or time.monotonic() - started > START_DEADLINE_S:
                state = f"exited with {self.proc.returncode}" if exited else "not ready"
                pytest.fail(
                    f"redis-server on port {self.port} {state} after {time.monotonic() - started:.1f} s; "
                    f"its output:\n{self.log_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.05)

    def _answers_ping(self) -> bool:
        """True if the server answers PING."""
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def _assign_all_slots(self) -> None:
        """Give this node every hash slot unless it already owns them (its nodes.conf survives a restart)."""
        with self.client() as client:
            info = client.execute_command("CLUSTER", "INFO").decode()
            if f"cluster_slots_assigned:{CLUSTER_SLOTS}" not in info:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, CLUSTER_SLOTS - 1)

    def _cluster_ok(self) -> bool:
        """True once the one-node cluster reports that every slot is served."""
        with self.client() as client:
            return "cluster_state:ok" in client.execute_command("CLUSTER", "INFO").decode()
