"""HTTP schemas: validated inputs (their descriptions and examples drive the OpenAPI page) and responses.

The service validates every input here, at the boundary; anything out of range is a 400 that names the
field. Responses are built from a ``pricing.serving.SweepAnswer`` in two shapes: the native one and the
list of per-price objects that clients of the original system read from ``/v1/predict-price``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pricing.serving import SweepAnswer
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
