"""In-process adaptive batching: what queues while a batch runs becomes the next batch; failures stay local."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from pricing.batching import Batcher


class Model:
    """Doubles numbers; records each batch; can be held busy until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.release.wait(5)
        if any(item < 0 for item in items):
            raise ValueError("negative input")
        return [2 * item for item in items]


def test_a_lone_request_is_computed_at_once_in_a_batch_of_one() -> None:
    model = Model()
    batcher = Batcher(model, kind="test")
    assert asyncio.run(batcher(21)) == 42
    assert model.batches == [[21]]


def test_requests_arriving_while_the_model_is_busy_form_the_next_batch() -> None:
    model = Model()
    batcher = Batcher(model, kind="test", max_items=3)

    async def scenario() -> list[int]:
        model.release.clear()
        first = asyncio.ensure_future(batcher(0))
        await asyncio.sleep(0.05)  # the first batch is running, held busy
        rest = [asyncio.ensure_future(batcher(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        model.release.set()
        return [await first, *[await r for r in rest]]

    assert asyncio.run(scenario()) == [0, 2, 4, 6, 8, 10]
    assert model.batches == [[0], [1, 2, 3], [4, 5]]  # at most max_items per call, in arrival order


def test_a_failing_batch_fails_its_own_requests_only() -> None:
    model = Model()
    batcher = Batcher(model, kind="test")

    async def scenario() -> tuple[list[object], int]:
        model.release.clear()
        busy = asyncio.ensure_future(batcher(1))
        await asyncio.sleep(0.05)
        doomed = [asyncio.ensure_future(batcher(i)) for i in (2, -3)]
        await asyncio.sleep(0.05)
        model.release.set()
        outcomes = await asyncio.gather(busy, *doomed, return_exceptions=True)
        return outcomes, await batcher(5)

    outcomes, after = asyncio.run(scenario())
    assert outcomes[0] == 2
    assert all(isinstance(o, ValueError) for o in outcomes[1:])
    assert after == 10  # the batcher keeps working after a failed batch


def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    model = Model()
    batcher = Batcher(model, kind="test")

    async def scenario() -> int:
        model.release.clear()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher(1), timeout=0.05)
        patient = asyncio.ensure_future(batcher(4))
        model.release.set()
        return await patient

    assert asyncio.run(scenario()) == 8


def test_a_wrong_number_of_results_is_an_error_for_every_request() -> None:
    batcher = Batcher(lambda items: [0], kind="test")

    async def scenario() -> list[object]:
        return await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) and "batch of 2 answered with 1 results" in str(o) for o in outcomes)


def test_each_event_loop_gets_a_working_batcher() -> None:
    batcher = Batcher(Model(), kind="test")
    assert [asyncio.run(batcher(i)) for i in range(3)] == [0, 2, 4]


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        Batcher(Model(), kind="test", max_items=0)
