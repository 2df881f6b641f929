"""The release gate: whether a training run's primary model is good enough to deploy.

Read from the run's ``metrics.json`` (``train.py --reports-dir``). The primary (the first of the serving order)
must predict held-out price changes better than assuming no change at all and, when the data came with a
ground truth (synthetic data), find optimal prices at least as well as the per-list statistical baseline, within
a tolerance. Training's own gate has already refused broken families; this one decides about shipping.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pricing.cloud.aws import CloudError


def check_release(metrics_path: Path, max_vs_baseline: float = 1.0, max_rel_error: float | None = None) -> list[str]:
    """The lines saying why the run may ship; CloudError with the reason when it may not."""
    try:
        record = json.loads(Path(metrics_path).read_text())
    except FileNotFoundError:
        raise CloudError(f"no training record at {metrics_path}: run train.py first") from None
    except ValueError as exc:
        raise CloudError(f"{metrics_path} is not valid JSON: {exc}") from None
    if not record.get("serving_order"):
        raise CloudError(f"training run {record.get('run_id', '?')} stored no model (every family was refused)")
    primary_tag = record["serving_order"][0]
    family = primary_tag.split(":")[0].removeprefix("pricing_")
    primary = next((m for m in record.get("models", []) if m.get("family") == family), None)
    if primary is None:
        raise CloudError(f"{metrics_path} has no metrics for the primary model {primary_tag}")

    lines = [f"run {record.get('run_id')}: primary {primary_tag}"]
    heldout = primary.get("heldout", {})
    error, no_change = heldout.get("median_abs_error", math.nan), heldout.get("no_change_error", math.nan)
    if not error < no_change:
        raise CloudError(
            f"gate: {primary_tag} predicts held-out price changes no better than no change "
            f"({error:.3f} vs {no_change:.3f})"
        )
    lines.append(f"held-out price changes: error {error:.3f} < {no_change:.3f} without a model")
    pricing = primary.get("pricing")
    if pricing:
        ratio, rel = pricing.get("median_vs_baseline", math.nan), pricing.get("median_rel_error", math.nan)
        if not ratio <= max_vs_baseline:
            raise CloudError(
                f"gate: {primary_tag}'s optimal prices are off by {rel:.1%} (median), {ratio:.2f}x the baseline's "
                f"error (allowed {max_vs_baseline:.2f}x)"
            )
        if max_rel_error is not None and not rel <= max_rel_error:
            raise CloudError(f"gate: {primary_tag}'s optimal prices are off by {rel:.1%} (allowed {max_rel_error:.1%})")
        lines.append(f"pricing accuracy: median error {rel:.1%}, {ratio:.2f}x the baseline's")
    else:
        lines.append("pricing accuracy: no ground truth with this data; held-out check only")
    return lines
