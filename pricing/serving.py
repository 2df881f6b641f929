"""The serving core, free of any web framework: one training run's models in serving order, with fallback.

``PricingEngine.load`` loads the models ``pricing.registry.serving_order`` returns. A model that fails to
load (missing or corrupt files) is logged and skipped; the engine is ready while at least one model loaded.
With ``background=True`` (the service) it returns as soon as the first model has loaded and loads the
fallbacks in a thread: importing PyTorch for a fallback network alone took 1.3 s of a 6 s start-up. A
request that needs a fallback still loading waits for it (at most ``LOADING_WAIT_S``).

A sweep is validated and planned once, with the first loaded model's sweeper (every model of one run
carries the same pipeline and context periods, so they share the plan); once the models have loaded, the
background thread encodes every list's context periods at once (``Sweeper.prepare``), so a list's first
sweep no longer pays for its encoding. Then the models are tried in
serving order, each predicting the levels of the plan's context periods into curve statistics
(``pricing.sweep.curve_stats``): a model whose predict call raises, returns non-finite values or exceeds
the per-call time budget is skipped, counted in ``pricing_fallbacks_total`` and the next one answers. The
answer says which model answered and why the ones before it did not. When every model fails,
``ModelsUnavailableError``.

``predict_rows`` answers demand requests the same way: a product, its price list, a date and a posted price
give a demand cell, whose level the models predict and whose units are that level times the list's response
at the price.

The primary's calls are batched across concurrent requests (``pricing.batching``: the context blocks of
every sweep that arrived while the previous batch ran go to the model in one call); fallbacks, which answer
only when the primary fails, predict per request. Both run in worker threads. A call that exceeds its budget
is abandoned, not killed: Python cannot stop a running thread, so its result is discarded when it arrives.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import pyarrow

from pricing import faults
from pricing.batching import Batcher
from pricing.features import KEYS, units_at_price
from pricing.limits import DEFAULT_TIME_BUDGET_S
from pricing.metrics import FALLBACKS
from pricing.registry import StoredModel, load_model
from pricing.sweep import (
    STATS,
    Sweeper,
    SweepInputError,
    SweepPlan,
    SweepRequest,
    SweepResult,
    curve_stats,
    plans_stats,
)

log = logging.getLogger(__name__)

LOADING_WAIT_S = 30.0  # the longest a request waits for fallbacks still loading in the background


class ModelsUnavailableError(RuntimeError):
    """No model could answer; ``failures`` lists (model tag, reason) in serving order."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        detail = "; ".join(f"{tag}: {reason}" for tag, reason in failures) or "no model is loaded"
        super().__init__(f"no model could answer ({detail})")
        self.failures = failures


@dataclass
class ServedModel:
    """A loaded model and its place in the serving order."""

    stored: StoredModel
    rank: int

    @property
    def tag(self) -> str:
        """The model-store tag, ``name:version``."""
        return self.stored.tag

    @property
    def role(self) -> str:
        """``primary`` or ``fallback-N`` as recorded by training."""
        return str(self.stored.metadata.get("role", f"rank-{self.rank}"))

    def describe(self) -> dict[str, Any]:
        """Name, version, role, family, metrics and training date, JSON-ready."""
        name, version = self.tag.split(":")
        meta = self.stored.metadata
        return {
            "name": name,
            "version": version,
            "role": self.role,
            "family": self.stored.family,
            "metrics": meta.get("metrics", {}),
            "trained_at": meta.get("trained_at"),
            "run_id": meta.get("run_id"),
            "promotion": meta.get("promotion"),
        }


@dataclass(frozen=True)
class Answer:
    """Which model answered, and the models that failed before it; ``chosen`` when the caller named it."""

    model: ServedModel
    failures: list[tuple[str, str]]
    chosen: bool = field(default=False, kw_only=True)

    @property
    def fallback_used(self) -> bool:
        """Whether a model other than the primary answered because the ones before it failed (at this call or
        at load); never for a model the caller chose."""
        return self.model.rank > 0 and not self.chosen


@dataclass(frozen=True)
class SweepAnswer(Answer):
    """A sweep result and the model that produced it."""

    result: SweepResult


@dataclass(frozen=True)
class RowsAnswer(Answer):
    """Predicted units per period for demand requests: the cells asked about (with each row's resolved list
    and period), the units, the predicted sales and whether each row's list was seen in training."""

    cells: pd.DataFrame
    units: np.ndarray
    sales: np.ndarray
    known: np.ndarray


class PricingEngine:
    """Answers price sweeps with the primary model, falling back along the serving order."""

    def __init__(
        self,
        models: Sequence[ServedModel],
        load_errors: Sequence[tuple[str, str]] = (),
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        serving_tags: Sequence[str] | None = None,
    ) -> None:
        self.models = list(models)
        self.load_errors = list(load_errors)
        self.time_budget_s = time_budget_s
        self.serving_tags = list(serving_tags) if serving_tags is not None else [m.tag for m in self.models]
        # One run's models share pipeline and context rows, so one sweeper plans for all of them.
        self._sweeper = self.models[0].stored.sweeper() if self.models else None
        self._loaded = threading.Event()  # cleared while fallbacks load in the background
        self._loaded.set()
        self._primary_sweeps = Batcher(self._primary_plans_stats, kind="sweep")
        self._primary_rows = Batcher(self._primary_levels, kind="predict")

    @classmethod
    def load(
        cls,
        refs: Sequence[bentoml.Model | str],
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        background: bool = False,
    ) -> PricingEngine:
        """Load every model in ``refs`` (serving order), skipping and logging those that fail to load.

        With ``background``, return once the first loadable model has loaded; the others load in a thread.
        """
        tags = [str(ref.tag) if isinstance(ref, bentoml.Model) else ref for ref in refs]
        engine = cls([], [], time_budget_s, serving_tags=tags)
        pending = list(enumerate(refs))
        shared: dict[str, Any] = {}  # one copy of the pipeline and context rows the run's models share
        while pending and not engine.models:  # the first model that loads plans every sweep
            engine._load_one(*pending.pop(0), shared)
        if background and pending:
            engine._loaded.clear()
            threading.Thread(
                target=engine._load_rest, args=(pending, shared), name="load-fallbacks", daemon=True
            ).start()
        else:
            engine._load_rest(pending, shared)
        return engine

    def _load_one(self, rank: int, ref: bentoml.Model | str, shared: dict[str, Any]) -> None:
        tag = self.serving_tags[rank]
        started = time.perf_counter()
        try:
            model = ServedModel(load_model(ref, shared), rank)
        except Exception as exc:  # any failure to load one model must not stop the others
            self.load_errors.append((tag, f"{type(exc).__name__}: {exc}"))
            log.error("model %s failed to load and will not serve: %s", tag, exc)
            return
        if self._sweeper is None:
            self._sweeper = model.stored.sweeper()
        self.models.append(model)
        log.info("loaded %s (%s) in %.2f s", tag, model.role, time.perf_counter() - started)

    def _load_rest(self, pending: list[tuple[int, bentoml.Model | str]], shared: dict[str, Any]) -> None:
        try:
            for rank, ref in pending:
                self._load_one(rank, ref, shared)
        finally:
            self._loaded.set()
        self._prepare_sweeper()
        _release_memory()

    def _prepare_sweeper(self) -> None:
        """Encode every list's context at once (Sweeper.prepare); sweeps meanwhile take the per-list path."""
        if self._sweeper is None:
            return
        started = time.perf_counter()
        try:
            self._sweeper.prepare()
        except Exception:  # the per-list path keeps answering: slower first sweeps, not an outage
            log.exception("could not prepare every list's context at once; sweeps encode per list")
            return
        lists, seconds = len(self._sweeper.store.lists), time.perf_counter() - started
        log.info("prepared %d price lists' context in %.2f s", lists, seconds)

    @property
    def ready(self) -> bool:
        """True while at least one model is loaded."""
        return bool(self.models)

    @property
    def loading(self) -> list[str]:
        """Tags of the models still loading in the background, in serving order."""
        if self._loaded.is_set():
            return []
        done = {m.tag for m in self.models} | {tag for tag, _ in self.load_errors}
        return [tag for tag in self.serving_tags if tag not in done]

    @property
    def tags(self) -> list[str]:
        """Tags of the loaded models, in serving order."""
        return [m.tag for m in self.models]

    @property
    def catalogue(self) -> pd.DataFrame:
        """The price lists that can be priced: description, posted prices, tier, response (pricing.sweep)."""
        return self._first().stored.context.catalogue

    @property
    def period(self) -> str:
        """The period the models' demand is per ("W" or "D")."""
        return self._first().stored.pipeline.period

    def _first(self) -> ServedModel:
        if not self.models:
            raise ModelsUnavailableError(self.load_errors)
        return self.models[0]

    def plan(self, request: SweepRequest) -> SweepPlan:
        """Validate and plan a sweep; raises SweepInputError or UnknownProductError for bad requests."""
        return self._sweeper_or_fail().plan(request)

    def _sweeper_or_fail(self) -> Sweeper:
        if self._sweeper is None:
            raise ModelsUnavailableError(self.load_errors)
        return self._sweeper

    def _primary_plans_stats(self, plans: Sequence[SweepPlan]) -> list[np.ndarray]:
        faults.check("primary")  # a test facility (pricing.faults); returns at once unless PRICING_FAULTS_FILE
        return plans_stats(self._first().stored.estimator.predict, plans)

    def _primary_levels(self, matrices: Sequence[np.ndarray]) -> list[np.ndarray]:
        faults.check("primary")
        levels = np.asarray(self._first().stored.estimator.predict(np.vstack(matrices)))
        return np.split(levels, np.cumsum([len(m) for m in matrices])[:-1])

    async def sweep(self, request: SweepRequest, model: str | None = None) -> SweepAnswer:
        """Answer a sweep along the serving order, the primary's model call batched with concurrent sweeps'.

        ``model`` (a model name of the serving order, e.g. ``pricing_xgboost``) makes that model alone answer,
        with no fallback: a comparison of the models' curves must not silently show another model's.
        """
        if model is not None:
            self.check_model_name(model)
        plan = self.plan(request)

        def stats(served: ServedModel) -> np.ndarray:
            return curve_stats(served.stored.estimator.predict(plan.context), plan.log_response)

        stats_, answered, failures = await self._along_order(
            stats, lambda: self._primary_sweeps(plan), (len(plan.prices), len(STATS)), only=model
        )
        return SweepAnswer(
            model=answered, failures=failures, result=Sweeper.summarise(plan, stats_), chosen=model is not None
        )

    @property
    def model_names(self) -> list[str]:
        """Names of the serving order's models (loaded or not), in order."""
        return [tag.split(":")[0] for tag in self.serving_tags]

    def check_model_name(self, name: str) -> None:
        """Raise SweepInputError (field ``model``) unless ``name`` is a model of the serving order."""
        if name not in self.model_names:
            names = ", ".join(self.model_names)
            raise SweepInputError("model", f"{name!r} is not a model of the serving order ({names})")

    async def predict_rows(self, rows: pd.DataFrame) -> RowsAnswer:
        """Predicted units of each request (StockCode, segment or None for the product's main list, date,
        posted price) in the period its date falls in."""
        first = self._first()
        pipeline, context = first.stored.pipeline, first.stored.context
        segments = [
            context.default_segment.get(code, "wholesale") if pd.isna(segment) else segment
            for code, segment in zip(rows["StockCode"], rows["segment"], strict=True)
        ]
        cells = pipeline.cells_for(rows["StockCode"], np.array(segments), rows["date"], rows["posted_price"])
        matrix = pipeline.transform(cells)
        levels, model, failures = await self._along_order(
            lambda m: m.stored.estimator.predict(matrix), lambda: self._primary_rows(matrix), (len(matrix),)
        )
        units = units_at_price(levels, pipeline.log_response(cells))
        terms = pipeline.list_terms(cells["StockCode"].to_numpy(), cells["segment"].to_numpy())
        known = pd.MultiIndex.from_frame(cells[KEYS]).isin(pipeline.lists_.index)
        sales = cells["posted_price"].to_numpy() * units * terms["paid_ratio"].to_numpy()
        return RowsAnswer(model=model, failures=failures, cells=cells, units=units, sales=sales, known=known)

    async def _along_order(
        self,
        compute: Callable[[ServedModel], np.ndarray],
        primary: Callable[[], Awaitable[np.ndarray]],
        shape: tuple[int, ...],
        only: str | None = None,
    ) -> tuple[np.ndarray, ServedModel, list[tuple[str, str]]]:
        """The first valid result along the serving order, the model that made it, and the failures before it.

        ``compute(model)`` runs in a worker thread for a fallback; ``primary()`` answers for the primary.
        ``only`` (a model name) skips every other model.
        """
        failures: list[tuple[str, str]] = []
        index = 0
        while index < len(self.models) or await self._wait_for_loading():
            if index >= len(self.models):
                continue  # loading finished, or the next model arrived
            model = self.models[index]
            index += 1
            if only is not None and model.tag.split(":")[0] != only:
                continue
            call = primary if model is self.models[0] else _in_thread(compute, model)
            try:
                result = np.asarray(await asyncio.wait_for(call(), timeout=self.time_budget_s), dtype=np.float64)
                if result.shape != shape:
                    raise ValueError(f"returned shape {result.shape}, expected {shape}")
                if not np.isfinite(result).all():
                    self._fail(model, "non_finite", "returned non-finite predictions", failures, only is None)
                    continue
            except TimeoutError:
                self._fail(model, "timeout", f"exceeded its {self.time_budget_s:g} s budget", failures, only is None)
                continue
            except Exception as exc:  # a failing model is the reason fallbacks exist
                self._fail(model, "error", f"{type(exc).__name__}: {exc}", failures, only is None)
                continue
            return result, model, failures
        if only is not None:
            failures += [(tag, error) for tag, error in self.load_errors if tag.split(":")[0] == only]
            raise ModelsUnavailableError(failures or [(only, "not loaded")])
        raise ModelsUnavailableError(failures or self.load_errors)

    async def _wait_for_loading(self) -> bool:
        """Wait (at most LOADING_WAIT_S) for background loading to finish; False when nothing is loading."""
        if self._loaded.is_set():
            return False
        await asyncio.get_running_loop().run_in_executor(None, self._loaded.wait, LOADING_WAIT_S)
        return self._loaded.is_set()

    @staticmethod
    def _fail(model: ServedModel, reason: str, detail: str, failures: list[tuple[str, str]], fallback: bool) -> None:
        """Record a model's failure; ``fallback`` when the next model of the order will try (not for a model the
        request named, which answers alone)."""
        if fallback:
            FALLBACKS.labels(model=model.tag.split(":")[0], reason=reason).inc()
            log.warning("model %s %s; falling back", model.tag, detail)
        else:
            log.warning("model %s %s; it was named in the request, so no other model answers", model.tag, detail)
        failures.append((model.tag, detail))


def _in_thread(compute: Callable[[ServedModel], np.ndarray], model: ServedModel) -> Callable[[], Awaitable[np.ndarray]]:
    async def run() -> np.ndarray:
        return await asyncio.to_thread(compute, model)

    return run


def _release_memory() -> None:
    """Hand memory freed after loading back to the system: Arrow's pool keeps the buffers of reading Parquet
    (about 50 MB), and glibc's heap the temporaries of loading and preparing (about 25 MB on the real file)."""
    pyarrow.default_memory_pool().release_unused()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        pass
