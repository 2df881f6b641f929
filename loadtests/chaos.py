"""Faults under load: the Locust ramp runs against a served process while faults are injected one after another.

Usage:

    make chaos                                              # every fault, 30 users, 2 workers
    .venv/bin/python loadtests/chaos.py --faults redis,model --users 8 --spawn-rate 4 --baseline 5s

It starts a real ``redis-server`` on a free port and ``bentoml serve service:Pricing`` with PRICING_WORKERS
(--workers, default 2), caching in that Redis, and PRICING_FAULTS_FILE naming a file of this run
(``pricing.faults``: while it lists ``primary``, the primary model's calls raise). The smoke budget is trained
first when the model store is empty. Locust (a subprocess, the ramp scenario with ``--accept-fallback``: an
answer from a fallback is a correct answer here, and every answer is still checked) ramps to --users, the load
is measured for --baseline, then each fault of --faults in turn is held for --fault-seconds and followed by
--recover-seconds of the same load:

    redis       redis-server is killed (SIGKILL) and started again on the same port when the window ends
    model       the primary model fails (the faults file lists ``primary``); fallbacks must answer
    worker      one service worker is killed (SIGKILL); BentoML starts a new one
    cache-full  Redis's memory is filled to its maxmemory with noeviction, so every write is refused;
                the filler is deleted and the limit lifted when the window ends

Report per fault, from a log of every request Locust sent (start, duration, outcome, fallback, cached):
requests sent, failed (also those in flight when the fault began), fallback answers, time to recover, and the
fallback and cache counters of ``/metrics`` scraped before and after. Time to recover, from the end of the
window (for ``worker``, from the kill):
    first_success_s    the first request sent after it that succeeded, until its answer
    service_s          until the service is whole again: a probe sweep is answered from Redis again (redis,
                       cache-full), a request is answered by the primary again (model), the new worker has
                       loaded its models (worker)
    latency_s          until the p95 of a 5 s window of requests is back to normal (at most --latency-factor
                       times the baseline's p95, and never less than the baseline's p95 + 50 ms)

Targets: no failed request for redis, model and cache-full (requests in flight when the fault began
included); for worker, failures only among the requests in flight on the killed worker: requests that got no
HTTP answer (a connection error), sent before the worker had exited and unanswered when it was killed. SIGKILL
is not instant: the kernel frees the worker's memory before it closes its sockets, and a keep-alive request
written to one of them meanwhile is lost with the worker (the report gives the worker's exit time after the
signal, and both counts). Each fault must visibly take effect (cache errors, fallback answers, a new worker
pid); service_s and latency_s within --max-recovery.

Writes to --reports-dir (default reports/chaos/): chaos.json (settings, baseline, per fault: times, figures,
counters, verdicts), chaos.png (requests/s, failures, fallback answers and latency per second, fault windows
shaded), requests.csv (the request log), Locust's files (chaos_stats.csv, chaos.html, chaos_locust.log ...),
serve.log and redis-server.log.

Exit status: 0 every target met, 1 a target missed (the reasons are printed), 2 the test itself broke.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
import redis
from run import READY_TIMEOUT_S, STOP_TIMEOUT_S, Paths, ensure_models, locust_command, log, parse_duration, ramp_seconds

from pricing.local_server import LocalServer, ServerNotReadyError, serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.redis_server: the project's one way of running a real redis-server

from tests.redis_server import RedisServer  # noqa: E402

REDIS_FAILED = pytest.fail.Exception  # what tests.redis_server raises when redis-server cannot start
FAULTS = ("redis", "model", "worker", "cache-full")
EXIT_PASS, EXIT_MISSED, EXIT_BROKEN = 0, 1, 2
LATENCY_WINDOW_S = 5.0
LATENCY_FLOOR_MS = 50.0
PROBE_INTERVAL_S = 0.25
EXIT_POLL_S = 0.001  # how often a killed worker is checked for having exited
EXIT_TIMEOUT_S = 10.0
CONNECTION_ERROR = "connection error"  # how locustfile.http_problem logs a request that got no HTTP answer
FIRST_REQUEST_TIMEOUT_S = 120.0
FILLER_PREFIX = "chaos:filler:"
FILLER_VALUE = b"x" * 65_536
FILL_HEADROOM = 4 * 2**20  # the cache-full window's maxmemory: what Redis holds now plus this
COUNTERS = ("pricing_fallbacks_total", "pricing_cache_lookups_total", "pricing_cache_errors_total")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Inject faults (Redis, the primary model, a worker, a full cache) while the Locust ramp runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, in order, of {', '.join(FAULTS)}")
    parser.add_argument("--users", type=int, default=30, help="users after the ramp")
    parser.add_argument("--spawn-rate", type=float, default=1.0, help="users started per second")
    parser.add_argument("--workers", type=int, default=2, help="service workers (PRICING_WORKERS)")
    parser.add_argument("--baseline", type=parse_duration, default="20s", help="full load before the first fault")
    parser.add_argument("--fault-seconds", type=parse_duration, default="15s", help="length of each fault window")
    parser.add_argument("--recover-seconds", type=parse_duration, default="30s", help="load after each window")
    parser.add_argument("--max-recovery", type=parse_duration, default="20s", help="longest time to recover")
    parser.add_argument("--latency-factor", type=float, default=2.0, help="normal p95: at most this x baseline p95")
    parser.add_argument("--reports-dir", type=Path, default=ROOT / "reports" / "chaos", help="where reports go")
    args = parser.parse_args(argv)
    args.faults = [name.strip() for name in args.faults.split(",") if name.strip()]
    unknown = [name for name in args.faults if name not in FAULTS]
    if unknown or not args.faults:
        parser.error(f"--faults: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(FAULTS)}")
    if "worker" in args.faults and args.workers < 2:
        parser.error("--faults worker needs --workers 2 or more: with one worker, killing it is an outage")
    if min(args.users, args.workers) < 1 or min(args.spawn_rate, args.fault_seconds, args.recover_seconds) <= 0:
        parser.error("--users, --workers, --spawn-rate, --fault-seconds and --recover-seconds must be positive")
    # What run.py's locust_command reads. Locust is stopped when the last fault has recovered; the hold is an
    # upper bound that only matters if this script dies without stopping it.
    args.scenario = "ramp"
    args.duration = ramp_seconds(args) + args.baseline + schedule_seconds(args) + 600
    return args


def schedule_seconds(args: argparse.Namespace) -> float:
    """How long the faults take, windows and recoveries."""
    return len(args.faults) * (args.fault_seconds + args.recover_seconds)


# ---------------------------------------------------------------------------------------------------
# The system under test: Redis, the service, its workers and /metrics


def worker_pids(server: LocalServer) -> set[int]:
    """The pids of the service's worker processes (they run ``_bentoml_impl.worker``)."""
    pids = set()
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(server.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if any("_bentoml_impl.worker" in part for part in child.cmdline()):
                    pids.add(child.pid)
    return pids


def wait_exited(pid: int, deadline: float) -> float | None:
    """The Unix time the process ``pid`` had wholly exited, or None if it had not by ``deadline``.

    Wholly: every thread gone but the leader's zombie (or reaped), so its files and sockets are closed. The leader
    turns zombie as soon as it dies itself, while the worker's other threads may still be tearing down.
    """
    status = Path(f"/proc/{pid}/status")
    while time.time() < deadline:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except (FileNotFoundError, ProcessLookupError):
            return time.time()
        if fields["State"].strip().startswith("Z") and int(fields["Threads"]) <= 1:
            return time.time()
        time.sleep(EXIT_POLL_S)
    return None


def counters(url: str) -> dict[str, float]:
    """The fallback and cache counters of /metrics, one entry per labelled sample (summed over workers)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(COUNTERS):
            sample, value = line.rsplit(" ", 1)
            values[sample] = values.get(sample, 0.0) + float(value)
    return values


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each counter gained between two scrapes (only those that moved)."""
    moved = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in sorted(set(before) | set(after))}
    return {key: value for key, value in moved.items() if value}


def counter_sum(values: dict[str, float], name: str, **labels: str) -> float:
    """The sum of a counter's samples whose labels include ``labels``."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(v for k, v in values.items() if k.startswith(name + "{") and all(w in k for w in wanted))


class Probe:
    """Sweeps sent by this script itself, to see when the cache works again (never part of Locust's figures)."""

    def __init__(self, url: str) -> None:
        product = httpx.get(f"{url}/products", params={"limit": 1}, timeout=10).json()["products"][0]
        main = next(lst for lst in product["lists"] if lst["segment"] == product["main_segment"])
        self.url, self.stockcode, self.sent = url, product["stockcode"], 0
        self.lo, self.hi = main["price_min"], max(main["price_max"], main["price_min"] * 1.5)

    def cached_again(self) -> bool:
        """Send a new sweep twice: True when the second answer came from the cache (so Redis stored the first)."""
        self.sent += 1
        price_min = self.lo + (self.hi - self.lo) * (self.sent % 500) / 1000
        body = {"stockcode": self.stockcode, "price_min": price_min, "price_max": self.hi, "bins": 20}
        answers = []
        for _ in range(2):
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.post(f"{self.url}/price_sweep", json=body, timeout=10)
                answers.append(response.status_code == 200 and response.json().get("cached") is True)
        return answers[-1:] == [True]


# ---------------------------------------------------------------------------------------------------
# Faults: each injects, clears and reports when the service is whole again


@dataclass
class FaultRecord:
    """One fault's timeline (Unix seconds) and what happened around it."""

    name: str
    injected_at: float = 0.0
    cleared_at: float = 0.0
    recovered_at: float | None = None  # the service is whole again (the fault's own criterion)
    ends_at: float = 0.0
    effect: dict[str, Any] = field(default_factory=dict)
    counters_before: dict[str, float] = field(default_factory=dict)
    counters_after: dict[str, float] = field(default_factory=dict)


class Chaos:
    """Injects the faults into one running system: Redis, the service and its faults file."""

    def __init__(self, args: argparse.Namespace, server: LocalServer, redis_server: RedisServer, faults_file: Path,
                 serve_log: Path, probe: Probe) -> None:  # fmt: skip
        self.args, self.server, self.redis, self.faults_file = args, server, redis_server, faults_file
        self.serve_log, self.probe = serve_log, probe

    def run(self, name: str) -> FaultRecord:
        """Inject one fault for --fault-seconds, clear it, wait for recovery; the load goes on throughout."""
        record = FaultRecord(name, counters_before=counters(self.server.url))
        inject, clear, recovered = {
            "redis": (self._kill_redis, self._restart_redis, self.probe.cached_again),
            "model": (self._fail_primary, self._heal_primary, lambda: False),  # judged from the request log
            "worker": (self._kill_worker, lambda rec: None, lambda: self._worker_replaced(record)),
            "cache-full": (self._fill_redis, self._free_redis, self.probe.cached_again),
        }[name]
        log(f"fault {name}: injecting")
        record.injected_at = time.time()
        inject(record)
        if name == "worker":  # the fault is the kill itself: BentoML's restart is watched from the kill on
            deadline = record.injected_at + self.args.fault_seconds + self.args.recover_seconds
            record.recovered_at = poll_until(recovered, deadline)
        sleep_until(record.injected_at + self.args.fault_seconds)
        record.cleared_at = time.time()
        clear(record)
        log(f"fault {name}: cleared; waiting for recovery")
        record.ends_at = record.cleared_at + self.args.recover_seconds
        if name != "worker":
            record.recovered_at = poll_until(recovered, record.ends_at)
        sleep_until(record.ends_at)
        record.counters_after = counters(self.server.url)
        return record

    def _kill_redis(self, record: FaultRecord) -> None:
        os.killpg(self.redis.proc.pid, signal.SIGKILL)
        self.redis.proc.wait()
        self.redis.proc = None
        record.effect["redis_pid_killed"] = True

    def _restart_redis(self, record: FaultRecord) -> None:
        self.redis.start()

    def _fail_primary(self, record: FaultRecord) -> None:
        self.faults_file.write_text("primary\n")

    def _heal_primary(self, record: FaultRecord) -> None:
        self.faults_file.unlink()

    def _kill_worker(self, record: FaultRecord) -> None:
        pids = sorted(worker_pids(self.server))
        if len(pids) < 2:
            raise RuntimeError(f"expected at least 2 service workers, found {len(pids)}: {pids}")
        record.effect.update(workers_before=pids, killed_pid=pids[0], loaded_before=self._loaded_lines())
        killed_at = time.time()
        os.kill(pids[0], signal.SIGKILL)
        # A killed process keeps its sockets until the kernel has torn it down (its memory first): requests
        # written to its connections until then are in flight on it, whenever the client sent them.
        exited_at = wait_exited(pids[0], killed_at + EXIT_TIMEOUT_S)
        after_ms = None if exited_at is None else round(1000 * (exited_at - killed_at), 1)
        record.effect.update(killed_at=killed_at, exited_at=exited_at, exited_after_ms=after_ms)

    def _worker_replaced(self, record: FaultRecord) -> bool:
        """True once a new worker process runs and has logged that it serves (loaded its primary)."""
        new = worker_pids(self.server) - set(record.effect["workers_before"])
        if new and self._loaded_lines() > record.effect["loaded_before"]:
            record.effect["new_pids"] = sorted(new)
            return True
        return False

    def _loaded_lines(self) -> int:
        return self.serve_log.read_text(errors="replace").count("serving with ")

    def _fill_redis(self, record: FaultRecord) -> None:
        with self.redis.client() as client:
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", used + FILL_HEADROOM)
            written, full = 0, False
            while not full and written < 10 * FILL_HEADROOM // len(FILLER_VALUE):
                try:
                    client.set(f"{FILLER_PREFIX}{written}", FILLER_VALUE)
                    written += 1
                except redis.exceptions.OutOfMemoryError:
                    full = True  # Redis refuses writes: the state the service must survive
            info = client.info("memory")
            record.effect.update(maxmemory=int(info["maxmemory"]), used_memory=int(info["used_memory"]),
                                 filler_keys=written, full=full)  # fmt: skip

    def _free_redis(self, record: FaultRecord) -> None:
        with self.redis.client() as client:
            keys = list(client.scan_iter(match=FILLER_PREFIX + "*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            client.config_set("maxmemory", 0)


def sleep_until(when: float) -> None:
    """Sleep until the Unix time ``when`` (at once if it has passed)."""
    time.sleep(max(0.0, when - time.time()))


def poll_until(check: Callable[[], bool], deadline: float) -> float | None:
    """Call ``check`` every PROBE_INTERVAL_S until it is true (the Unix time it was) or ``deadline`` passes."""
    while time.time() < deadline:
        if check():
            return time.time()
        time.sleep(PROBE_INTERVAL_S)
    return None


# ---------------------------------------------------------------------------------------------------
# The request log, and what it says about each fault


@dataclass(frozen=True)
class Requests:
    """Locust's request log as arrays: start and end (Unix s), latency (ms), outcome, flags, route, error."""

    start: np.ndarray
    end: np.ndarray
    ms: np.ndarray
    ok: np.ndarray
    fallback: np.ndarray
    cached: np.ndarray
    name: list[str]
    error: list[str]

    @classmethod
    def read(cls, path: Path) -> Requests:
        """Read the CSV the locustfile wrote with --request-log."""
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        start = np.array([float(r["start"]) for r in rows])
        ms = np.array([float(r["ms"]) for r in rows])
        return cls(
            start=start,
            end=start + ms / 1000,
            ms=ms,
            ok=np.array([r["ok"] == "1" for r in rows], dtype=bool),
            fallback=np.array([r["fallback"] == "1" for r in rows], dtype=bool),
            cached=np.array([r["cached"] == "1" for r in rows], dtype=bool),
            name=[r["name"] for r in rows],
            error=[r["error"] for r in rows],
        )

    def between(self, lo: float, hi: float) -> np.ndarray:
        """Mask of the requests sent in [lo, hi)."""
        return (self.start >= lo) & (self.start < hi)

    def in_flight(self, at: float) -> np.ndarray:
        """Mask of the requests sent before ``at`` and answered after it."""
        return (self.start < at) & (self.end > at)


def p95(values: np.ndarray) -> float:
    """The 95th percentile, NaN for no values."""
    return float(np.percentile(values, 95)) if len(values) else math.nan


def latency_recovered(log_: Requests, since: float, until: float, limit_ms: float) -> float | None:
    """Seconds from ``since`` to the start of the first 5 s window (1 s steps) whose p95 is within ``limit_ms``."""
    for offset in np.arange(0.0, max(until - since - LATENCY_WINDOW_S, 0.0) + 1e-9, 1.0):
        window = log_.between(since + offset, since + offset + LATENCY_WINDOW_S)
        if window.sum() >= 3 and p95(log_.ms[window]) <= limit_ms:
            return float(offset)
    return None


def judge_fault(args: argparse.Namespace, log_: Requests, record: FaultRecord, baseline_p95: float) -> dict[str, Any]:
    """The fault's figures and verdicts (reasons for any missed target)."""
    span = log_.between(record.injected_at, record.ends_at)
    at_start = log_.in_flight(record.injected_at)
    counted = span | at_start
    failed = counted & ~log_.ok
    window = log_.between(record.injected_at, record.cleared_at)
    since = record.injected_at if record.name == "worker" else record.cleared_at
    after = log_.between(since, math.inf) & log_.ok
    first_success = float(log_.end[after].min() - since) if after.any() else None
    limit_ms = max(args.latency_factor * baseline_p95, baseline_p95 + LATENCY_FLOOR_MS)
    latency_s = latency_recovered(log_, since, record.ends_at, limit_ms)
    service_s = None if record.recovered_at is None else round(record.recovered_at - since, 2)
    if record.name == "model":  # the first request sent after the window that the primary answered
        primary = (
            log_.between(since, math.inf)
            & log_.ok
            & ~log_.fallback
            & np.array([not n.startswith("/v1/") for n in log_.name], dtype=bool)
        )
        service_s = round(float(log_.end[primary].min() - since), 2) if primary.any() else None
        record.recovered_at = None if service_s is None else since + service_s
    moved = delta(record.counters_before, record.counters_after)
    # Failures the kill itself explains: no HTTP answer at all, on a request sent before the killed worker had
    # exited (its connections were still open) and still unanswered when it was killed.
    on_killed = np.zeros(len(failed), dtype=bool)
    if record.name == "worker":
        exited_at = record.effect.get("exited_at") or math.inf
        cut = np.array([e.startswith(CONNECTION_ERROR) for e in log_.error], dtype=bool)
        on_killed = failed & cut & (log_.start < exited_at) & (log_.end > record.effect["killed_at"])
    figures = {
        "requests": int(span.sum()),
        "in_flight_at_start": int(at_start.sum()),
        "failed": int(failed.sum()),
        "failed_in_flight_at_start": int((failed & at_start).sum()),
        "failed_sent_after_start": int((failed & ~at_start).sum()),
        "failed_on_killed_worker": int(on_killed.sum()),
        "failed_otherwise": int((failed & ~on_killed).sum()),
        "fallback_answers": int((span & log_.fallback).sum()),
        "fallback_answers_in_window": int((window & log_.fallback).sum()),
        "cached_answers": int((span & log_.cached).sum()),
        "p95_ms_in_window": round(p95(log_.ms[window]), 1),
        "errors": sorted({log_.error[i] for i in np.flatnonzero(failed)})[:5],
    }
    recovery = {
        "measured_from": "the kill" if record.name == "worker" else "the end of the fault window",
        "first_success_s": None if first_success is None else round(first_success, 2),
        "service_s": service_s,
        "latency_s": latency_s,
        "latency_limit_ms": round(limit_ms, 1),
    }
    reasons = fault_reasons(args, record, figures, recovery, moved)
    return {
        "fault": record.name,
        "injected_at": iso(record.injected_at),
        "window_s": round(record.cleared_at - record.injected_at, 2),
        **figures,
        "recovery": recovery,
        "effect": record.effect,
        "counters_moved": moved,
        "counters_before": record.counters_before,
        "counters_after": record.counters_after,
        "passed": not reasons,
        "reasons": reasons,
    }


def fault_reasons(
    args: argparse.Namespace,
    record: FaultRecord,
    figures: dict[str, Any],
    recovery: dict[str, Any],
    moved: dict[str, float],
) -> list[str]:
    """Why the fault's targets were missed (empty: all met)."""
    name, reasons = record.name, []
    if name == "worker":
        if figures["failed_otherwise"]:
            reasons.append(f"{figures['failed_otherwise']} failed requests were not in flight on the killed worker "
                           f"(sent after it exited, or an HTTP error): {'; '.join(figures['errors'])}")  # fmt: skip
        if record.effect.get("exited_at") is None:
            reasons.append(f"the killed worker had not exited {EXIT_TIMEOUT_S:g} s after SIGKILL")
        if "new_pids" not in record.effect:
            reasons.append("no new worker loaded its models after the kill")
    elif figures["failed"]:
        reasons.append(f"{figures['failed']} requests failed ({figures['failed_in_flight_at_start']} in flight at the "
                       f"start); target 0: {'; '.join(figures['errors'])}")  # fmt: skip
    # The fault must have taken effect, or its zero failures prove nothing.
    if name in ("redis", "cache-full") and not counter_sum(moved, "pricing_cache_errors_total"):
        reasons.append("pricing_cache_errors_total did not move: the fault did not reach the service")
    if name == "cache-full" and not record.effect.get("full"):
        reasons.append(f"Redis never refused a write for lack of memory: {record.effect}")
    if name == "model":
        if not figures["fallback_answers_in_window"]:
            reasons.append("no fallback answered during the window: the primary fault did not take effect")
        if not counter_sum(moved, "pricing_fallbacks_total", reason="error"):
            reasons.append("pricing_fallbacks_total{reason=error} did not move")
    for key, what in (("service_s", "the service was whole again"), ("latency_s", "latency was normal again")):
        value = recovery[key]
        if value is None or value > args.max_recovery:
            shown = "not within the recovery time" if value is None else f"after {value:g} s"
            reasons.append(f"{what} {shown} (target {args.max_recovery:g} s)")
    return reasons


def iso(t: float) -> str:
    """A Unix time as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------------
# The timeline chart


def plot(log_: Requests, t0: float, faults: list[dict[str, Any]], records: list[FaultRecord], path: Path,
         title: str) -> None:  # fmt: skip
    """Per second: requests, failures and fallback answers sent; p50/p95 latency; each fault window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = np.floor(log_.start - t0).astype(int)
    edges = np.arange(0, seconds.max() + 2) if len(seconds) else np.arange(2)
    per_s = {key: np.histogram(seconds[mask], edges)[0] for key, mask in
             (("sent", np.ones_like(log_.ok)), ("failed", ~log_.ok), ("fallback", log_.fallback))}  # fmt: skip
    p50s = [np.percentile(log_.ms[seconds == s], 50) if (seconds == s).any() else np.nan for s in edges[:-1]]
    p95s = [np.percentile(log_.ms[seconds == s], 95) if (seconds == s).any() else np.nan for s in edges[:-1]]
    fig, (ax_n, ax_lat) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    ax_n.plot(edges[:-1], per_s["sent"], label="requests sent/s", color="tab:blue")
    ax_n.plot(edges[:-1], per_s["fallback"], label="answered by a fallback/s", color="tab:orange")
    ax_n.plot(edges[:-1], per_s["failed"], label="failed/s", color="tab:red")
    ax_n.set_ylabel("requests per second")
    ax_lat.plot(edges[:-1], p50s, label="p50", color="tab:green")
    ax_lat.plot(edges[:-1], p95s, label="p95", color="tab:purple")
    ax_lat.set_ylabel("latency, ms (requests sent in that second)")
    ax_lat.set_xlabel("seconds since the first request")
    colours = {"redis": "tab:red", "model": "tab:orange", "worker": "tab:gray", "cache-full": "tab:cyan"}
    for record, fault in zip(records, faults, strict=True):
        for ax in (ax_n, ax_lat):
            ax.axvspan(record.injected_at - t0, max(record.cleared_at, record.injected_at + 0.5) - t0,
                       color=colours[record.name], alpha=0.2)  # fmt: skip
            if record.recovered_at is not None:
                ax.axvline(record.recovered_at - t0, color=colours[record.name], linestyle=":", linewidth=1)
        ax_n.text(record.injected_at - t0, 0.98, f" {record.name}" + ("" if fault["passed"] else " (FAIL)"),
                  transform=ax_n.get_xaxis_transform(), va="top", fontsize=8)  # fmt: skip
    for ax in (ax_n, ax_lat):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title + "\nshaded: fault windows; dotted: the service whole again")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# The run


@contextlib.contextmanager
def locust(command: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run Locust in the background (output to ``log_path``); stop it with SIGTERM (it then writes its reports)."""
    log(" ".join(command))
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def first_request_time(path: Path, proc: subprocess.Popen[bytes]) -> float:
    """The start of the first request in the log, once there is one; RuntimeError if Locust exits first."""
    deadline = time.time() + FIRST_REQUEST_TIMEOUT_S
    while time.time() < deadline and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            lines = path.read_text().splitlines()
            if len(lines) > 1:
                return float(lines[1].split(",", 1)[0])
        time.sleep(0.2)
    raise RuntimeError(f"Locust sent no request within {FIRST_REQUEST_TIMEOUT_S:g} s (exit code {proc.poll()})")


def main(argv: list[str] | None = None) -> int:
    """Run the faults under load; return the exit status (see the module docstring)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    paths = Paths(args.reports_dir.resolve(), "chaos")
    paths.reports.mkdir(parents=True, exist_ok=True)
    request_log, faults_file = paths.reports / "requests.csv", paths.reports / "faults"
    for path in [*paths.outputs, paths.reports / "chaos.json", request_log, faults_file]:
        path.unlink(missing_ok=True)
    started = datetime.now(UTC)
    ensure_models()

    redis_dir = paths.reports / "redis"
    redis_dir.mkdir(exist_ok=True)
    redis_server = RedisServer(redis_dir)
    env = {"PRICING_WORKERS": str(args.workers), "PRICING_REDIS_URL": redis_server.url, "REDIS_URL": "",
           "PRICING_REDIS_CLUSTER": "", "PRICING_FAULTS_FILE": str(faults_file)}  # fmt: skip
    records: list[FaultRecord] = []
    try:
        redis_server.start()
        with serve(paths.reports / "serve.log", env=env, timeout_s=READY_TIMEOUT_S) as server:
            log(f"service ready on {server.url} with {len(worker_pids(server))} workers; Redis on {redis_server.url}")
            chaos = Chaos(args, server, redis_server, faults_file, paths.reports / "serve.log",
                          Probe(server.url))  # fmt: skip
            command = [*locust_command(args, server.url, paths), "--accept-fallback", "--request-log", str(request_log)]
            with locust(command, paths.of("_locust.log")) as proc:
                t0 = first_request_time(request_log, proc)
                baseline_from = t0 + ramp_seconds(args)
                sleep_until(baseline_from + args.baseline)
                for name in args.faults:
                    if proc.poll() is not None:
                        raise RuntimeError(f"Locust exited early with {proc.returncode}")
                    records.append(chaos.run(name))
            stopped_at = time.time()
    except (ServerNotReadyError, RuntimeError, OSError, httpx.HTTPError, redis.RedisError, REDIS_FAILED) as exc:
        log(f"the chaos test broke: {type(exc).__name__}: {exc}")
        return EXIT_BROKEN
    finally:
        redis_server.stop()
        faults_file.unlink(missing_ok=True)

    # Figures and verdicts, from the request log.
    log_ = Requests.read(request_log)
    base = log_.between(baseline_from, baseline_from + args.baseline)
    baseline = {"requests": int(base.sum()), "failed": int((base & ~log_.ok).sum()),
                "p50_ms": round(float(np.percentile(log_.ms[base], 50)), 1) if base.any() else None,
                "p95_ms": round(p95(log_.ms[base]), 1)}  # fmt: skip
    faults = [judge_fault(args, log_, record, baseline["p95_ms"]) for record in records]
    first_fault = records[0].injected_at if records else math.inf
    before = (log_.start < first_fault) & ~log_.in_flight(first_fault)  # the ramp and the baseline
    problems = [] if base.sum() >= 10 else [f"too few requests in the baseline ({int(base.sum())})"]
    if (before & ~log_.ok).any():
        problems.append(f"{int((before & ~log_.ok).sum())} requests failed before any fault (ramp and baseline)")
    summary = {
        "verdict": "PASS" if all(f["passed"] for f in faults) and not problems else "FAIL",
        "started_at": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "whole_run": {
            "requests": len(log_.ok),
            "failed": int((~log_.ok).sum()),
            "fallback_answers": int(log_.fallback.sum()),
            "seconds": round(float(stopped_at - t0), 1),
        },
        "baseline": baseline,
        "faults": faults,
        "problems": problems,
    }
    (paths.reports / "chaos.json").write_text(json.dumps(summary, indent=2) + "\n")
    title = f"pricing chaos: {args.users} users, {args.workers} workers"
    plot(log_, t0, faults, records, paths.of(".png"), title)
    print(render(summary))
    if problems and not faults:
        return EXIT_BROKEN
    return EXIT_PASS if summary["verdict"] == "PASS" else EXIT_MISSED


def render(summary: dict[str, Any]) -> str:
    """A table of the faults for the terminal."""
    base, whole = summary["baseline"], summary["whole_run"]
    lines = [f"chaos: {summary['verdict']}: {whole['requests']} requests, {whole['failed']} failed, "
             f"{whole['fallback_answers']} answered by a fallback; baseline p95 {base['p95_ms']} ms", "",
             "| fault | requests | failed | in flight at start | fallback answers | first success s | "
             "whole again s | latency normal s | verdict |", "|---" * 9 + "|"]  # fmt: skip
    for f in summary["faults"]:
        r = f["recovery"]
        lines.append(f"| {f['fault']} | {f['requests']} | {f['failed']} | {f['in_flight_at_start']} | "
                     f"{f['fallback_answers']} | {r['first_success_s']} | {r['service_s']} | {r['latency_s']} | "
                     f"{'PASS' if f['passed'] else 'FAIL'} |")  # fmt: skip
    for f in summary["faults"]:
        if f["fault"] == "worker":
            exited = f["effect"].get("exited_after_ms")
            lines.append(f"worker: exited {exited} ms after SIGKILL; {f['failed_on_killed_worker']} failed in "
                         f"flight on it, {f['failed_otherwise']} otherwise")  # fmt: skip
        lines += [f"{f['fault']}: {reason}" for reason in f["reasons"]]
    lines += [f"problem: {p}" for p in summary["problems"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
