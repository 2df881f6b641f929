"""How loadtests/chaos.py judges a killed worker: only requests in flight on it may fail.

A killed worker's sockets stay open until the kernel has torn the process down (tens of ms for a loaded
worker), so a request written to one of its connections after the signal is lost with it. Those requests,
and only those, are excused: a connection error on a request sent before the worker had exited and still
unanswered when it was killed. Anything else that fails (sent after the exit, or an HTTP error) misses.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from types import ModuleType

import numpy as np
import pytest

from tests.support import ROOT

KILLED_AT = 1_000.0
EXITED_AT = KILLED_AT + 0.030
RESET = "connection error: ConnectionError: ('Connection aborted.', ConnectionResetError(104, 'reset by peer'))"


@pytest.fixture(scope="module")
def chaos() -> ModuleType:
    sys.path.insert(0, str(ROOT / "loadtests"))  # chaos.py imports its sibling run.py as `run`
    try:
        return importlib.import_module("chaos")
    finally:
        sys.path.remove(str(ROOT / "loadtests"))


def judge(chaos: ModuleType, requests: list[tuple[float, float, str]]) -> dict:
    """The worker fault's verdict over a steady load plus ``requests`` (start offset from the kill s, ms, error)."""
    steady = [(t, 10.0, "") for t in np.arange(-20.0, 45.0, 0.1)]
    rows = sorted(steady + requests)
    start = np.array([KILLED_AT + t for t, _, _ in rows])
    ms = np.array([m for _, m, _ in rows])
    error = [e for _, _, e in rows]
    log_ = chaos.Requests(start=start, end=start + ms / 1000, ms=ms, ok=np.array([not e for e in error]),
                          fallback=np.zeros(len(rows), dtype=bool), cached=np.zeros(len(rows), dtype=bool),
                          name=["/price_sweep"] * len(rows), error=error)  # fmt: skip
    record = chaos.FaultRecord("worker", injected_at=KILLED_AT - 0.002, cleared_at=KILLED_AT + 15,
                               recovered_at=KILLED_AT + 9, ends_at=KILLED_AT + 45)  # fmt: skip
    record.effect.update(killed_at=KILLED_AT, exited_at=EXITED_AT, workers_before=[1, 2], new_pids=[3])
    args = argparse.Namespace(max_recovery=20.0, latency_factor=2.0)
    return chaos.judge_fault(args, log_, record, baseline_p95=10.0)


def test_connection_errors_written_before_the_worker_exited_are_in_flight_on_it(chaos: ModuleType) -> None:
    verdict = judge(chaos, [(0.006, 28.0, RESET), (-0.004, 34.0, RESET)])

    assert verdict["passed"], verdict["reasons"]
    assert verdict["failed"] == 2 and verdict["failed_on_killed_worker"] == 2 and verdict["failed_otherwise"] == 0


def test_a_connection_error_sent_after_the_worker_exited_misses(chaos: ModuleType) -> None:
    verdict = judge(chaos, [(0.006, 28.0, RESET), (0.050, 3.0, RESET)])

    assert not verdict["passed"]
    assert verdict["failed_on_killed_worker"] == 1 and verdict["failed_otherwise"] == 1
    assert "not in flight on the killed worker" in verdict["reasons"][0]


def test_an_http_error_during_the_exit_misses(chaos: ModuleType) -> None:
    verdict = judge(chaos, [(0.006, 5.0, "HTTP 500: boom")])

    assert not verdict["passed"] and verdict["failed_otherwise"] == 1


def test_wait_exited_waits_for_every_thread_of_a_killed_process(chaos: ModuleType) -> None:
    # A process whose main thread ends at once (the raw exit system call ends one thread, not the process)
    # while another thread runs on for 0.3 s: the leader is a zombie long before the process has exited.
    sys_exit = {"x86_64": 60, "aarch64": 93}[os.uname().machine]
    code = ("import ctypes, threading, time; threading.Thread(target=time.sleep, args=(0.3,)).start(); "
            f"ctypes.CDLL(None).syscall({sys_exit}, 0)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        started = time.time()
        exited = chaos.wait_exited(proc.pid, started + 10)
        assert exited is not None and exited - started >= 0.25
    finally:
        proc.wait()
    assert chaos.wait_exited(os.getpid(), time.time() + 0.05) is None  # a live process has not exited
