"""The price-sweep answer cache: whole JSON answers keyed by model versions and the normalised request.

Key: ``pricing:sweep:`` + the SHA-256 of canonical JSON (sorted keys, no whitespace) of the model tags in
serving order and the request. Integral floats are written as integers, so ``2.0`` and ``2`` share a key;
``None`` values stay in the key because they stand for "use the default". A new model version changes
its tag and so every key: a retrain never serves stale answers.

TTL: every entry lives ``ttl_seconds`` (default one hour), in memory and in Redis alike.

Backends: ``MemoryCache`` (in-process, LRU-bounded; the default, nothing to install) and ``RedisCache``
(a standalone Redis, or Redis Cluster as ElastiCache runs it). A Redis outage degrades the service to
uncached answers and never raises to the caller: ``get`` returns ``None`` and ``set`` does nothing, each
such call counts in ``pricing_cache_errors_total``, and one warning is logged when Redis goes down and one
info line when it answers again. After a failure ``RedisCache`` leaves Redis alone for a short back-off
(``backoff_seconds``, default 1 s) so that a dead server costs requests almost nothing, then tries again and
resumes caching by itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from pricing.limits import DEFAULT_TTL_SECONDS
from pricing.metrics import CACHE_ERRORS, CACHE_LOOKUPS

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 32 * 2**20  # the in-process cache: about 2,700 default sweep answers
KEY_PREFIX = "pricing:sweep:v2:"  # v2: answers stored as compact JSON bytes (pricing.api.encode)

# What an unreachable or failing Redis raises. RedisClusterException is not a RedisError: the cluster client
# raises it when no node answers (when it is built and when it refreshes its slot map).
REDIS_FAILURES = (RedisError, RedisClusterException, OSError)


def cache_key(model_tags: Sequence[str], request: Mapping[str, object]) -> str:
    """Return the cache key of `request` answered by the models `model_tags` (in serving order).

    `request` holds JSON types only (e.g. a pydantic ``model_dump(mode="json")``).
    """
    document = {"models": list(model_tags), "request": _normalise(request)}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return KEY_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def _normalise(value: object) -> object:
    """Return `value` with integral floats turned into ints, recursively through mappings and sequences."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    return value


class SweepCache(Protocol):
    """What the service needs from a cache of JSON sweep answers."""

    backend: str  # "memory", "redis" or "redis-cluster": the metrics' backend label

    def get(self, key: str) -> bytes | None:
        """Return the cached answer for `key`, or None on a miss or when the backend is unavailable."""
        ...

    def set(self, key: str, value: bytes) -> None:
        """Store `value` under `key` for the cache's TTL; do nothing when the backend is unavailable."""
        ...

    def healthy(self) -> bool:
        """Return True if the backend answered its last operation."""
        ...

    def close(self) -> None:
        """Release the backend's connections."""
        ...


class MemoryCache:
    """An in-process, thread-safe cache with a TTL per entry and least-recently-used eviction.

    Its size is bounded in bytes (keys plus values), not entries: a default sweep's answer is about 12 KB,
    and the cache must not grow the server's memory without bound under a stream of distinct requests.
    """

    backend = "memory"

    def __init__(
        self,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_bytes <= 0:
            raise ValueError(f"ttl_seconds and max_bytes must be positive, got {ttl_seconds} and {max_bytes}")
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (expiry time on `clock`, value), least recently used first
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes held: keys plus values."""
        return self._bytes

    def get(self, key: str) -> bytes | None:
        """Return the live value under `key` and mark it most recently used, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] <= self._clock():
                self._drop(key)
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
        CACHE_LOOKUPS.labels(backend=self.backend, result="miss" if entry is None else "hit").inc()
        return None if entry is None else entry[1]

    def set(self, key: str, value: bytes) -> None:
        """Store `value` under `key`, evicting the least recently used entries beyond `max_bytes` (a value
        larger than the whole cache is not stored)."""
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if len(key) + len(value) > self.max_bytes:
                return
            self._entries[key] = (self._clock() + self.ttl_seconds, value)
            self._bytes += len(key) + len(value)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= len(key) + len(value)

    def healthy(self) -> bool:
        """Return True: memory is always there."""
        return True

    def close(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class RedisCache:
    """A cache in Redis (or Redis Cluster) that degrades to no caching, without raising, while Redis is down.

    A call waits at most `socket_timeout` for Redis and is not retried: a cache is not worth more latency
    than that. (A cluster client that times out also tries to refresh its slot map, which can cost a second
    timeout.) After a failed call, calls during the next `backoff_seconds` skip Redis and count as failed
    too, so an outage costs requests next to nothing; the first call after that tries Redis again, and its
    success ends the outage.
    """

    def __init__(
        self,
        url: str,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        cluster: bool = False,
        socket_timeout: float = 0.25,
        backoff_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.backend = "redis-cluster" if cluster else "redis"
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.cluster = cluster
        self.socket_timeout = socket_timeout
        self.backoff_seconds = backoff_seconds
        self._clock = clock
        self._client: redis.Redis | RedisCluster | None = None
        self._client_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._healthy = True
        self._retry_at = float("-inf")
        self._probe()

    def get(self, key: str) -> bytes | None:
        """Return the value under `key`, or None on a miss or while Redis is unavailable."""
        try:
            value = self._call(lambda client: client.get(key))
        except _UnavailableError:
            CACHE_ERRORS.labels(backend=self.backend, operation="get").inc()
            CACHE_LOOKUPS.labels(backend=self.backend, result="error").inc()
            return None
        CACHE_LOOKUPS.labels(backend=self.backend, result="miss" if value is None else "hit").inc()
        return value

    def set(self, key: str, value: bytes) -> None:
        """Store `value` under `key` with the cache's TTL; do nothing while Redis is unavailable."""
        try:
            self._call(lambda client: client.set(key, value, ex=self.ttl_seconds))
        except _UnavailableError:
            CACHE_ERRORS.labels(backend=self.backend, operation="set").inc()

    def healthy(self) -> bool:
        """Return True if Redis answered the last call (a call skipped during the back-off counts as failed)."""
        return self._healthy

    def close(self) -> None:
        """Close the client's connections; a later call opens new ones."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _probe(self) -> None:
        """PING Redis once so that `healthy()` and the log tell at start-up whether the cache is there."""
        # A failure is logged already; the service starts without its cache and later calls try again.
        with contextlib.suppress(_UnavailableError):
            self._call(lambda client: client.ping())

    def _call(self, operation: Callable[[redis.Redis | RedisCluster], object]) -> object:
        """Run `operation` on the client and record the outcome; raise _UnavailableError if Redis did not answer."""
        if self._clock() < self._retry_at:
            raise _UnavailableError
        try:
            result = operation(self._connected_client())
        except REDIS_FAILURES as error:
            self._mark_down(error)
            raise _UnavailableError from error
        self._mark_up()
        return result

    def _connected_client(self) -> redis.Redis | RedisCluster:
        """Return the client, building it first if needed (a cluster client connects while it is built)."""
        with self._client_lock:
            if self._client is None:
                # Threads that queued here while another one failed to connect honour the back-off it started.
                if self._clock() < self._retry_at:
                    raise _UnavailableError
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> redis.Redis | RedisCluster:
        """Build a client that waits at most `socket_timeout` and never retries, so a call fails fast."""
        options = {
            "socket_connect_timeout": self.socket_timeout,
            "socket_timeout": self.socket_timeout,
            # The cluster client retries 10 times with back-off by default: one failure would cost seconds.
            "retry": Retry(NoBackoff(), 0),
        }
        if self.cluster:
            return RedisCluster.from_url(self.url, **options)
        return redis.Redis.from_url(self.url, **options)

    def _mark_down(self, error: Exception) -> None:
        """Start a back-off and log the outage if Redis was up until now."""
        with self._state_lock:
            was_healthy, self._healthy = self._healthy, False
            self._retry_at = self._clock() + self.backoff_seconds
        if was_healthy:
            log.warning(
                "Redis cache %s (%s) is unavailable, serving uncached until it answers: %s: %s",
                _redacted(self.url),
                self.backend,
                type(error).__name__,
                error,
            )

    def _mark_up(self) -> None:
        """Log the end of an outage if there was one."""
        with self._state_lock:
            was_healthy, self._healthy = self._healthy, True
        if not was_healthy:
            log.info("Redis cache %s (%s) answers again, caching resumed", _redacted(self.url), self.backend)


class _UnavailableError(Exception):
    """Redis did not answer (it failed or the back-off skipped it); the caller serves uncached."""


def _redacted(url: str) -> str:
    """Return `url` without its user name and password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


def make_cache(
    redis_url: str | None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    cluster: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SweepCache:
    """Return a RedisCache when `redis_url` is given (an empty string counts as none), else a MemoryCache."""
    if redis_url:
        return RedisCache(redis_url, ttl_seconds=ttl_seconds, cluster=cluster)
    return MemoryCache(ttl_seconds=ttl_seconds, max_bytes=max_bytes)
