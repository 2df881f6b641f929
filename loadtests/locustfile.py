"""Load tests of the pricing service: price sweeps sent the way its clients send them, every answer checked.

Usage:

    make loadtest                                  # ramp scenario; starts the service itself unless LOADTEST_HOST
    .venv/bin/python loadtests/run.py --scenario knee --host http://127.0.0.1:3000
    .venv/bin/locust --config loadtests/locust.conf --host http://127.0.0.1:3000 --scenario cached
    .venv/bin/python loadtests/locustfile.py --host http://127.0.0.1:3000      # one SweepUser, for debugging

Scenarios (``--scenario``; the load shape picks the user classes, so no class names are needed):

    ramp     the original ramp-up test: SweepUser and InvocationsUser (3:1) ramp from 1 to --ramp-users at
             --ramp-rate users/s, then hold for --hold-seconds; 1-2 s think time. Each request asks for a random
             sub-range of a catalogue product's observed prices, so the service computes every answer.
    cached   the same ramp with CachedSweepUser, which repeats a small fixed set of sweeps (sent once before the
             test starts) so answers come from the service's cache.
    knee     closed-loop users (no think time) added --knee-step-users at a time every --knee-step-seconds until
             the p95 of a step exceeds --knee-p95-ms or a request fails; the knee is the last step that met both,
             and its requests/s (= sweeps/s) is the service's usable throughput.

Products come from the served catalogue (GET /products, paged), fetched once per process when the test starts.
The header X-API-Key is sent when LOADTEST_API_KEY or PRICING_API_KEY is set. With --report-json PATH the
run's figures (totals per request name, errors, the hold phase or the knee steps) are written as JSON when the
test stops; loadtests/run.py reads them. With --request-log PATH every request is also written as one CSV line
as it completes (loadtests/chaos.py and soak.py time their faults and windows against it), and
--accept-fallback lets a fallback model's answer pass (the chaos test breaks the primary on purpose).

A 200 with a wrong body is a failure: every answer is checked for its length, its price range, the consistency
of the optimum with the curve, and that the primary model answered (unless --accept-fallback).
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from locust import HttpUser, LoadTestShape, between, constant, events, run_single_user, task
from locust.exception import StopTest
from locust.runners import Runner
from locust.stats import StatsEntry, calculate_response_time_percentile, diff_response_time_dicts

log = logging.getLogger("loadtest")

SCENARIOS = ("ramp", "cached", "knee")
BINS = 100  # the service's default grid, as the original test sent it
CATALOGUE_PAGE = 500  # the largest page /products serves
CACHED_SET_SIZE = 8
MIN_SPAN = 0.2  # a requested range covers at least this share of the observed one, so curves stay meaningful
REQUEST_TIMEOUT_S = 30
TOLERANCE = 1e-9
CONNECTION_ERROR = "connection error"  # how a request that got no HTTP answer is logged (chaos.py reads it)


# ---------------------------------------------------------------------------------------------------
# Command line


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    """Register the scenario and shape options (also settable in locust.conf)."""
    parser.add_argument("--scenario", choices=SCENARIOS, default="ramp", help="ramp (default), cached or knee")
    parser.add_argument("--ramp-users", type=int, default=30, help="ramp/cached: users after the ramp")
    parser.add_argument("--ramp-rate", type=float, default=1.0, help="ramp/cached: users started per second")
    parser.add_argument("--hold-seconds", type=float, default=90.0, help="ramp/cached: time at --ramp-users")
    parser.add_argument("--knee-start-users", type=int, default=1, help="knee: users of the first step")
    parser.add_argument("--knee-step-users", type=int, default=1, help="knee: users added per step")
    parser.add_argument("--knee-step-seconds", type=float, default=10.0, help="knee: length of a step")
    parser.add_argument("--knee-max-users", type=int, default=40, help="knee: stop after the step with this many")
    parser.add_argument("--knee-p95-ms", type=float, default=250.0, help="knee: p95 of a step that ends the search")
    parser.add_argument(
        "--report-json", default="", include_in_web_ui=False, help="write the run's figures to this JSON file"
    )
    parser.add_argument(
        "--accept-fallback", action="store_true", include_in_web_ui=False,
        help="count a correct answer from a fallback model as a success (chaos tests break the primary on purpose)",
    )  # fmt: skip
    parser.add_argument(
        "--request-log", default="", include_in_web_ui=False,
        help="write one CSV line per request to this file (start, duration, route, ok, fallback, cached, error)",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The catalogue and the requests drawn from it


@dataclass(frozen=True)
class Product:
    """A product the service can price, with the range of prices its main list was posted at."""

    stockcode: str
    price_min: float
    price_max: float
    units_per_period: float


PRODUCTS: list[Product] = []
CACHED_REQUESTS: list[dict[str, Any]] = []
CATALOGUE_ERRORS: list[str] = []  # set when the catalogue could not be read; the shape then ends the test


def auth_headers() -> dict[str, str]:
    """The API key header, when the service requires one."""
    key = os.environ.get("LOADTEST_API_KEY") or os.environ.get("PRICING_API_KEY")
    return {"X-API-Key": key} if key else {}


def fetch_catalogue(host: str) -> list[Product]:
    """Every product of the served catalogue, page by page."""
    products: list[Product] = []
    offset, total = 0, 1
    while offset < total:
        response = requests.get(
            f"{host}/products",
            params={"offset": offset, "limit": CATALOGUE_PAGE},
            headers=auth_headers(),
            timeout=REQUEST_TIMEOUT_S,
        )
        response.raise_for_status()
        page = response.json()
        total = page["total"]
        for product in page["products"]:
            main = next(lst for lst in product["lists"] if lst["segment"] == product["main_segment"])
            products.append(
                Product(product["stockcode"], main["price_min"], main["price_max"], main["units_per_period"])
            )
        offset += CATALOGUE_PAGE
    return products


def random_range(rng: random.Random, product: Product) -> tuple[float, float]:
    """A random sub-range of the product's observed prices, rounded as a client would (2 to 4 decimals).

    Random ranges make every request a new cache key, so the uncached path is what gets measured.
    """
    lo, hi = product.price_min, product.price_max
    if hi <= lo:  # sold at one price only: sweep around it, as the service does by default
        lo, hi = lo * 0.9, hi * 1.1
    span = hi - lo
    price_min = rng.uniform(lo, hi - MIN_SPAN * span)
    price_max = rng.uniform(price_min + MIN_SPAN * span, hi)
    # Never round coarser than a hundredth of the span: a narrow range would otherwise repeat requests.
    digits = max(rng.choice((2, 3, 4)), math.ceil(-math.log10(span / 100)))
    rounded = round(price_min, digits), round(price_max, digits)
    return rounded if 0 < rounded[0] < rounded[1] else (price_min, price_max)


def cached_requests(products: list[Product]) -> list[dict[str, Any]]:
    """The fixed set of the cached scenario: the best-selling products over their whole observed range."""
    priced = sorted(
        (p for p in products if p.price_max > p.price_min), key=lambda p: (-p.units_per_period, p.stockcode)
    )
    return [
        {"stockcode": p.stockcode, "price_min": p.price_min, "price_max": p.price_max, "bins": BINS}
        for p in priced[:CACHED_SET_SIZE]
    ]


@events.test_start.add_listener
def load_catalogue(environment: Any, **_kwargs: Any) -> None:
    """Fetch the catalogue once per process; for the cached scenario, send its fixed set once so it is cached."""
    if PRODUCTS:
        return
    try:
        PRODUCTS.extend(fetch_catalogue(environment.host))
        if _option(environment, "scenario", "ramp") == "cached":
            CACHED_REQUESTS.extend(cached_requests(PRODUCTS))
            for body in CACHED_REQUESTS:
                requests.post(
                    f"{environment.host}/price_sweep", json=body, headers=auth_headers(), timeout=REQUEST_TIMEOUT_S
                ).raise_for_status()
    except (requests.RequestException, KeyError, ValueError) as exc:
        CATALOGUE_ERRORS.append(f"cannot read the catalogue of {environment.host}: {exc}")
        log.error(CATALOGUE_ERRORS[-1])
        environment.process_exit_code = 2
    else:
        log.info("catalogue: %d products; cached set: %d requests", len(PRODUCTS), len(CACHED_REQUESTS))


def _option(environment: Any, name: str, default: Any) -> Any:
    return getattr(environment.parsed_options, name, default) if environment.parsed_options else default


class RequestLog:
    """One CSV line per completed request (--request-log), flushed as it is written so a reader can follow."""

    COLUMNS = ("start", "ms", "name", "ok", "fallback", "cached", "error")

    def __init__(self, path: str) -> None:
        self.handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed on test_stop
        self.writer = csv.writer(self.handle)
        self.writer.writerow(self.COLUMNS)

    def write(self, start: float, ms: float, name: str, exception: Any, context: dict[str, Any]) -> None:
        """Record one request: its wall-clock start (Unix seconds), duration and outcome."""
        error = "" if exception is None else str(exception).replace("\n", " ")[:200]
        flags = (int(bool(context.get("fallback"))), int(bool(context.get("cached"))))
        self.writer.writerow((f"{start:.3f}", f"{ms:.1f}", name, int(exception is None), *flags, error))
        self.handle.flush()

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


REQUEST_LOG: list[RequestLog] = []


@events.test_start.add_listener
def open_request_log(environment: Any, **_kwargs: Any) -> None:
    """Open --request-log, when given."""
    path = _option(environment, "request_log", "")
    if path and not REQUEST_LOG:
        REQUEST_LOG.append(RequestLog(path))


@events.request.add_listener
def log_request(
    name: str, response_time: float, exception: Any, context: dict[str, Any], start_time: float, **_kwargs: Any
) -> None:
    """Write the request to --request-log, when given."""
    if REQUEST_LOG:
        REQUEST_LOG[0].write(start_time, response_time, name, exception, context or {})


@events.test_stop.add_listener
def close_request_log(**_kwargs: Any) -> None:
    """Close --request-log after the last request."""
    while REQUEST_LOG:
        REQUEST_LOG.pop().close()


# ---------------------------------------------------------------------------------------------------
# Answer checks: each returns why an answer is wrong, or None


def curve_problem(
    curve: list[dict[str, Any]],
    optimal_price: float,
    optimal_sales: float,
    lo: float,
    hi: float,
    bins: int,
    paid_ratio: float | None = None,
) -> str | None:
    """What is wrong with a curve and its optimum for a request over [lo, hi] with ``bins`` prices, if anything."""
    if len(curve) != bins:
        return f"curve has {len(curve)} prices, asked for {bins}"
    prices = [point["unit_price"] for point in curve]
    sales = [point["predicted_sales"] for point in curve]
    if not (_close(prices[0], lo) and _close(prices[-1], hi)):
        return f"grid runs {prices[0]}..{prices[-1]}, asked for {lo}..{hi}"
    if any(b <= a for a, b in itertools.pairwise(prices)):
        return "grid prices are not increasing"
    for point in curve:
        values = (point["quantity"], point["quantity_min"], point["quantity_max"], point["predicted_sales"])
        if not all(math.isfinite(v) and v >= 0 for v in values):
            return f"non-finite or negative prediction at {point['unit_price']}"
        if not point["quantity_min"] - TOLERANCE <= point["quantity"] <= point["quantity_max"] + TOLERANCE:
            return f"quantity outside its min..max at {point['unit_price']}"
        # Sales are price x units x the list's paid ratio (tier discounts): the same ratio at every price.
        paid = paid_ratio or curve[0]["predicted_sales"] / max(curve[0]["unit_price"] * curve[0]["quantity"], 1e-12)
        if not _close(point["predicted_sales"], point["unit_price"] * point["quantity"] * paid):
            return f"predicted_sales != unit_price x quantity x paid ratio at {point['unit_price']}"
    best = max(sales)
    if not _close(optimal_sales, best):
        return f"optimal predicted_sales {optimal_sales} is not the curve's maximum {best}"
    if not any(_close(p, optimal_price) and _close(s, best) for p, s in zip(prices, sales, strict=True)):
        return f"optimal unit_price {optimal_price} is not where the curve peaks"
    return None


def sweep_problem(
    body: dict[str, Any], stockcode: str, lo: float, hi: float, bins: int, accept_fallback: bool = False
) -> str | None:
    """What is wrong with a /price_sweep or /invocations answer, if anything."""
    if body.get("stockcode") != stockcode:
        return f"answer is for {body.get('stockcode')!r}, asked for {stockcode!r}"
    fallback = body.get("fallback_used") or body.get("model", {}).get("role") != "primary"
    if fallback and not accept_fallback:
        return f"answered by fallback {body.get('model', {}).get('name')} (the primary failed or was too slow)"
    if not body.get("context_rows", 0) > 0:
        return "no context rows"
    optimal, paid = body["optimal"], body["price_list"]["paid_ratio"]
    if not optimal["interval"][0] <= optimal["unit_price"] <= optimal["interval"][1]:
        return f"optimal unit_price {optimal['unit_price']} outside its interval {optimal['interval']}"
    return curve_problem(body["curve"], optimal["unit_price"], optimal["predicted_sales"], lo, hi, bins, paid)


def legacy_problem(rows: list[dict[str, Any]], stockcode: str, lo: float, hi: float, bins: int) -> str | None:
    """What is wrong with a /v1/predict-price answer (one object per grid price), if anything."""
    if not rows:
        return "empty answer"
    if any(row["stockcode"] != stockcode for row in rows):
        return f"rows for another product than {stockcode!r}"
    optima = {(row["optimal_unit_price"], row["max_predicted_sales"]) for row in rows}
    if len(optima) != 1:
        return "rows disagree on the optimum"
    ((optimal_price, optimal_sales),) = optima
    return curve_problem(rows, optimal_price, optimal_sales, lo, hi, bins)


def http_problem(response: Any) -> str:
    """Why a non-200 answer failed: its status and body, or the connection error when no answer came."""
    if response.status_code == 0:  # requests never got a status line: the connection failed or was cut
        return f"{CONNECTION_ERROR}: {type(response.error).__name__}: {response.error}"[:300]
    return f"HTTP {response.status_code}: {response.text[:200]}"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


# ---------------------------------------------------------------------------------------------------
# Users


class PricingUser(HttpUser):
    """Shared behaviour: the API key, the catalogue, and checked sweeps."""

    abstract = True
    wait_time = between(1, 2)

    def on_start(self) -> None:
        """Send the API key with every request; stop the test when the catalogue could not be read."""
        if not PRODUCTS:
            raise StopTest("no products to price: the catalogue could not be read")
        self.client.headers.update(auth_headers())
        self.rng = random.Random()

    def checked_sweep(self, route: str, body: dict[str, Any], lo: float, hi: float) -> None:
        """POST a sweep and check the answer; answers from the cache are counted under '<route> (cached)'."""
        with self.client.post(route, json=body, name=route, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(http_problem(response))
                return
            answer = response.json()
            accept = _option(self.environment, "accept_fallback", False)
            problem = sweep_problem(answer, body["stockcode"], lo, hi, body["bins"], accept)
            # The request log tells fallback and cached answers apart (the legacy route's list says neither).
            response.request_meta["context"] = {"fallback": bool(answer.get("fallback_used")),
                                                "cached": bool(answer.get("cached"))}  # fmt: skip
            if problem:
                response.failure(problem)
            elif answer["cached"]:
                # Kept apart so a cache hit never flatters the computed-answer figures (and vice versa).
                response.request_meta["name"] = f"{route} (cached)"

    def random_request(self) -> tuple[dict[str, Any], float, float]:
        """A sweep of a random product over a random sub-range of its prices."""
        product = self.rng.choice(PRODUCTS)
        lo, hi = random_range(self.rng, product)
        return {"stockcode": product.stockcode, "price_min": lo, "price_max": hi, "bins": BINS}, lo, hi


class SweepUser(PricingUser):
    """A pricing client: the sweep API, and now and then the original system's GET route."""

    weight = 3

    @task(3)
    def price_sweep(self) -> None:
        """POST /price_sweep over a random price range."""
        self.checked_sweep("/price_sweep", *self.random_request())

    @task(1)
    def predict_price_v1(self) -> None:
        """GET /v1/predict-price/{stockcode}, the compatibility route."""
        body, lo, hi = self.random_request()
        params = {"unitprice_min": lo, "unitprice_max": hi, "num_price_bins": BINS}
        name = "/v1/predict-price/[stockcode]"
        with self.client.get(
            f"/v1/predict-price/{body['stockcode']}", params=params, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(http_problem(response))
                return
            problem = legacy_problem(response.json(), body["stockcode"], lo, hi, BINS)
            if problem:
                response.failure(problem)


class InvocationsUser(PricingUser):
    """SageMaker's caller: sweep requests on POST /invocations."""

    weight = 1

    @task
    def invocations(self) -> None:
        """POST /invocations with a sweep body over a random price range."""
        self.checked_sweep("/invocations", *self.random_request())


class CachedSweepUser(PricingUser):
    """A client repeating a few popular sweeps, answered from the service's cache."""

    @task
    def cached_sweep(self) -> None:
        """POST /price_sweep with one of the fixed set of requests."""
        body = self.rng.choice(CACHED_REQUESTS)
        self.checked_sweep("/price_sweep", body, body["price_min"], body["price_max"])


class ClosedLoopSweepUser(SweepUser):
    """SweepUser without think time: each user sends its next request as soon as the last is answered."""

    wait_time = constant(0)


# ---------------------------------------------------------------------------------------------------
# Load shapes


@dataclass(frozen=True)
class WindowStats:
    """Requests answered within a time window, and their latency."""

    seconds: float
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


class Window:
    """Figures of the requests answered since it opened (not cumulative since the start of the test)."""

    def __init__(self, opened_at: float, total: StatsEntry) -> None:
        self.opened_at = opened_at
        self.requests, self.failures = total.num_requests, total.num_failures
        self.response_times = dict(total.response_times)

    def measure(self, now: float, total: StatsEntry) -> WindowStats:
        """The window's figures up to ``now``."""
        times = diff_response_time_dicts(total.response_times, self.response_times)
        requests_, seconds = total.num_requests - self.requests, max(now - self.opened_at, 1e-9)

        def pct(p: float) -> float:
            return float(calculate_response_time_percentile(times, requests_, p)) if requests_ else 0.0

        return WindowStats(
            seconds=round(seconds, 2),
            requests=requests_,
            failures=total.num_failures - self.failures,
            rps=round(requests_ / seconds, 2),
            p50_ms=pct(0.50),
            p95_ms=pct(0.95),
            p99_ms=pct(0.99),
        )


class RampPlan:
    """Ramp from 1 to ``users`` at ``rate`` users/s, then hold; the hold phase is measured on its own."""

    # If users die and are not replaced the count is never reached; start the hold phase anyway after this.
    REACH_GRACE_S = 10.0

    def __init__(self, users: int, rate: float, hold_seconds: float, user_classes: list[type[HttpUser]]) -> None:
        self.users, self.rate, self.hold_seconds, self.user_classes = users, rate, hold_seconds, user_classes
        self.ramp_seconds = (users - 1) / rate
        self.hold: Window | None = None

    def tick(self, now: float, runner: Runner) -> tuple[int, float, list[type[HttpUser]]] | None:
        """The users wanted now, or None when the hold phase is over."""
        reached = runner.user_count >= self.users or now >= self.ramp_seconds + self.REACH_GRACE_S
        if self.hold is None and now >= self.ramp_seconds and reached:
            self.hold = Window(now, runner.stats.total)
        if self.hold is not None and now >= self.hold.opened_at + self.hold_seconds:
            return None
        return self.users, self.rate, self.user_classes

    def report(self, now: float, runner: Runner) -> dict[str, Any]:
        """The shape's figures: the ramp, and the hold phase's throughput and latency."""
        return {
            "name": "ramp",
            "users": self.users,
            "ramp_rate": self.rate,
            "ramp_seconds": round(self.ramp_seconds, 2),
            "hold_started_at_s": None if self.hold is None else round(self.hold.opened_at, 2),
            "hold": None if self.hold is None else vars(self.hold.measure(now, runner.stats.total)),
        }


class KneeSearch:
    """Add closed-loop users step by step until a step's p95 exceeds the limit or a request fails.

    Each step is measured over its own window, after a settling time for the new users, so one slow step is
    not averaged away by the fast ones before it.
    """

    def __init__(self, start: int, step: int, step_seconds: float, max_users: int, p95_limit_ms: float) -> None:
        self.start, self.step, self.step_seconds, self.max_users = start, step, step_seconds, max_users
        self.p95_limit_ms = p95_limit_ms
        self.settle_seconds = min(2.0, step_seconds / 2)
        self.users = start
        self.step_started_at: float | None = None
        self.window: Window | None = None
        self.steps: list[dict[str, Any]] = []
        self.stop_reason = ""
        self.exceeded = False  # a step broke the criterion, so the knee was found (not just --knee-max-users)

    def tick(self, now: float, runner: Runner) -> tuple[int, float, list[type[HttpUser]]] | None:
        """The users of the current step, or None when the search is over."""
        if self.stop_reason:
            return None
        if self.step_started_at is None:
            self.step_started_at = now
        if self.window is None and now >= self.step_started_at + self.settle_seconds:
            self.window = Window(now, runner.stats.total)
        step_over = self.window is not None and now >= self.step_started_at + self.step_seconds
        if step_over and not self._finish_step(self.window.measure(now, runner.stats.total), now):
            return None
        # All of a step's users start at once (within a second): the step's window opens after they have.
        return self.users, float(max(self.step, self.start)), [ClosedLoopSweepUser]

    def _finish_step(self, stats: WindowStats, now: float) -> bool:
        problems = [
            *([f"no answers in {stats.seconds:.0f} s"] if not stats.requests else []),
            *([f"{stats.failures} failed requests"] if stats.failures else []),
            *([f"p95 {stats.p95_ms:.0f} ms > {self.p95_limit_ms:.0f} ms"] if stats.p95_ms > self.p95_limit_ms else []),
        ]
        self.steps.append({"users": self.users, **vars(stats), "ok": not problems})
        log.info("knee step: %d users, %.1f req/s, p95 %.0f ms, %d failures", self.users, stats.rps,
                 stats.p95_ms, stats.failures)  # fmt: skip
        if problems:
            self.stop_reason, self.exceeded = f"{', '.join(problems)} at {self.users} users", True
        elif self.users + self.step > self.max_users:
            self.stop_reason = f"criterion still met at {self.users} users (--knee-max-users): the knee is higher"
        else:
            self.users += self.step
            self.step_started_at, self.window = now, None
        return not self.stop_reason

    def report(self, now: float, runner: Runner) -> dict[str, Any]:
        """The steps, and the knee: the last step whose p95 and errors met the criterion."""
        good = [s for s in self.steps if s["ok"]]
        return {
            "name": "knee",
            "p95_limit_ms": self.p95_limit_ms,
            "step_seconds": self.step_seconds,
            "settle_seconds": self.settle_seconds,
            "steps": self.steps,
            "knee": good[-1] if good else None,
            "knee_found": self.exceeded and bool(good),
            "stop_reason": self.stop_reason or "stopped before the search ended",
        }


class ScenarioShape(LoadTestShape):
    """The load shape of ``--scenario``: a ramp (ramp, cached) or the knee search (knee)."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: RampPlan | KneeSearch | None = None

    def tick(self) -> tuple[int, float, list[type[HttpUser]]] | None:
        """Delegate to the scenario's plan, built from the options on the first tick."""
        if CATALOGUE_ERRORS:
            return None
        if self.plan is None:
            self.plan = make_plan(self.runner.environment.parsed_options)
        return self.plan.tick(self.get_run_time(), self.runner)


def make_plan(options: Any) -> RampPlan | KneeSearch:
    """The plan of the scenario the options name."""
    if options.scenario == "knee":
        return KneeSearch(
            options.knee_start_users,
            options.knee_step_users,
            options.knee_step_seconds,
            options.knee_max_users,
            options.knee_p95_ms,
        )
    classes = [CachedSweepUser] if options.scenario == "cached" else [SweepUser, InvocationsUser]
    return RampPlan(options.ramp_users, options.ramp_rate, options.hold_seconds, classes)


def entry_figures(entry: StatsEntry) -> dict[str, Any]:
    """Whole-run figures of one stats entry (a request name, or the aggregate)."""
    return {
        "method": entry.method or "",
        "name": entry.name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "rps": round(entry.total_rps, 2),
        "avg_ms": round(entry.avg_response_time, 1),
        **{f"p{round(p * 100)}_ms": float(entry.get_response_time_percentile(p) or 0) for p in (0.50, 0.95, 0.99)},
        "max_ms": round(entry.max_response_time, 1),
    }


@events.test_stop.add_listener
def write_report(environment: Any, **_kwargs: Any) -> None:
    """Write the run's figures to --report-json for loadtests/run.py: totals per request name, errors, and the
    shape's own figures (hold phase or knee steps).

    Written when the test stops, after the last request: Locust's CSVs are snapshots up to a second old.
    """
    path = _option(environment, "report_json", "")
    if not path:
        return
    stats, shape = environment.runner.stats, environment.shape_class
    report = {
        "scenario": _option(environment, "scenario", "ramp"),
        "total": entry_figures(stats.total),
        "endpoints": [entry_figures(e) for e in sorted(stats.entries.values(), key=lambda e: (e.name, e.method))],
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in sorted(stats.errors.values(), key=lambda e: -e.occurrences)
        ],
        "exceptions": sum(row["count"] for row in environment.runner.exceptions.values()),
        "setup_errors": CATALOGUE_ERRORS,
    }
    if isinstance(shape, ScenarioShape) and shape.plan is not None:
        report["shape"] = shape.plan.report(shape.get_run_time(), environment.runner)
    Path(path).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_single_user(SweepUser)
