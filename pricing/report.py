"""Training reports: ``metrics.json`` (the run record), ``metrics.md`` (a table) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are written on servers and in CI, never shown
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pricing.sweep import SweepResult
from pricing.tuning import TuningResult

COLUMNS = (
    ("rank", "rank", "{:d}"),
    ("family", "family", "{}"),
    ("val MSE", "val.mse", "{:.4f}"),
    ("test MSE", "test.mse", "{:.4f}"),
    ("R²", "test.r2", "{:.3f}"),
    ("RMSLE", "test.rmsle", "{:.4f}"),
    ("MAE units", "test.mae_units", "{:.2f}"),
    ("held-out Δ err", "heldout.median_abs_error", "{:.3f}"),
    ("no-change Δ err", "heldout.no_change_error", "{:.3f}"),
    ("price err median", "pricing.median_rel_error", "{:.1%}"),
    ("price err p90", "pricing.p90_rel_error", "{:.1%}"),
    ("median / baseline", "pricing.median_vs_baseline", "{:.2f}"),
    ("p90 / baseline", "pricing.p90_vs_baseline", "{:.2f}"),
    ("ratio corr", "pricing.ratio_correlation", "{:.2f}"),
    ("80% interval covers", "pricing.interval_coverage", "{:.0%}"),
    ("edge, not flagged", "edges.at_edge_not_flagged", "{:d}"),
    ("train s", "seconds.total", "{:.0f}"),
)


def _lookup(entry: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry


def metrics_table(models: list[dict[str, Any]], markdown: bool = False) -> str:
    """The per-model metrics as an aligned text table (or a Markdown table)."""
    header = [name for name, _, _ in COLUMNS]
    rows = [
        [fmt.format(v) if (v := _lookup(m, path)) is not None else "n/a" for _, path, fmt in COLUMNS] for m in models
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt_row = "  ".join(f"{{:>{w}}}" for w in widths).format
    return "\n".join([fmt_row(*header), fmt_row(*("-" * w for w in widths)), *(fmt_row(*r) for r in rows)])


def write_run_record(directory: Path, record: dict[str, Any]) -> None:
    """Write ``metrics.json`` and ``metrics.md`` for a training run."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(record, indent=2, default=str))
    lines = [
        f"# Training run {record['run_id']}",
        "",
        f"- data: {record['data']['source']} ({record['data']['rows_clean']:,} clean rows, hash "
        f"`{record['data']['hash'][:12]}`)",
        f"- budget: {record['budget']}, seed {record['seed']}, {record['seconds']:.0f} s in all",
        f"- serving order (by {record['ranking']['criterion']}): {' > '.join(record['serving_order'])}",
        *(f"- refused by the gate: {r['family']}: {r['reason']}" for r in record["refused"]),
        "",
        metrics_table([*record["models"], record["baseline"]], markdown=True),
        "",
        "MSE, MAE and R² are on log(1 + units per period) over the test periods (the latest ones); RMSLE and MAE "
        "units on units per period. Held-out Δ err: median absolute error of the predicted change in log(1 + "
        "units) across posted-price changes in the validation and test periods (models fitted on the training "
        "periods). Price error (synthetic data): relative error of the default sweep's optimal price against "
        "the true optimum, on the best-selling wholesale lists whose posted price moved; / baseline: the same "
        "for the per-list regression (the baseline row); ratio corr: correlation of optimum / usual price, "
        "found against true; 80% interval covers: share of those lists whose optimum interval holds the true "
        "optimum. Edge, not flagged: best sellers whose optimum sits on the grid's edge while their "
        "response is called identifiable.",
    ]
    (directory / "metrics.md").write_text("\n".join(lines) + "\n")


def plot_predicted_vs_actual(path: Path, y_true: np.ndarray, predictions: dict[str, np.ndarray]) -> None:
    """Hexbin of predicted against actual log quantity on the test split, one panel per family."""
    fig, axes = plt.subplots(1, len(predictions), figsize=(4 * len(predictions), 4), squeeze=False)
    lo, hi = np.percentile(y_true, [0.5, 99.5])
    for ax, (family, y_pred) in zip(axes[0], predictions.items(), strict=True):
        ax.hexbin(y_true, y_pred, gridsize=40, extent=(lo, hi, lo, hi), mincnt=1, bins="log", cmap="viridis")
        ax.plot([lo, hi], [lo, hi], color="red", lw=1)
        ax.set(title=family, xlabel="actual log quantity", ylabel="predicted log quantity")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_price_curves(path: Path, curves: dict[str, dict[str, SweepResult]], truth: pd.DataFrame | None) -> None:
    """Predicted sales over price for a few products, one line per family, with the true optimum marked."""
    products = list(next(iter(curves.values())))
    optimum = truth.set_index("StockCode")["optimal_price"] if truth is not None else None
    fig, axes = plt.subplots(1, len(products), figsize=(4.5 * len(products), 4), squeeze=False)
    for ax, code in zip(axes[0], products, strict=True):
        for family, by_product in curves.items():
            result = by_product[code]
            line = ax.plot(result.prices, result.sales, label=family)[0]
            ax.plot(result.optimal_price, result.sales[result.best], "o", color=line.get_color())
        if optimum is not None:
            ax.axvline(optimum.loc[code], color="black", ls="--", lw=1, label="true optimum")
        ax.set(title=code, xlabel="posted price", ylabel="predicted sales per period")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_tuning_history(path: Path, results: list[TuningResult]) -> None:
    """Score of every completed tuning trial and the best so far, one panel per tuned family."""
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.5), squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        numbers = [n for n, _ in result.history]
        scores = np.array([s for _, s in result.history])
        ax.plot(numbers, scores, "o", ms=4, label="trial")
        ax.plot(numbers, np.minimum.accumulate(scores), "-", label="best so far")
        title = f"{result.family} ({result.method})"
        if result.pruned:
            title += f", {result.pruned} pruned"
        ax.set(title=title, xlabel="trial", ylabel="validation / CV MSE")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
