"""HTTP schemas: validated inputs (their descriptions and examples drive the OpenAPI page) and responses.

The service validates every input here, at the boundary; anything out of range is a 400 that names the
field. Sweep responses are built from a ``pricing.serving.SweepAnswer`` in two shapes: the native one and
the list of per-price objects that clients of the original system read from ``/v1/predict-price``. Row
predictions (``/predict``, and ``/invocations`` with rows as JSON or CSV) from a ``RowsAnswer``.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pricing.serving import RowsAnswer, SweepAnswer
from pricing.sweep import DEFAULT_BINS, DEFAULT_CONTEXT, MAX_BINS, MAX_CONTEXT, MIN_BINS, SweepRequest


class SweepIn(BaseModel):
    """A price sweep request."""

    model_config = ConfigDict(extra="forbid")

    stockcode: str = Field(
        min_length=1, max_length=32, description="Product stock code, as in the transactions", examples=["85123A"]
    )
    price_min: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Lowest price of the grid (default: lowest observed)",
        examples=[2.0],
    )  # fmt: skip
    price_max: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Highest price of the grid (default: highest observed)",
        examples=[3.5],
    )  # fmt: skip
    bins: int = Field(DEFAULT_BINS, ge=MIN_BINS, le=MAX_BINS, description="Number of grid prices", examples=[100])
    context: int = Field(
        DEFAULT_CONTEXT, ge=1, le=MAX_CONTEXT, description="How many of the product's latest transactions to "
        "re-price at every grid price", examples=[1000],
    )  # fmt: skip

    @model_validator(mode="after")
    def _range_is_ordered(self) -> SweepIn:
        if self.price_min is not None and self.price_max is not None and self.price_min >= self.price_max:
            raise ValueError(f"price_min ({self.price_min}) must be below price_max ({self.price_max})")
        return self

    def to_request(self) -> SweepRequest:
        """The core's request object (the stock code upper-cased, as the loader stores codes)."""
        return SweepRequest(self.stockcode.strip().upper(), self.price_min, self.price_max, self.bins, self.context)


class ModelRef(BaseModel):
    """Which stored model answered."""

    name: str
    version: str
    role: str = Field(description="primary, or fallback-N when the models before it failed")


class CurvePoint(BaseModel):
    """Predicted demand at one grid price."""

    unit_price: float
    quantity: float = Field(description="Median predicted quantity per transaction line")
    quantity_min: float
    quantity_max: float
    predicted_sales: float = Field(description="unit_price x quantity")


class Optimal(BaseModel):
    """The revenue-maximising grid price."""

    unit_price: float
    quantity: float
    predicted_sales: float


class SweepOut(BaseModel):
    """A demand and revenue curve and its optimum."""

    stockcode: str
    model: ModelRef
    fallback_used: bool
    cached: bool
    context_rows: int
    curve: list[CurvePoint]
    optimal: Optimal


def sweep_out(answer: SweepAnswer) -> dict[str, Any]:
    """The native response body (``cached`` false) for an answer."""
    body = answer.result.to_dict()
    name, version = answer.model.tag.split(":")
    return {
        "stockcode": body["stockcode"],
        "model": {"name": name, "version": version, "role": answer.model.role},
        "fallback_used": answer.fallback_used,
        "cached": False,
        "context_rows": body["context_rows"],
        "curve": body["curve"],
        "optimal": body["optimal"],
    }


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


class TransactionRow(BaseModel):
    """One transaction line to predict the quantity of; UCI column names (or snake_case) are accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    stockcode: str = Field(alias="StockCode", min_length=1, max_length=32, examples=["85123A"])
    unit_price: float = Field(alias="UnitPrice", gt=0, allow_inf_nan=False, examples=[2.55])
    invoice_date: datetime = Field(alias="InvoiceDate", examples=["2011-12-01T10:00:00"])
    customer_id: float | None = Field(None, alias="CustomerID", examples=[17850])
    country: str = Field("United Kingdom", alias="Country", min_length=1, max_length=64)


class PredictIn(BaseModel):
    """Transaction rows (other columns, such as Quantity or InvoiceNo, are ignored)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[TransactionRow] = Field(min_length=1, max_length=MAX_ROWS)


class RowPrediction(BaseModel):
    """The predicted quantity of one row."""

    stockcode: str
    unit_price: float
    quantity: float = Field(description="Predicted quantity of the transaction line")
    known_product: bool = Field(description="Whether the product was in the training data")


class PredictOut(BaseModel):
    """Predicted quantities, in the order of the rows sent, and which model made them."""

    model: ModelRef
    fallback_used: bool
    predictions: list[RowPrediction]


def rows_frame(rows: list[TransactionRow]) -> pd.DataFrame:
    """The rows as the feature pipeline reads them (UCI column names, naive timestamps as in training)."""
    dates = pd.to_datetime([r.invoice_date for r in rows], utc=True).tz_convert(None).astype("datetime64[ns]")
    return pd.DataFrame({
        "StockCode": [r.stockcode.strip().upper() for r in rows],
        "UnitPrice": [r.unit_price for r in rows],
        "InvoiceDate": dates,
        "CustomerID": [np.nan if r.customer_id is None else r.customer_id for r in rows],
        "Country": [r.country for r in rows],
    })  # fmt: skip


def predict_out(answer: RowsAnswer, frame: pd.DataFrame) -> dict[str, Any]:
    """The /predict response body for an answer about ``frame``'s rows."""
    name, version = answer.model.tag.split(":")
    return {
        "model": {"name": name, "version": version, "role": answer.model.role},
        "fallback_used": answer.fallback_used,
        "predictions": [
            {"stockcode": code, "unit_price": float(price), "quantity": float(q), "known_product": bool(known)}
            for code, price, q, known in zip(
                frame["StockCode"], frame["UnitPrice"], answer.quantity, answer.known_product, strict=True
            )
        ],
    }


def csv_records(body: bytes) -> list[dict[str, Any]]:
    """Rows of a CSV body with a header line, missing cells as None."""
    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""])
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
