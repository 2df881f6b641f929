"""BentoML's HTTP request metrics, labelled by route instead of by raw path.

BentoML 1.4.39 labels ``bentoml_service_request_total``, ``_duration_seconds`` and ``_in_progress`` with the
request's raw path, so every stock code asked for through ``GET /v1/predict-price/{stockcode}`` and every
unknown path a client or a scanner tries becomes new time series: memory in every worker that never comes
back, and a ``/metrics`` page that grows without bound. Measured on the synthetic store (4,000 products,
closed-loop load): the worker grew by about 170 MB before every product had been seen once, and the growth
traced to Prometheus label children and their multi-process files.

``install()`` swaps BentoML's traffic-metrics middleware for a subclass whose metrics see a bounded label:
the route's template (``/v1/predict-price/{stockcode}``), a known path as it is, ``/ui/*`` for the page's
files, and ``other`` for anything else. The subclass keeps BentoML's own middleware and metric names; only
the ``endpoint`` label changes. It relies on BentoML internals (``RunnerTrafficMetricsMiddleware._setup``
creating the metrics as attributes), pinned with the ``bentoml`` version; ``install()`` fails loudly if they
move, and a test reads the labels back from ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OTHER = "other"
# BentoML's own routes next to the service's: docs, schema, health and metrics.
BENTOML_PATHS = ("/", "/docs.json", "/schema.json", "/livez", "/readyz", "/healthz", "/metrics")
_TEMPLATES = {"/v1/predict-price/": "/v1/predict-price/{stockcode}", "/ui/": "/ui/*", "/static_content/": "/ui/*"}
_LABELLED = (
    "metrics_request_total",
    "metrics_request_duration",
    "metrics_request_in_progress",
    "metrics_websocket_connections",
    "metrics_websocket_data_received",
    "metrics_websocket_data_sent",
)


def route_label(path: str, known: frozenset[str]) -> str:
    """The ``endpoint`` label of a request path: a known route, a route template, or ``other``."""
    if path in known:
        return path
    for prefix, template in _TEMPLATES.items():
        if path.startswith(prefix):
            return template
    return OTHER


class _RouteLabels:
    """A labelled metric whose ``endpoint`` label goes through ``route_label``."""

    def __init__(self, metric: Any, known: frozenset[str]) -> None:
        self._metric = metric
        self._known = known

    def labels(self, *, endpoint: str, **labels: Any) -> Any:
        return self._metric.labels(endpoint=route_label(endpoint, self._known), **labels)


def install(paths: Iterable[str]) -> None:
    """Label BentoML's request metrics by route in this process; ``paths``: the service's fixed routes."""
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "labels_by_route", False):
        return
    known = frozenset([*paths, *BENTOML_PATHS])

    class RouteLabelledTrafficMetrics(base):  # type: ignore[misc, valid-type]
        labels_by_route = True

        def _setup(self, *args: Any, **kwargs: Any) -> None:
            super()._setup(*args, **kwargs)
            missing = [name for name in _LABELLED if not hasattr(self, name)]
            if missing:
                raise RuntimeError(
                    f"BentoML's traffic metrics changed: no {', '.join(missing)}; see pricing.route_metrics"
                )
            for name in _LABELLED:
                setattr(self, name, _RouteLabels(getattr(self, name), known))

    instruments.RunnerTrafficMetricsMiddleware = RouteLabelledTrafficMetrics
