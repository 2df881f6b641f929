"""HTTP schemas: validated inputs (their descriptions and examples drive the OpenAPI page) and responses.

The service validates every input here, at the boundary; anything out of range is a 400 that names the
field (rendered by ``pricing.errors``), and ``/invocations`` bodies (JSON or CSV) are read here too. Sweep
responses are built from a ``pricing.serving.SweepAnswer`` in two shapes: the native one (the curve per
period, the optimum with its interval, and the price list it is for) and the list of per-price objects that
clients of the original system read from ``/v1/predict-price`` (that shape is unchanged: none of the new
fields). Demand predictions (``/predict``, and ``/invocations`` with rows as JSON or CSV) from a
``RowsAnswer``.

Light to import (no pandas or serving core at import time): the `bentoml serve` parent process imports these
schemas to build the routes and the OpenAPI document, and nothing else.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from starlette.requests import Request

from pricing.limits import DEFAULT_BINS, DEFAULT_CONTEXT, MAX_BINS, MAX_CONTEXT, MAX_PRICE, MIN_BINS

if TYPE_CHECKING:
    import pandas as pd

    from pricing.serving import RowsAnswer, SweepAnswer
    from pricing.sweep import SweepRequest

Segment = Literal["wholesale", "retail"]
_SEGMENT = (
    "Price list: wholesale (registered customers' list, with quantity tiers) or retail (the list lines without a "
    "customer id mostly pay, about twice the wholesale one). Default: the product's main list"
)


class SweepIn(BaseModel):
    """A price sweep request."""

    model_config = ConfigDict(extra="forbid")

    stockcode: str = Field(
        min_length=1, max_length=32, description="Product stock code, as in the transactions", examples=["85123A"]
    )
    segment: Segment | None = Field(None, description=_SEGMENT, examples=["wholesale"])
    price_min: float | None = Field(
        None, gt=0, le=MAX_PRICE, allow_inf_nan=False, examples=[2.0],
        description="Lowest posted price of the grid (default: the lower of the lowest posted price and 0.7x the "
        "usual one)",
    )  # fmt: skip
    price_max: float | None = Field(
        None, gt=0, le=MAX_PRICE, allow_inf_nan=False, examples=[3.5],
        description="Highest posted price of the grid, above price_min (default: the higher of the highest posted "
        "price and 1.45x the usual one)",
    )  # fmt: skip
    bins: int = Field(DEFAULT_BINS, ge=MIN_BINS, le=MAX_BINS, description="Number of grid prices", examples=[100])
    context: int = Field(
        DEFAULT_CONTEXT, ge=1, le=MAX_CONTEXT, description="How many of the list's latest periods to re-price at "
        "every grid price", examples=[DEFAULT_CONTEXT],
    )  # fmt: skip
    model: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["pricing_xgboost"],
        description="Answer with this model of the serving order only (its name, as in GET /model), with no "
        "fallback: to compare the models' curves. Default: the serving order, falling back when a model fails",
    )  # fmt: skip

    @field_validator("price_max")
    @classmethod
    def _range_is_ordered(cls, price_max: float | None, info: ValidationInfo) -> float | None:
        price_min = info.data.get("price_min")
        if price_min is not None and price_max is not None and price_min >= price_max:
            raise ValueError(f"must be above price_min ({price_min}), got {price_max}")
        return price_max

    def to_request(self) -> SweepRequest:
        """The core's request object (the stock code upper-cased, as the loader stores codes)."""
        from pricing.sweep import SweepRequest

        return SweepRequest(
            self.stockcode.strip().upper(), self.price_min, self.price_max, self.bins, self.context, self.segment
        )


class ModelRef(BaseModel):
    """Which stored model answered."""

    name: str
    version: str
    role: str = Field(
        description="Its place in the serving order: primary, or fallback-N (answering because the models before it "
        "failed, or because the request named it)"
    )


class CurvePoint(BaseModel):
    """Predicted demand per period at one posted price."""

    unit_price: float = Field(description="Posted (list) price")
    quantity: float = Field(description="Predicted units per period: the median over the context periods")
    quantity_min: float
    quantity_max: float
    predicted_sales: float = Field(description="unit_price x quantity x the list's paid ratio (tier discounts)")


class Optimal(BaseModel):
    """The revenue-maximising grid price, and how sure it is."""

    unit_price: float
    quantity: float
    predicted_sales: float
    interval: list[float] = Field(
        description="80% interval of the optimal price under the posterior of the list's price response"
    )
    at_grid_edge: Literal["lower", "upper"] | None = Field(
        description="The optimum is the grid's lowest or highest price: the curve says to go further"
    )


class QuantityTier(BaseModel):
    """The list's quantity-discount tier, recognised from its sales."""

    min_quantity: float = Field(description="Smallest order quantity that usually gets the tier price")
    price_factor: float = Field(description="Tier price / posted price")
    unit_share: float = Field(description="Share of the list's units sold at the tier price")


class PriceList(BaseModel):
    """The price list the sweep prices, and how its price response was estimated."""

    segment: Segment
    usual_price: float = Field(description="The posted price of most periods")
    latest_price: float
    observed_price_range: list[float] = Field(description="Lowest and highest posted price in the data")
    paid_ratio: float = Field(description="Revenue / (posted price x units): below 1 where tiers give discounts")
    quantity_tier: QuantityTier | None
    identifiable: bool = Field(
        description="The list's own price history pins down its response; false: the curve rests on the response "
        "pooled over similar lists"
    )
    response: Literal["own", "pooled"]
    own_weight: float = Field(description="Share of what is known of the list's response that comes from its own data")


class SweepOut(BaseModel):
    """A demand and revenue curve per period over posted prices, its optimum, and the price list it is for."""

    stockcode: str
    model: ModelRef
    fallback_used: bool
    cached: bool
    period: str = Field(description="The period quantities and sales are per: week or day")
    context_rows: int = Field(description="Context periods re-priced at every grid price")
    price_list: PriceList
    curve: list[CurvePoint]
    optimal: Optimal


PERIOD_NAMES = {"W": "week", "D": "day"}


def sweep_out(answer: SweepAnswer, period: str) -> dict[str, Any]:
    """The native response body (``cached`` false) for an answer; ``period`` is the models' ("W" or "D")."""
    body = answer.result.to_dict()
    name, version = answer.model.tag.split(":")
    return {
        "stockcode": body["stockcode"],
        "model": {"name": name, "version": version, "role": answer.model.role},
        "fallback_used": answer.fallback_used,
        "cached": False,
        "period": PERIOD_NAMES.get(period, period),
        "context_rows": body["context_rows"],
        "price_list": body["price_list"],
        "curve": body["curve"],
        "optimal": body["optimal"],
    }


def encode(body: dict[str, Any]) -> bytes:
    """A response body as compact JSON bytes (what the service sends and caches; NaN would be null)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


_NOT_CACHED, _CACHED = b'"cached":false', b'"cached":true'


def mark_cached(encoded: bytes) -> bytes:
    """An ``encode``d sweep body as served from the cache: its top-level ``cached`` flag set. The first
    occurrence is the flag: every key before it is ours, and a quote inside a string value is escaped."""
    if _NOT_CACHED not in encoded:
        raise ValueError("not an encoded sweep body")
    return encoded.replace(_NOT_CACHED, _CACHED, 1)


class LegacyPoint(BaseModel):
    """One grid price as the original system answered it, each repeating the optimum."""

    stockcode: str
    unit_price: float
    quantity: float
    quantity_min: float
    quantity_max: float
    predicted_sales: float
    optimal_unit_price: float
    max_predicted_sales: float


def legacy_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The original system's response: one object per grid price, each repeating the optimum."""
    optimal = body["optimal"]
    return [
        {
            "stockcode": body["stockcode"],
            **point,
            "optimal_unit_price": optimal["unit_price"],
            "max_predicted_sales": optimal["predicted_sales"],
        }
        for point in body["curve"]
    ]


MAX_ROWS = 10_000
MIN_YEAR, MAX_YEAR = 1900, 2199


class DemandRow(BaseModel):
    """One question: how many units of this product sell in the period of this date at this posted price?
    The UCI column names (StockCode, UnitPrice, InvoiceDate) or snake_case are accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    stockcode: str = Field(alias="StockCode", min_length=1, max_length=32, examples=["85123A"])
    unit_price: float = Field(
        alias="UnitPrice", gt=0, le=MAX_PRICE, allow_inf_nan=False, examples=[2.95], description="Posted (list) price"
    )
    invoice_date: datetime = Field(
        alias="InvoiceDate", examples=["2011-12-01T10:00:00"],
        description=f"Any date in the period (years {MIN_YEAR} to {MAX_YEAR})",
    )  # fmt: skip
    segment: Segment | None = Field(None, description=_SEGMENT)

    @field_validator("invoice_date", mode="before")
    @classmethod
    def _date_is_text(cls, value: Any) -> Any:
        # pydantic would read a number as seconds since 1970: the schema (and a CSV) says text.
        if not isinstance(value, str | datetime):
            raise ValueError("must be a date or date-time as text, e.g. 2011-12-01T10:00:00")
        return value

    @field_validator("invoice_date")
    @classmethod
    def _date_in_range(cls, value: datetime) -> datetime:
        # Periods are computed as nanosecond timestamps (pandas), which end in 2262.
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"must be in the years {MIN_YEAR} to {MAX_YEAR}, got {value.isoformat()}")
        return value


class PredictIn(BaseModel):
    """Demand questions (other columns, such as Quantity, Country or InvoiceNo, are ignored)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[DemandRow] = Field(min_length=1, max_length=MAX_ROWS)


class RowPrediction(BaseModel):
    """Predicted demand of one row's product and list in its period."""

    stockcode: str
    segment: Segment
    period: str = Field(description="First day of the period the date falls in")
    unit_price: float
    quantity: float = Field(description="Predicted units in the period")
    predicted_sales: float = Field(description="unit_price x quantity x the list's paid ratio")
    known_product: bool = Field(description="Whether the product's list was in the training data")


class PredictOut(BaseModel):
    """Predictions, in the order of the rows sent, and which model made them."""

    model: ModelRef
    fallback_used: bool
    period: str
    predictions: list[RowPrediction]


def rows_frame(rows: list[DemandRow]) -> pd.DataFrame:
    """The rows as the engine reads them: StockCode, segment (None: main list), date (naive, as in training),
    posted_price."""
    import pandas as pd

    dates = pd.to_datetime([r.invoice_date for r in rows], utc=True).tz_convert(None).astype("datetime64[ns]")
    return pd.DataFrame({
        "StockCode": [r.stockcode.strip().upper() for r in rows],
        "segment": [r.segment for r in rows],
        "date": dates,
        "posted_price": [r.unit_price for r in rows],
    })  # fmt: skip


def predict_out(answer: RowsAnswer, period: str) -> dict[str, Any]:
    """The /predict response body for an answer."""
    name, version = answer.model.tag.split(":")
    cells = answer.cells
    return {
        "model": {"name": name, "version": version, "role": answer.model.role},
        "fallback_used": answer.fallback_used,
        "period": PERIOD_NAMES.get(period, period),
        "predictions": [
            {"stockcode": code, "segment": segment, "period": f"{start:%Y-%m-%d}", "unit_price": float(price),
             "quantity": float(units), "predicted_sales": float(sales), "known_product": bool(known)}
            for code, segment, start, price, units, sales, known in zip(
                cells["StockCode"], cells["segment"], cells["period"], cells["posted_price"], answer.units,
                answer.sales, answer.known, strict=True,
            )
        ],
    }  # fmt: skip


class ProductIndex:
    """The catalogue as the products ``GET /products`` lists, built once: a page is then a text filter and a
    slice (built per request from the catalogue, a page of 500 products took 0.6-1.1 s on a smoke store)."""

    def __init__(self, catalogue: pd.DataFrame) -> None:
        lists = catalogue.reset_index()
        by_code: dict[str, list[dict[str, Any]]] = {}
        for code, summary in zip(lists["StockCode"], _list_summaries(lists), strict=True):
            by_code.setdefault(code, []).append(summary)
        mains = lists.sort_values("default", ascending=False, kind="stable").drop_duplicates("StockCode")
        main = {row.StockCode: row for row in mains.itertuples(index=False)}
        self.products: list[dict[str, Any]] = []
        self._text: list[str] = []
        for code, summaries in by_code.items():  # in catalogue order
            row = main[code]
            description = row.description if isinstance(row.description, str) else None
            self.products.append({
                "stockcode": code,
                "description": description,
                "main_segment": row.segment,
                "usual_price": float(row.usual_price),
                "lists": summaries,
            })  # fmt: skip
            self._text.append(f"{code} {(description or '').upper()}")

    def page(self, query: str, offset: int, limit: int) -> dict[str, Any]:
        """A page of the products whose stock code or description contains ``query`` (case-insensitive)."""
        needle = query.upper()
        matches = [p for p, text in zip(self.products, self._text, strict=True) if needle in text]
        return {"total": len(matches), "offset": offset, "limit": limit, "products": matches[offset : offset + limit]}


def _list_summaries(lists: pd.DataFrame) -> list[dict[str, Any]]:
    import pandas as pd

    columns = {
        "segment": lists["segment"].astype(str).tolist(),
        "usual_price": lists["usual_price"].astype(float).tolist(),
        "latest_price": lists["latest_price"].astype(float).tolist(),
        "price_min": lists["price_min"].astype(float).tolist(),
        "price_max": lists["price_max"].astype(float).tolist(),
        "price_changes": lists["price_changes"].astype(int).tolist(),
        "units_per_period": lists["units_per_period"].astype(float).round(3).tolist(),
        "identifiable": lists["identifiable"].astype(bool).tolist(),
        "last_period": pd.to_datetime(lists["last_period"]).dt.strftime("%Y-%m-%d").tolist(),
    }
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def only_query(*names: str) -> Callable[[Request], None]:
    """A FastAPI dependency that refuses query parameters other than ``names`` (422 naming the first), so that a
    misspelt one (``num_bins=50``) is not silently ignored."""
    allowed = frozenset(names)

    def check(request: Request) -> None:
        from pricing.errors import ApiError

        for name in request.query_params:
            if name not in allowed:
                raise ApiError(422, f"unknown query parameter {name!r}; this route takes {', '.join(names)}", name)

    return check


def csv_records(body: bytes) -> list[dict[str, str | None]]:
    """Rows of a CSV body with a header line, empty cells as None; ``ApiError`` 400 for a body that is not UTF-8
    CSV, a line whose field count is not the header's, or more than ``MAX_ROWS`` rows (counted before parsing)."""
    from pricing.errors import ApiError

    lines_sent = body.count(b"\n")
    if lines_sent > MAX_ROWS + 1:  # the header, the rows, perhaps a blank last line
        raise ApiError(400, f"at most {MAX_ROWS} rows per request, got about {lines_sent - 1}", "rows")
    try:
        lines = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))
        header = next(lines, None)
        if not header or not any(name.strip() for name in header):
            raise ApiError(400, "the CSV body has no header line (e.g. StockCode,UnitPrice,InvoiceDate)", "rows")
        records = []
        for line in lines:
            if not line:
                continue  # a blank line
            if len(line) != len(header):
                raise ApiError(400, f"CSV line {lines.line_num} has {len(line)} fields, the header {len(header)}",
                               f"rows[{len(records)}]")  # fmt: skip
            records.append({name.strip(): cell or None for name, cell in zip(header, line, strict=True)})
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the CSV body is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise ApiError(400, f"the CSV body cannot be read: {exc}") from exc
    return records


def invocation_payload(body: bytes, content_type: str) -> SweepIn | PredictIn:
    """The request in a SageMaker ``/invocations`` body: rows as CSV (``text/csv``) or as JSON ``{"rows": [...]}``,
    else a sweep request as JSON; ``ApiError`` 400 naming the field when it is neither."""
    from pricing.errors import ApiError, from_pydantic

    if content_type.split(";")[0].strip().lower() == "text/csv":
        payload: Any = {"rows": csv_records(body)}
    else:
        try:
            payload = orjson.loads(body or b"{}")  # orjson refuses nesting deeper than 1024 levels
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"the body is neither JSON nor text/csv: {exc}") from exc
    model = PredictIn if isinstance(payload, dict) and "rows" in payload else SweepIn
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise from_pydantic(exc) from exc
