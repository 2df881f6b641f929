"""RedisCache against a real redis-server: round trip, TTL, an outage mid-test and the recovery after it.

Cluster mode runs against a one-node Redis Cluster that owns every slot: it exercises the cluster client
(slot map, routing, reconnection) but not redirections between shards or failover.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from pricing.cache import DEFAULT_TTL_SECONDS, RedisCache, make_cache
from tests.redis_server import RedisServer
from tests.support import FakeClock, metric

JSON_ANSWER = b'{"product_id":"P0042","optimum":{"price":4.2,"revenue":118.3}}'


def started_server(workdir: Path, cluster: bool = False) -> RedisServer:
    """A RedisServer in `workdir`, started."""
    server = RedisServer(workdir, cluster=cluster)
    server.start()
    return server


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module (installed first if missing), stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The module's server, running again if a test stopped it, and empty."""
    if not redis_server.running:
        redis_server.start()
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def new_cache() -> Iterator[Callable[..., RedisCache]]:
    """Build RedisCaches that are closed after the test."""
    caches: list[RedisCache] = []

    def build(url: str, **kwargs: object) -> RedisCache:
        cache = RedisCache(url, **kwargs)
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        cache.close()


def test_round_trip_and_lookup_metrics(redis_url: str, new_cache: Callable[..., RedisCache]) -> None:
    cache = new_cache(redis_url)
    hits = metric("pricing_cache_lookups_total", backend="redis", result="hit")
    misses = metric("pricing_cache_lookups_total", backend="redis", result="miss")

    assert cache.healthy()
    assert cache.get("pricing:sweep:k") is None
    cache.set("pricing:sweep:k", JSON_ANSWER)
    assert cache.get("pricing:sweep:k") == JSON_ANSWER
    assert cache.healthy()
    assert metric("pricing_cache_lookups_total", backend="redis", result="hit") == hits + 1
    assert metric("pricing_cache_lookups_total", backend="redis", result="miss") == misses + 1


def test_values_are_bytes_both_ways(redis_url: str, new_cache: Callable[..., RedisCache]) -> None:
    cache = new_cache(redis_url)
    binary = bytes(range(256))
    cache.set("k", binary)

    value = cache.get("k")
    assert type(value) is bytes
    assert value == binary


def test_entries_carry_the_ttl(redis_server: RedisServer, redis_url: str, new_cache: Callable[..., RedisCache]) -> None:
    new_cache(redis_url).set("default", b"v")
    short = new_cache(redis_url, ttl_seconds=1)
    short.set("short", b"v")

    with redis_server.client() as raw:
        assert DEFAULT_TTL_SECONDS - 5 <= raw.ttl("default") <= DEFAULT_TTL_SECONDS
        assert 0 < raw.ttl("short") <= 1
    assert short.get("short") == b"v"
    time.sleep(1.1)
    assert short.get("short") is None


def test_make_cache_with_a_url_caches_in_redis(redis_server: RedisServer, redis_url: str) -> None:
    cache = make_cache(redis_url, ttl_seconds=30)
    cache.set("k", b"v")

    with redis_server.client() as raw:
        assert raw.get("k") == b"v"
        assert 0 < raw.ttl("k") <= 30
    cache.close()


def test_outage_mid_test_then_recovery_on_the_same_object(
    redis_server: RedisServer, redis_url: str, new_cache: Callable[..., RedisCache], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pricing.cache")
    cache = new_cache(redis_url, backoff_seconds=0)
    cache.set("before", b"1")
    assert cache.get("before") == b"1"
    get_errors = metric("pricing_cache_errors_total", backend="redis", operation="get")
    set_errors = metric("pricing_cache_errors_total", backend="redis", operation="set")

    redis_server.stop()
    for _ in range(5):
        started = time.monotonic()
        assert cache.get("before") is None
        cache.set("during", b"2")
        assert time.monotonic() - started < 1.0
    assert not cache.healthy()
    assert metric("pricing_cache_errors_total", backend="redis", operation="get") == get_errors + 5
    assert metric("pricing_cache_errors_total", backend="redis", operation="set") == set_errors + 5

    redis_server.start()  # same port, empty: the old connections in the client's pool are dead
    cache.set("after", b"3")
    assert cache.get("after") == b"3"
    assert cache.healthy()

    levels = [r.levelno for r in caplog.records if r.name == "pricing.cache"]
    assert levels == [logging.WARNING, logging.INFO]  # one line down, one line back, not one per call


@pytest.mark.timeout(30)
def test_a_frozen_server_costs_one_timeout_per_call(
    redis_server: RedisServer, redis_url: str, new_cache: Callable[..., RedisCache]
) -> None:
    cache = new_cache(redis_url, socket_timeout=0.25, backoff_seconds=0)
    cache.set("k", b"v")

    redis_server.pause()
    try:
        for operation in (lambda: cache.get("k"), lambda: cache.set("k", b"w")):
            started = time.monotonic()
            assert operation() is None
            assert 0.2 < time.monotonic() - started < 0.5
        assert not cache.healthy()
    finally:
        redis_server.resume()
    assert cache.get("k") == b"v"  # the timed-out connection was dropped, not left out of step
    assert cache.healthy()


def test_back_off_skips_redis_until_it_ends(
    redis_server: RedisServer, redis_url: str, new_cache: Callable[..., RedisCache]
) -> None:
    clock = FakeClock()
    cache = new_cache(redis_url, backoff_seconds=30, clock=clock)

    redis_server.stop()
    assert cache.get("k") is None  # fails and starts the back-off
    redis_server.start()
    with redis_server.client() as raw:
        raw.set("k", b"written behind the cache's back")
    assert cache.get("k") is None  # Redis is up, but the back-off still skips it
    assert not cache.healthy()

    clock.now += 30
    assert cache.get("k") == b"written behind the cache's back"
    assert cache.healthy()


def test_cache_created_while_redis_is_down_starts_working_when_it_comes_up(
    tmp_path: Path, new_cache: Callable[..., RedisCache]
) -> None:
    server = RedisServer(tmp_path)  # a port of its own, not listening yet
    cache = new_cache(server.url, backoff_seconds=0)
    assert not cache.healthy()
    assert cache.get("k") is None
    cache.set("k", b"lost")

    server.start()
    try:
        assert cache.get("k") is None
        cache.set("k", b"v")
        assert cache.get("k") == b"v"
        assert cache.healthy()
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_cluster_mode_on_a_one_node_cluster(tmp_path: Path, new_cache: Callable[..., RedisCache]) -> None:
    server = started_server(tmp_path, cluster=True)
    try:
        cache = new_cache(server.url, cluster=True, ttl_seconds=30, backoff_seconds=0)
        assert isinstance(cache._client, RedisCluster)
        assert cache.backend == "redis-cluster"
        cache.set("pricing:sweep:k", JSON_ANSWER)
        assert cache.get("pricing:sweep:k") == JSON_ANSWER
        with server.client() as raw:
            assert 0 < raw.ttl("pricing:sweep:k") <= 30

        server.pause()
        try:
            started = time.monotonic()
            assert cache.get("pricing:sweep:k") is None
            # The timed-out GET, then the slot-map refresh that follows it: two socket timeouts, no retries.
            assert time.monotonic() - started < 0.8
        finally:
            server.resume()
        assert cache.get("pricing:sweep:k") == JSON_ANSWER

        server.stop()
        assert cache.get("pricing:sweep:k") is None
        cache.set("pricing:sweep:k", b"lost")
        assert not cache.healthy()

        server.start()  # nodes.conf keeps the slots: the same cluster comes back
        cache.set("pricing:sweep:k", b"again")
        assert cache.get("pricing:sweep:k") == b"again"
        assert cache.healthy()
    finally:
        server.stop()


def test_cluster_cache_created_while_the_cluster_is_down(tmp_path: Path, new_cache: Callable[..., RedisCache]) -> None:
    server = RedisServer(tmp_path, cluster=True)
    cache = new_cache(server.url, cluster=True, backoff_seconds=0)
    assert cache.get("k") is None
    assert cache._client is None

    server.start()
    try:
        cache.set("k", b"v")
        assert cache.get("k") == b"v"
        assert isinstance(cache._client, RedisCluster)
    finally:
        server.stop()
