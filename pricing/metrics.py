"""The service's own Prometheus metrics, exposed on /metrics next to BentoML's.

Plain ``prometheus_client`` counters, as BentoML 1.4 documents (its own ``bentoml.metrics`` wrapper is
deprecated); BentoML serves them from its multi-process registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CACHE_LOOKUPS = Counter(
    name="pricing_cache_lookups_total",
    documentation="Sweep cache lookups by backend and result (hit, miss, error)",
    labelnames=["backend", "result"],
)
CACHE_ERRORS = Counter(
    name="pricing_cache_errors_total",
    documentation="Cache operations that failed (backend down or timing out); the request was served uncached",
    labelnames=["backend", "operation"],
)
FALLBACKS = Counter(
    name="pricing_fallbacks_total",
    documentation="Model calls that failed over to the next model in the serving order, by failed model and reason",
    labelnames=["model", "reason"],
)
BATCH_SIZE = Histogram(
    name="pricing_batch_size",
    documentation="Requests answered by one call of the primary model (pricing.batching), by kind of call",
    labelnames=["kind"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
)
MODELS_REFUSED = Counter(
    name="pricing_models_refused_total",
    documentation="Stored models refused at load because their artefact files differ from the SHA-256 digests "
    "recorded at training (pricing.integrity), by model and reason (mismatch, missing, unexpected)",
    labelnames=["model", "reason"],
)
