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
import logging
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pricing import edge, route_metrics
from pricing.api import (
    LegacyPoint,
    PredictIn,
    PredictOut,
    ProductIndex,
    SweepIn,
    SweepOut,
    encode,
    invocation_payload,
    legacy_rows,
    mark_cached,
    only_query,
    predict_out,
    rows_frame,
    sweep_out,
)
from pricing.auth import OPEN_PATHS, APIKeyMiddleware
from pricing.errors import (
    ApiError,
    ClientErrorLogFilter,
    ErrorBodyMiddleware,
    answers_errors,
    domain_errors,
    error_response,
    from_pydantic,
)
from pricing.errors import install_handlers as install_error_handlers
from pricing.limits import DEFAULT_BINS, MAX_BINS, MAX_PRICE, MIN_BINS, BodyLimitMiddleware, JSONBodyMiddleware
from pricing.openapi import contract_document
from pricing.registry import serving_order
from pricing.settings import load_settings
from pricing.ui import router as ui_router

if TYPE_CHECKING:
    from pricing.sweep import SweepRequest

log = logging.getLogger("pricing.service")
# BentoML configures only its own loggers; let ours (model loading, fallbacks, cache outages) through too.
logging.getLogger("pricing").setLevel(logging.INFO)
logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorLogFilter())

SETTINGS = load_settings()
_MODELS = serving_order(SETTINGS.run_id)
SERVING_ORDER = [str(model.tag) for model in _MODELS]
# Workers (and workers restarted later) import this module again: they serve the run resolved here, not a
# run published since (a retrain must not change a running service's models). The run is PRICING_RUN_ID's
# when that is set; assigning also replaces an empty value.
os.environ["PRICING_RUN_ID"] = _MODELS[0].info.metadata["run_id"]
MODEL_ATTRIBUTES = ["primary" if rank == 0 else f"fallback_{rank}" for rank in range(len(SERVING_ORDER))]

# FastAPI's own /openapi.json and /docs are off: /docs.json is the service's one document.
web = FastAPI(title="pricing routes outside BentoML's POST APIs", openapi_url=None, docs_url=None, redoc_url=None)
web.include_router(ui_router)  # the price-curve page at /ui (pricing/ui)
install_error_handlers(web)
# The compatibility route names its query parameters as the original system did, in errors too.
LEGACY_NAMES = {"price_min": "unitprice_min", "price_max": "unitprice_max", "bins": "num_price_bins"}
# Its parameters' bounds are documented here and checked by SweepIn, so that breaking one stays a 400 (as in the
# original system); FastAPI's checks would answer 422.
_PRICE = {"exclusiveMinimum": 0, "maximum": MAX_PRICE}
_BINS = {"minimum": MIN_BINS, "maximum": MAX_BINS}


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

    # BentoML validates these two APIs' bodies (pricing.errors.ErrorBodyMiddleware rewrites its error bodies);
    # answers_errors renders the errors raised while answering.
    @bentoml.api(route="/price_sweep", input_spec=SweepIn, output_spec=SweepOut)
    @answers_errors
    async def price_sweep(self, **params: Any) -> Response:
        """Demand and revenue over a grid of prices for one product, and the revenue-maximising price."""
        payload = SweepIn(**params)
        # The body is built and encoded once (and cached as bytes); SweepOut documents it.
        return _json(await self._answer(payload.to_request(), payload.model))

    @bentoml.api(route="/predict", input_spec=PredictIn, output_spec=PredictOut)
    @answers_errors
    async def predict(self, **params: Any) -> PredictOut:
        """Predicted units of a product in the period of a date at a posted price, per row (falling back as
        sweeps do)."""
        return PredictOut.model_validate(await self._rows(PredictIn(**params)))

    async def _answer(
        self, request: SweepRequest, model: str | None = None, rename: dict[str, str] | None = None
    ) -> bytes:
        """The sweep's JSON body, from the cache when it holds it; ``ApiError`` when it cannot be answered."""
        from pricing.cache import cache_key

        key = cache_key(self.engine.serving_tags, asdict(request) | ({"model": model} if model else {}))
        cached = self.cache.get(key)
        if cached is not None:
            return mark_cached(cached)
        with domain_errors(rename):
            answer = await self.engine.sweep(request, model=model)
        body = encode(sweep_out(answer, self.period))
        self.cache.set(key, body)
        return body

    async def _rows(self, payload: PredictIn) -> dict[str, Any]:
        frame = rows_frame(payload.rows)
        with domain_errors():
            answer = await self.engine.predict_rows(frame)
        return predict_out(answer, self.period)

    # Routes that BentoML's POST-only, one-schema APIs cannot express live on the mounted FastAPI app;
    # BentoML injects the service instance as their first parameter.
    @web.post("/invocations")
    async def invocations(self, request: Request) -> Response:
        """SageMaker's inference route: a sweep request, or transaction rows as JSON {"rows": [...]} or CSV."""
        payload = invocation_payload(await request.body(), request.headers.get("content-type", ""))
        if isinstance(payload, PredictIn):
            return JSONResponse(await self._rows(payload))
        return _json(await self._answer(payload.to_request(), payload.model))

    @web.get("/ping")
    def ping(self) -> Response:
        """SageMaker's health check: 200 when at least one model is loaded, else 503."""
        if not self.engine.ready:
            return error_response(503, "no model loaded")
        return JSONResponse({"status": "ok"})

    @web.get(
        "/v1/predict-price/{stockcode}",
        responses={200: {"model": list[LegacyPoint]}},
        dependencies=[Depends(only_query("unitprice_min", "unitprice_max", "num_price_bins"))],
    )
    async def predict_price_v1(
        self,
        stockcode: Annotated[str, Path(json_schema_extra={"minLength": 1, "maxLength": 32})],
        unitprice_min: Annotated[float | None, Query(description="Lowest grid price", json_schema_extra=_PRICE)] = None,
        unitprice_max: Annotated[
            float | None, Query(description="Highest grid price, above unitprice_min", json_schema_extra=_PRICE)
        ] = None,
        num_price_bins: Annotated[
            int, Query(description="Number of grid prices", json_schema_extra=_BINS)
        ] = DEFAULT_BINS,
    ) -> list[dict[str, Any]]:
        """The original system's route: one object per grid price, with real error statuses."""
        try:
            request = SweepIn(
                stockcode=stockcode, price_min=unitprice_min, price_max=unitprice_max, bins=num_price_bins
            ).to_request()
        except ValidationError as exc:
            raise from_pydantic(exc, rename=LEGACY_NAMES) from exc
        return legacy_rows(orjson.loads(await self._answer(request, rename=LEGACY_NAMES)))

    @functools.cached_property
    def product_index(self) -> ProductIndex:
        """The catalogue's products, listed once (the first /products request builds it)."""
        return ProductIndex(self.engine.catalogue)

    @web.get("/products", dependencies=[Depends(only_query("q", "offset", "limit"))])
    def products(
        self,
        q: Annotated[str, Query(description="Case-insensitive text in the stock code or description")] = "",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """The products that can be priced, each with its price lists (usual, latest and observed posted
        prices, quantity tier, whether its response is identifiable) and the main one."""
        if not self.engine.ready:
            raise ApiError(503, "no model loaded")
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


# Outermost first: every error body leaves in one shape, oversized bodies are refused before anything reads them.
# pricing.edge moves the error body and BentoML's CORS in front of BentoML's own traffic timeout (504), so that
# its answers and the 401/413/415 below leave in the one body and with CORS headers.
edge.install(Pricing)
Pricing.add_asgi_middleware(ErrorBodyMiddleware)
Pricing.add_asgi_middleware(BodyLimitMiddleware, max_bytes=SETTINGS.max_body_bytes)
Pricing.add_asgi_middleware(JSONBodyMiddleware, paths=frozenset(api.route for api in Pricing.apis.values()))
if SETTINGS.api_key:
    Pricing.add_asgi_middleware(APIKeyMiddleware, api_key=SETTINGS.api_key)
# BentoML labels its request metrics by raw path (a series per stock code asked for); label them by route.
route_metrics.install(["/price_sweep", "/predict", "/invocations", "/ping", "/products", "/model", "/ui"])


@web.get("/docs.json", include_in_schema=False)
def docs_json() -> Response:
    """The OpenAPI 3.0 document (served before BentoML's own /docs.json route, which it completes)."""
    return _json(_document())


@functools.cache
def _document() -> bytes:
    model_names = [tag.split(":")[0] for tag in SERVING_ORDER]
    open_paths = OPEN_PATHS if SETTINGS.api_key else None
    document = contract_document(Pricing.openapi_spec.asdict(), model_names=model_names, open_paths=open_paths)
    return orjson.dumps(document)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")
