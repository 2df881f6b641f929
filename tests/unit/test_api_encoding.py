"""Sweep bodies as the service sends and caches them: compact JSON bytes, the cached flag set on a hit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pricing.api import encode, mark_cached


def body(stockcode: str) -> dict[str, object]:
    return {
        "stockcode": stockcode,
        "model": {"name": "pricing_lightgbm", "version": "v1", "role": "primary"},
        "fallback_used": False,
        "cached": False,
        "curve": [{"unit_price": np.float64(2.5), "quantity": 3.0}],
        "optimal": {"unit_price": 2.5, "interval": [np.float32(2.25), 2.75], "at_grid_edge": None},
    }


def test_encoding_round_trips_numpy_numbers_as_plain_json() -> None:
    decoded = json.loads(encode(body("85123A")))
    assert decoded["curve"][0]["unit_price"] == 2.5 and decoded["optimal"]["interval"] == [2.25, 2.75]
    assert decoded["cached"] is False and decoded["optimal"]["at_grid_edge"] is None


@pytest.mark.parametrize("stockcode", ["85123A", '"cached":false', 'X","cached":false,"y":"'])
def test_a_cache_hit_sets_the_top_level_flag_only(stockcode: str) -> None:
    decoded = json.loads(mark_cached(encode(body(stockcode))))
    assert decoded["cached"] is True
    assert decoded["stockcode"] == stockcode  # a look-alike inside a string value is left alone


def test_a_body_without_the_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="not an encoded sweep body"):
        mark_cached(b'{"cached": false}')
