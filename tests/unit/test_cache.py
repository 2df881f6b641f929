"""The sweep cache without a Redis server: keys, the in-memory backend, and RedisCache degrading when nobody answers."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pricing.cache import DEFAULT_TTL_SECONDS, MemoryCache, RedisCache, cache_key, make_cache
from tests.support import FakeClock, free_port, metric

MODELS = ("xgboost:abc123", "lightgbm:def456", "elasticnet:0789ab")
REQUEST = {
    "product_id": "P0042",
    "min_price": 2.5,
    "max_price": 12.0,
    "bins": 41,
    "context": {"hour": 14, "weekday": 2, "promo": False},
    "objective": None,
}


@pytest.fixture
def closed_url() -> str:
    """A redis:// URL on a 127.0.0.1 port nobody listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A listening socket that completes TCP handshakes (the kernel does) but never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        yield sock


def accepted_connections(sock: socket.socket) -> int:
    """Accept and close every connection waiting on `sock`; return how many there were."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


# cache_key


def test_key_is_prefixed_sha256_and_stable() -> None:
    key = cache_key(MODELS, REQUEST)

    assert key.startswith("pricing:sweep:v2:")
    digest = key.removeprefix("pricing:sweep:v2:")
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert cache_key(list(MODELS), dict(REQUEST)) == key


@pytest.mark.parametrize("index", range(len(MODELS)))
def test_key_changes_with_each_model_tag(index: int) -> None:
    models = list(MODELS)
    models[index] += "x"

    assert cache_key(models, REQUEST) != cache_key(MODELS, REQUEST)


def test_key_depends_on_the_serving_order() -> None:
    assert cache_key(MODELS[::-1], REQUEST) != cache_key(MODELS, REQUEST)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product_id", "P0043"),
        ("min_price", 2.6),
        ("max_price", 12.5),
        ("bins", 42),
        ("context", {"hour": 15, "weekday": 2, "promo": False}),
        ("context", {"hour": 14, "weekday": 2, "promo": True}),
        ("objective", "profit"),
    ],
)
def test_key_changes_with_each_request_field(field: str, value: object) -> None:
    assert cache_key(MODELS, {**REQUEST, field: value}) != cache_key(MODELS, REQUEST)


def test_none_is_kept_apart_from_a_missing_field() -> None:
    without = {k: v for k, v in REQUEST.items() if k != "objective"}

    assert cache_key(MODELS, without) != cache_key(MODELS, REQUEST)


def test_integral_floats_and_ints_share_a_key() -> None:
    as_floats = {**REQUEST, "bins": 41.0, "max_price": 12, "context": {"hour": 14.0, "weekday": 2.0, "promo": False}}

    assert cache_key(MODELS, as_floats) == cache_key(MODELS, REQUEST)
    assert cache_key(MODELS, {"prices": [2, 3.0]}) == cache_key(MODELS, {"prices": (2.0, 3)})
    assert cache_key(MODELS, {"price": 2.5}) != cache_key(MODELS, {"price": 2})


def test_booleans_are_not_numbers() -> None:
    assert cache_key(MODELS, {"flag": True}) != cache_key(MODELS, {"flag": 1})


def test_key_order_does_not_matter() -> None:
    reordered = dict(reversed(list(REQUEST.items())))
    reordered["context"] = {"promo": False, "weekday": 2, "hour": 14}

    assert cache_key(MODELS, reordered) == cache_key(MODELS, REQUEST)


# MemoryCache


def test_memory_round_trip_and_miss() -> None:
    cache = MemoryCache()

    assert cache.get("k") is None
    cache.set("k", b'{"optimum": 4.2}')
    assert cache.get("k") == b'{"optimum": 4.2}'
    cache.set("k", b"{}")
    assert cache.get("k") == b"{}"
    assert cache.backend == "memory"
    assert cache.healthy()


def test_memory_counts_hits_and_misses() -> None:
    cache = MemoryCache()
    hits = metric("pricing_cache_lookups_total", backend="memory", result="hit")
    misses = metric("pricing_cache_lookups_total", backend="memory", result="miss")

    cache.get("k")
    cache.set("k", b"v")
    cache.get("k")
    cache.get("k")

    assert metric("pricing_cache_lookups_total", backend="memory", result="hit") == hits + 2
    assert metric("pricing_cache_lookups_total", backend="memory", result="miss") == misses + 1


def test_memory_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl_seconds=60, clock=clock)
    cache.set("old", b"1")
    clock.now += 30
    cache.set("new", b"2")

    clock.now += 29.9
    assert cache.get("old") == b"1"
    clock.now += 0.1
    assert cache.get("old") is None
    assert cache.get("new") == b"2"
    clock.now += 30
    assert cache.get("new") is None


def test_memory_set_renews_the_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl_seconds=60, clock=clock)
    cache.set("k", b"1")
    clock.now += 50
    cache.set("k", b"2")
    clock.now += 50

    assert cache.get("k") == b"2"


def test_memory_default_ttl_is_one_hour() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    cache.set("k", b"v")

    clock.now += DEFAULT_TTL_SECONDS - 1
    assert cache.get("k") == b"v"
    clock.now += 1
    assert cache.get("k") is None


def test_memory_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_bytes=6)  # three one-byte keys with one-byte values
    for key in "abc":
        cache.set(key, key.encode())
    cache.get("a")  # a is now the most recently used, b the least

    cache.set("d", b"d")
    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == [b"a", b"c", b"d"]

    cache.set("c", b"C")  # rewriting refreshes too: a is now the least recently used
    cache.set("e", b"e")
    assert cache.get("a") is None
    assert [cache.get(key) for key in "cde"] == [b"C", b"d", b"e"]


def test_memory_is_bounded_in_bytes() -> None:
    cache = MemoryCache(max_bytes=1_000)
    for i in range(100):
        cache.set(f"key{i:03d}", bytes(94))  # 100 bytes an entry
    assert cache.size_bytes == 1_000
    assert [cache.get(f"key{i:03d}") is not None for i in (89, 90, 99)] == [False, True, True]
    cache.set("big", bytes(2_000))  # larger than the whole cache: not stored, nothing evicted for it
    assert cache.get("big") is None and cache.size_bytes == 1_000
    cache.set("key099", b"short")  # a rewrite replaces the old size
    assert cache.size_bytes == 900 + len("key099") + 5
    cache.close()
    assert cache.size_bytes == 0


@pytest.mark.parametrize("kwargs", [{"ttl_seconds": 0}, {"max_bytes": 0}])
def test_memory_rejects_non_positive_limits(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        MemoryCache(**kwargs)


def test_memory_is_thread_safe() -> None:
    cache = MemoryCache(max_bytes=2_000)
    threads, ops = 8, 500
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(ops):
                key = f"{worker}:{i % 150}"  # 8 x 150 keys of 3-5 bytes, values of 3-5 bytes
                value = f"{worker}:{i}".encode()
                cache.set(key, value)
                got = cache.get(key)
                # Another thread may have evicted it since, but never replaced it with someone else's value.
                assert got is None or got.startswith(f"{worker}:".encode()), got
        except BaseException as error:  # handed to the main thread, which fails the test
            errors.append(error)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert errors == []
    live = sum(cache.get(f"{w}:{k}") is not None for w in range(threads) for k in range(150))
    assert 0 < live <= 2_000 // 6 and cache.size_bytes <= 2_000


# make_cache


def test_make_cache_defaults_to_memory() -> None:
    cache = make_cache(None, ttl_seconds=120, max_bytes=7)

    assert isinstance(cache, MemoryCache)
    assert (cache.ttl_seconds, cache.max_bytes) == (120, 7)
    assert isinstance(make_cache(""), MemoryCache)  # an empty environment variable means no Redis


@pytest.mark.parametrize(("cluster", "backend"), [(False, "redis"), (True, "redis-cluster")])
def test_make_cache_picks_redis_for_a_url(closed_url: str, cluster: bool, backend: str) -> None:
    cache = make_cache(closed_url, ttl_seconds=120, cluster=cluster)

    assert isinstance(cache, RedisCache)
    assert (cache.backend, cache.ttl_seconds, cache.url) == (backend, 120, closed_url)
    cache.close()


def test_redis_rejects_a_bad_url() -> None:
    with pytest.raises(ValueError, match="scheme"):
        RedisCache("http://127.0.0.1:6379")


# RedisCache with nobody answering


@pytest.mark.parametrize(("cluster", "backend"), [(False, "redis"), (True, "redis-cluster")])
def test_redis_down_never_raises(closed_url: str, cluster: bool, backend: str) -> None:
    get_errors = metric("pricing_cache_errors_total", backend=backend, operation="get")
    set_errors = metric("pricing_cache_errors_total", backend=backend, operation="set")
    error_lookups = metric("pricing_cache_lookups_total", backend=backend, result="error")

    cache = RedisCache(closed_url, cluster=cluster, backoff_seconds=0)
    assert not cache.healthy()
    assert cache.get("k") is None
    cache.set("k", b"v")
    assert cache.get("k") is None
    assert not cache.healthy()
    cache.close()

    assert metric("pricing_cache_errors_total", backend=backend, operation="get") == get_errors + 2
    assert metric("pricing_cache_errors_total", backend=backend, operation="set") == set_errors + 1
    assert metric("pricing_cache_lookups_total", backend=backend, result="error") == error_lookups + 2


def test_redis_cluster_client_is_not_built_while_no_node_answers(closed_url: str) -> None:
    cache = RedisCache(closed_url, cluster=True, backoff_seconds=0)

    cache.set("k", b"v")
    assert cache._client is None  # the cluster client connects when built; it is retried on the next call


def test_redis_outage_logs_one_warning_across_threads(closed_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pricing.cache")
    cache = RedisCache(closed_url, backoff_seconds=0)

    def work() -> None:
        for _ in range(20):
            cache.get("k")
            cache.set("k", b"v")

    workers = [threading.Thread(target=work) for _ in range(8)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    records = [r for r in caplog.records if r.name == "pricing.cache"]
    assert [r.levelno for r in records] == [logging.WARNING]
    assert "unavailable" in records[0].getMessage()


def test_redis_logs_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pricing.cache")
    RedisCache(f"redis://user:s3cret@127.0.0.1:{free_port()}/0", backoff_seconds=0)

    assert caplog.records
    assert "s3cret" not in caplog.text
    assert "user" not in caplog.text


@pytest.mark.timeout(30)
def test_a_silent_server_costs_one_socket_timeout(silent_server: socket.socket) -> None:
    url = f"redis://127.0.0.1:{silent_server.getsockname()[1]}/0"
    started = time.monotonic()
    cache = RedisCache(url, socket_timeout=0.25, backoff_seconds=0)
    probe_seconds = time.monotonic() - started

    started = time.monotonic()
    assert cache.get("k") is None
    get_seconds = time.monotonic() - started

    # One timeout each: redis-py's default of 10 retries with back-off would take seconds.
    assert 0.2 < probe_seconds < 0.6
    assert 0.2 < get_seconds < 0.6
    assert accepted_connections(silent_server) == 2
    assert not cache.healthy()


def test_back_off_skips_redis_then_tries_again(silent_server: socket.socket) -> None:
    url = f"redis://127.0.0.1:{silent_server.getsockname()[1]}/0"
    clock = FakeClock()
    get_errors = metric("pricing_cache_errors_total", backend="redis", operation="get")
    cache = RedisCache(url, socket_timeout=0.1, backoff_seconds=5.0, clock=clock)
    assert accepted_connections(silent_server) == 1  # the start-up PING

    started = time.monotonic()
    for _ in range(10):
        assert cache.get("k") is None
        cache.set("k", b"v")
    assert time.monotonic() - started < 0.1  # skipped, not waited for
    assert accepted_connections(silent_server) == 0
    assert metric("pricing_cache_errors_total", backend="redis", operation="get") == get_errors + 10

    clock.now += 5.0
    assert cache.get("k") is None
    assert accepted_connections(silent_server) == 1
    assert not cache.healthy()
