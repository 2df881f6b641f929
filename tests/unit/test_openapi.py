"""pydantic's JSON Schema 2020-12 rewritten into OpenAPI 3.0's dialect."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pricing.openapi import to_openapi30


class Inner(BaseModel):
    x: int


class Example(BaseModel):
    price: float | None = Field(None, gt=0, lt=10, examples=[2.5])
    edge: Literal["lower", "upper"] | None = None
    kind: Literal["only"] = "only"
    inner: Inner | None = None
    properties: int = 0  # a field whose name is a JSON Schema keyword


def test_pydantic_schemas_become_openapi_30_schemas() -> None:
    schema = to_openapi30(Example.model_json_schema(ref_template="#/components/schemas/{model}"))
    properties = schema["properties"]
    assert properties["price"] == {
        "type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 10, "exclusiveMaximum": True,
        "nullable": True, "default": None, "example": 2.5, "title": "Price",
    }  # fmt: skip
    assert properties["edge"]["enum"] == ["lower", "upper", None] and properties["edge"]["nullable"] is True
    assert properties["kind"]["enum"] == ["only"] and "const" not in properties["kind"]
    assert properties["inner"]["allOf"] == [{"$ref": "#/components/schemas/Inner"}]
    assert properties["inner"]["nullable"] is True and "$ref" not in properties["inner"]
    assert properties["properties"]["type"] == "integer"


def test_maps_of_examples_are_kept() -> None:
    media = {"content": {"application/json": {"examples": {"one": {"value": 1}}}}}
    assert to_openapi30(media) == media
