"""Defaults and limits shared by the HTTP schemas, the settings and the serving core.

Free of heavy imports on purpose: `bentoml serve` imports the service module in its parent process only to
read the service's configuration and routes, and that process should not pay for pandas, pyarrow, Redis or
the models (``service.py`` imports those where the worker uses them).
"""

from __future__ import annotations

DEFAULT_BINS = 100
MIN_BINS, MAX_BINS = 2, 1_000
DEFAULT_CONTEXT, MAX_CONTEXT = 52, 104  # periods: a year of weeks by default
DEFAULT_TTL_SECONDS = 3600  # cached sweep answers
DEFAULT_TIME_BUDGET_S = 5.0  # one model call, before the next model of the serving order answers
