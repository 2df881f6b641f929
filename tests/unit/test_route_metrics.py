"""Request metrics labels: a bounded set whatever the paths clients send."""

from __future__ import annotations

from pricing.route_metrics import OTHER, route_label

KNOWN = frozenset({"/price_sweep", "/ui", "/metrics"})


def test_known_routes_keep_their_path() -> None:
    assert route_label("/price_sweep", KNOWN) == "/price_sweep"
    assert route_label("/ui", KNOWN) == "/ui"


def test_paths_with_parameters_become_their_template() -> None:
    assert route_label("/v1/predict-price/85123A", KNOWN) == "/v1/predict-price/{stockcode}"
    assert route_label("/ui/app.js", KNOWN) == route_label("/static_content/x.css", KNOWN) == "/ui/*"


def test_anything_else_is_other() -> None:
    labels = {route_label(f"/scan/{i}", KNOWN) for i in range(100)} | {route_label("/price_sweep/extra", KNOWN)}
    assert labels == {OTHER}
