"""The pricing service: price sweeps over HTTP with the primary model, fallbacks, a cache and SageMaker routes.

A thin adapter over ``pricing``: the serving order recorded by training decides which stored models are
declared (``primary``, ``fallback_1``, ...), so ``bentoml build`` packs exactly those; requests are
validated by ``pricing.api``, answered by ``pricing.serving.PricingEngine`` and cached by
``pricing.cache``. Concurrent requests share the primary's model calls through the engine's in-process
adaptive batching (``pricing.batching``), not through BentoML batchable APIs: reaching those from the
service itself cost a third of a sweep's CPU, and they were public routes.

    bentoml serve service:Pricing            # or: make serve
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pricing import route_metrics
from pricing.api import (
    PredictIn,
    PredictOut,
    ProductIndex,
    SweepIn,
    SweepOut,
    csv_records,
    encode,
    legacy_rows,
    mark_cached,
    predict_out,
    rows_frame,
    sweep_out,
)
from pricing.auth import APIKeyMiddleware
from pricing.limits import DEFAULT_BINS
from pricing.registry import serving_order
from pricing.settings import load_settings
from pricing.ui import router as ui_router

if TYPE_CHECKING:
    from pricing.sweep import SweepRequest

log = logging.getLogger("pricing.service")
# BentoML configures only its own loggers; let ours (model loading, fallbacks, cache outages) through too.
logging.getLogger("pricing").setLevel(logging.INFO)

SETTINGS = load_settings()
_MODELS = serving_order(SETTINGS.run_id)
SERVING_ORDER = [str(model.tag) for model in _MODELS]
# Workers (and workers restarted later) import this module again: they serve the run resolved here, not a
# run published since (a retrain must not change a running service's models). The run is PRICING_RUN_ID's
# when that is set; assigning also replaces an empty value.
os.environ["PRICING_RUN_ID"] = _MODELS[0].info.metadata["run_id"]
MODEL_ATTRIBUTES = ["primary" if rank == 0 else f"fallback_{rank}" for rank in range(len(SERVING_ORDER))]

web = FastAPI(title="pricing routes outside BentoML's POST APIs")
web.include_router(ui_router)  # the price-curve page at /ui (pricing/ui)


def declare_models(cls: type) -> type:
    """Declare each model of the serving order as a ``BentoModel`` class attribute, so BentoML packs it."""
    for attribute, tag in zip(MODEL_ATTRIBUTES, SERVING_ORDER, strict=True):
        setattr(cls, attribute, bentoml.models.BentoModel(tag))
    return cls


def _http_config() -> dict[str, Any]:
    config: dict[str, Any] = {"port": SETTINGS.port}
    if SETTINGS.cors_origins:
        config["cors"] = {
            "enabled": True,
            "access_control_allow_origins": list(SETTINGS.cors_origins),
            "access_control_allow_credentials": False,  # the key goes in a header; never cookies cross-origin
            "access_control_allow_methods": ["GET", "POST", "OPTIONS"],
            "access_control_allow_headers": ["content-type", "x-api-key"],
        }
    return config


@bentoml.service(
    name="pricing",
    workers=SETTINGS.workers,
    traffic={"timeout": 60},
    http=_http_config(),
    metrics={"enabled": True},
)
@bentoml.asgi_app(web, path="/")
@declare_models
class Pricing:
    """Price sweeps with fallback along the serving order, cached answers and SageMaker's contract."""

    def __init__(self) -> None:
        # The serving core is imported here, in the worker: `bentoml serve`'s parent process imports this
        # module only for its configuration and routes, and need not load pandas, pyarrow or Redis.
        from pricing.cache import make_cache
        from pricing.serving import PricingEngine

        # Ready as soon as the first model has loaded; fallbacks load in the background (see PricingEngine).
        self.engine = PricingEngine.load(
            [getattr(self, name) for name in MODEL_ATTRIBUTES], time_budget_s=SETTINGS.model_timeout_s, background=True
        )
        self.cache = make_cache(SETTINGS.redis_url, SETTINGS.cache_ttl_seconds, cluster=SETTINGS.redis_cluster)
        # BentoML's own start-up line says where it listens; this one says what it serves.
        log.info(
            "serving with %s; %d more loading in the background; cache: %s",
            ", ".join(f"{m.tag} [{m.role}]" for m in self.engine.models) or "no model",
            len(self.engine.loading),
            self.cache.backend,
        )

    def __is_ready__(self) -> bool:
        return self.engine.ready

    @property
    def period(self) -> str:
        """The period the models' demand is per ("W" or "D")."""
        return self.engine.period

    @bentoml.on_shutdown
    def close_cache(self) -> None:
        """Release the cache's connections when the worker stops."""
        self.cache.close()

    @bentoml.api(route="/price_sweep", input_spec=SweepIn, output_spec=SweepOut)
    async def price_sweep(self, **params: Any) -> Response:
        """Demand and revenue over a grid of prices for one product, and the revenue-maximising price."""
        payload = SweepIn(**params)
        # The body is built and encoded once (and cached as bytes); SweepOut documents it.
        return _json(await self._answer(payload.to_request(), payload.model))

    @bentoml.api(route="/predict", input_spec=PredictIn, output_spec=PredictOut)
    async def predict(self, **params: Any) -> PredictOut:
        """Predicted units of a product in the period of a date at a posted price, per row (falling back as
        sweeps do)."""
        return PredictOut.model_validate(await self._rows(PredictIn(**params)))

    async def _answer(self, request: SweepRequest, model: str | None = None) -> bytes:
        """The sweep's JSON body, from the cache when it holds it."""
        from pricing.cache import cache_key

        key = cache_key(self.engine.serving_tags, asdict(request) | ({"model": model} if model else {}))
        cached = self.cache.get(key)
        if cached is not None:
            return mark_cached(cached)
        with _http_errors():
            answer = await self.engine.sweep(request, model=model)
        body = encode(sweep_out(answer, self.period))
        self.cache.set(key, body)
        return body

    async def _rows(self, payload: PredictIn) -> dict[str, Any]:
        frame = rows_frame(payload.rows)
        with _http_errors():
            answer = await self.engine.predict_rows(frame)
        return predict_out(answer, self.period)

    # Routes that BentoML's POST-only, one-schema APIs cannot express live on the mounted FastAPI app;
    # BentoML injects the service instance as their first parameter.
    @web.post("/invocations")
    async def invocations(self, request: Request) -> JSONResponse:
        """SageMaker's inference route: a sweep request, or transaction rows as JSON {"rows": [...]} or CSV."""
        raw = await request.body()
        try:
            if request.headers.get("content-type", "").split(";")[0].strip() == "text/csv":
                payload: Any = {"rows": csv_records(raw)}
            else:
                payload = json.loads(raw or b"{}")
            if isinstance(payload, dict) and "rows" in payload:
                return JSONResponse(await self._rows(PredictIn.model_validate(payload)))
            sweep = SweepIn.model_validate(payload)
            return _json(await self._answer(sweep.to_request(), sweep.model))
        except ValidationError as exc:
            raise HTTPException(status_code=400, detail=_describe(exc)) from exc
        except ValueError as exc:  # pandas' CSV ParserError is one too
            raise HTTPException(status_code=400, detail=f"body: not valid JSON or CSV ({exc})") from exc
        except bentoml.exceptions.BentoMLException as exc:
            raise HTTPException(status_code=exc.error_code, detail=str(exc)) from exc

    @web.get("/ping")
    def ping(self) -> JSONResponse:
        """SageMaker's health check: 200 when at least one model is loaded, else 503."""
        ready = self.engine.ready
        return JSONResponse({"status": "ok" if ready else "no model loaded"}, status_code=200 if ready else 503)

    @web.get("/v1/predict-price/{stockcode}")
    async def predict_price_v1(
        self,
        stockcode: str,
        unitprice_min: Annotated[float | None, Query(description="Lowest grid price")] = None,
        unitprice_max: Annotated[float | None, Query(description="Highest grid price")] = None,
        num_price_bins: Annotated[int, Query(description="Number of grid prices")] = DEFAULT_BINS,
    ) -> list[dict[str, Any]]:
        """The original system's route: one object per grid price, with real error statuses."""
        try:
            request = SweepIn(
                stockcode=stockcode, price_min=unitprice_min, price_max=unitprice_max, bins=num_price_bins
            ).to_request()
        except ValidationError as exc:
            raise HTTPException(status_code=400, detail=_legacy_names(_describe(exc))) from exc
        try:
            body = await self._answer(request)
        except bentoml.exceptions.BentoMLException as exc:
            raise HTTPException(status_code=exc.error_code, detail=_legacy_names(str(exc))) from exc
        return legacy_rows(json.loads(body))

    @functools.cached_property
    def product_index(self) -> ProductIndex:
        """The catalogue's products, listed once (the first /products request builds it)."""
        return ProductIndex(self.engine.catalogue)

    @web.get("/products")
    def products(
        self,
        q: Annotated[str, Query(description="Case-insensitive text in the stock code or description")] = "",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """The products that can be priced, each with its price lists (usual, latest and observed posted
        prices, quantity tier, whether its response is identifiable) and the main one."""
        if not self.engine.ready:
            raise HTTPException(status_code=503, detail="no model loaded")
        return self.product_index.page(q, offset, limit)

    @web.get("/model")
    def model(self) -> dict[str, Any]:
        """The models in serving order with versions, metrics and training date, those that failed to load
        and those still loading."""
        return {
            "models": [m.describe() for m in self.engine.models],
            "not_loaded": [{"tag": tag, "error": error} for tag, error in self.engine.load_errors],
            "loading": self.engine.loading,
            "cache": {"backend": self.cache.backend, "healthy": self.cache.healthy()},
        }


if SETTINGS.api_key:
    Pricing.add_asgi_middleware(APIKeyMiddleware, api_key=SETTINGS.api_key)
# BentoML labels its request metrics by raw path (a series per stock code asked for); label them by route.
route_metrics.install(["/price_sweep", "/predict", "/invocations", "/ping", "/products", "/model", "/ui"])


@contextmanager
def _http_errors() -> Iterator[None]:
    """Turn the core's errors into BentoML's HTTP errors: 400 bad input, 404 unknown product, 503 no model."""
    from pricing.serving import ModelsUnavailableError
    from pricing.sweep import SweepInputError, UnknownProductError

    try:
        yield
    except SweepInputError as exc:
        raise bentoml.exceptions.BadInput(str(exc)) from exc
    except UnknownProductError as exc:
        raise bentoml.exceptions.NotFound(str(exc)) from exc
    except ModelsUnavailableError as exc:
        raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors())


def _legacy_names(message: str) -> str:
    # The compatibility route names its own query parameters in errors.
    for ours, theirs in (("price_min", "unitprice_min"), ("price_max", "unitprice_max"), ("bins", "num_price_bins")):
        message = message.replace(ours, theirs)
    return message
