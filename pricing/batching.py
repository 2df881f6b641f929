"""Adaptive batching inside a worker: concurrent requests share one call of the primary model.

``Batcher(compute)`` is awaited once per request with that request's item (a sweep plan, a model matrix).
While ``compute`` runs over a batch in a worker thread, new items queue; when it returns, everything that
queued meanwhile (at most ``max_items``) becomes the next batch. A lone request is computed at once, with no
added wait; under load the batch grows with the queue, so the batch size adapts to the arrival rate and the
model's speed without a latency model to tune. One batch runs at a time per batcher.

Why not BentoML's batchable APIs: a service reaches its own batchable API through BentoML's in-process HTTP
client (JSON both ways, the whole middleware stack, a second route), which cost about 30% of an uncached
sweep's CPU (py-spy, issue #11), and the API is a public route any client can call with arbitrary arrays
(issue #12). Items never leave the process here, so no route exists and nothing is serialised.

A caller that stops waiting (a timeout) cancels only its own future: the batch it is in still runs, and its
result is dropped. An exception from ``compute`` is raised to every request of that batch.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pricing.metrics import BATCH_SIZE

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_MAX_ITEMS = 64


class Batcher(Generic[Item, Result]):
    """Batches concurrent awaits into calls of ``compute(items) -> results`` (one result per item, in order)."""

    def __init__(
        self, compute: Callable[[Sequence[Item]], Sequence[Result]], kind: str, max_items: int = DEFAULT_MAX_ITEMS
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.compute = compute
        self.max_items = max_items
        self._sizes = BATCH_SIZE.labels(kind=kind)
        self._queue: collections.deque[tuple[Item, asyncio.Future[Result]]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run one per call): nothing of the old one survives
            self._loop, self._drainer = loop, None
            self._queue.clear()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            jobs = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_items))]
            jobs = [(item, future) for item, future in jobs if not future.done()]  # callers that gave up
            if not jobs:
                continue
            self._sizes.observe(len(jobs))
            try:
                results = await asyncio.to_thread(self.compute, [item for item, _ in jobs])
                if len(results) != len(jobs):
                    raise RuntimeError(f"batch of {len(jobs)} answered with {len(results)} results")
            except Exception as exc:  # every request of the batch learns why; the next batch still runs
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(jobs, results, strict=True):
                if not future.done():
                    future.set_result(result)
