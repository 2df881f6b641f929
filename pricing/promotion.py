"""Promotion: whether a new training run may replace the run that serves.

Training ranks its own families; promotion compares the new run's primary with the primary that serves now
(the latest published run, ``pricing.registry.serving_run_id``) before the new run can serve. Both are
judged the same way on the same data, this run's held-out data, by the criterion the run ranks by:

- ``pricing_error`` (data with a ground truth): the relative error of each model's default-sweep optimum
  against the true optimum, on this run's best-selling lists whose posted price moved;
- ``heldout_price_response`` (real data): how far each model's residuals jump across the posted-price
  changes of this run's validation and test periods (``pricing.evaluate.heldout_response_error``).

Each model is judged as it serves, with its own stored pipeline, price responses and context, on the lists
both models know, and the medians are compared. The new run is **refused** when

- its primary's median error is worse than the serving primary's by more than ``max_regression`` (relative;
  default 5%), or the two share fewer than ``MIN_SHARED_LISTS`` lists, or the serving primary cannot be loaded
  and scored (no honest comparison), or
- its primary fails the behavioural checks: demand must fall with price (the training gate checks every
  family before it may be stored, so a primary has passed it) and the optimum must lie inside the grid: of
  the 50 best sellers, at most ``MAX_EDGE_SHARE`` of them (0.2: 10) may have their optimum on the grid's edge without
  being flagged not identifiable. Flagged lists are honest pooled answers; on the real file 21 of 50 optima
  sit on an edge and every one of them is flagged, on the smoke data 4 of 50, also all flagged.

A refused run's models stay in the model store, unpublished (their ``metadata["promotion"]`` says why);
``--force`` publishes anyway and records ``forced: true`` and the overridden reason. With no run serving
(an empty store) there is nothing to compare with and only the behavioural checks apply;
``max_regression=inf`` skips the comparison. On data that extends the serving run's, the new model has seen
the held-out periods and the serving one may not have: the comparison guards against a retrain that is
clearly worse, while the run's own ranking (fitted without the held-out periods) chooses among its families.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pricing.evaluate import ListBaseline, heldout_response_error, pricing_accuracy
from pricing.features import KEYS, FeaturePipeline, to_target, units_at_price
from pricing.models import PriceModel
from pricing.registry import load_model, serving_order, serving_run_id
from pricing.sweep import ContextStore, Sweeper

log = logging.getLogger(__name__)

MAX_REGRESSION = 0.05  # default allowed relative increase of the primary's median error
MAX_EDGE_SHARE = 0.2  # of the best sellers: optima on the grid's edge that are not flagged not identifiable
MIN_SHARED_LISTS = 10  # lists both primaries must know for the comparison to mean anything
CRITERIA = ("pricing_error", "heldout_price_response")
_LABELS = {"pricing_error": "median pricing error", "heldout_price_response": "median held-out price-response error"}


class PromotionRefusedError(RuntimeError):
    """The run was stored but not published: it would serve worse than the serving run, or misbehaves."""


@dataclass(frozen=True)
class Contender:
    """A primary as it serves: its estimator with the pipeline and context stored beside it."""

    label: str  # tag or family, for messages
    estimator: PriceModel
    pipeline: FeaturePipeline
    context: ContextStore

    def sweeper(self) -> Sweeper:
        """The price sweeper this model answers with."""
        return Sweeper(self.pipeline, self.context, self.estimator.predict)

    def predict_cells(self, cells: pd.DataFrame) -> np.ndarray:
        """Predicted log(1 + units) of demand cells at their posted prices."""
        level = self.estimator.predict(self.pipeline.transform(cells))
        return to_target(units_at_price(level, self.pipeline.log_response(cells)))

    def lists(self) -> pd.Index:
        """The (StockCode, segment) lists this model can price."""
        return self.context.catalogue.index


@dataclass(frozen=True)
class HeldOutData:
    """This run's held-out data, as its ranking criterion uses it."""

    criterion: str  # one of CRITERIA
    events: pd.DataFrame | None = None  # held-out price changes (heldout_price_response)
    truth: pd.DataFrame | None = None  # true optima (pricing_error)
    codes: list[str] = field(default_factory=list)  # the judged wholesale lists (pricing_error)
    baseline: ListBaseline | None = None  # needed by pricing_accuracy for its baseline column

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion: {self.criterion!r} is not one of {', '.join(CRITERIA)}")
        if self.criterion == "pricing_error" and (self.truth is None or self.baseline is None):
            raise ValueError("pricing_error needs the ground truth and the baseline")
        if self.criterion == "heldout_price_response" and self.events is None:
            raise ValueError("heldout_price_response needs the held-out events")


def list_errors(model: Contender, data: HeldOutData, lists: pd.Index) -> pd.Series:
    """Per-list error of ``model`` under the data's criterion, on the lists of ``lists`` (a (StockCode, segment)
    index); indexed by (StockCode, segment)."""
    if data.criterion == "pricing_error":
        assert data.truth is not None and data.baseline is not None
        codes = [c for c in data.codes if (c, "wholesale") in lists]
        table = pricing_accuracy(model.sweeper(), data.baseline, data.truth, codes).per_list
        index = pd.MultiIndex.from_arrays([table["StockCode"], ["wholesale"] * len(table)], names=KEYS)
        return pd.Series(table["rel_error"].to_numpy(dtype=np.float64), index=index) if len(table) else _empty()
    assert data.events is not None
    events = data.events[pd.MultiIndex.from_frame(data.events[KEYS]).isin(lists)]
    if events.empty:
        return _empty()
    per_list = heldout_response_error(events, model.predict_cells).per_list
    return per_list.set_index(KEYS)["error"].astype(np.float64)


def _empty() -> pd.Series:
    return pd.Series([], index=pd.MultiIndex.from_arrays([[], []], names=KEYS), dtype=np.float64)


@dataclass(frozen=True)
class Comparison:
    """The new primary's and the serving primary's median errors on the lists both were scored on."""

    criterion: str
    serving_tag: str
    serving_run: str
    new_error: float
    serving_error: float
    lists: int

    @property
    def change(self) -> float:
        """Relative change of the median error, new against serving (positive: the new one is worse)."""
        if self.serving_error > 0:
            return self.new_error / self.serving_error - 1.0
        return 0.0 if self.new_error <= 0 else math.inf

    def refusal(self, max_regression: float) -> str | None:
        """Why the new primary may not replace the serving one, or None."""
        if self.lists < MIN_SHARED_LISTS:
            return (
                f"the new primary cannot be compared with the serving {self.serving_tag} (run {self.serving_run}): "
                f"they share {self.lists} lists of this run's held-out data, fewer than {MIN_SHARED_LISTS}"
            )
        if self.new_error > self.serving_error * (1.0 + max_regression) + 1e-12:
            label = _LABELS[self.criterion]
            return (
                f"the new primary is worse than the serving {self.serving_tag} (run {self.serving_run}) on this "
                f"run's held-out data: {label} {self.new_error:.4f} against {self.serving_error:.4f} on "
                f"{self.lists} lists ({self.change:+.1%}, at most {max_regression:+.1%} allowed)"
            )
        return None

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures for the run record and the models' metadata."""
        change = self.change
        summary = {
            "criterion": self.criterion,
            "serving_model": self.serving_tag,
            "serving_run": self.serving_run,
            "error": self.new_error,
            "serving_error": self.serving_error,
            "relative_change": change,
            "lists": self.lists,
        }
        return {k: v for k, v in summary.items() if not (isinstance(v, float) and not math.isfinite(v))}


def compare(new: Contender, serving: Contender, data: HeldOutData, *, serving_run: str) -> Comparison:
    """Score both primaries on this run's held-out data, on the lists both know."""
    shared = new.lists().intersection(serving.lists())
    new_errors, serving_errors = list_errors(new, data, shared), list_errors(serving, data, shared)
    common = new_errors.index.intersection(serving_errors.index)
    new_errors, serving_errors = new_errors.loc[common].dropna(), serving_errors.loc[common].dropna()
    common = new_errors.index.intersection(serving_errors.index)
    nan = float("nan")
    return Comparison(
        criterion=data.criterion,
        serving_tag=serving.label,
        serving_run=serving_run,
        new_error=float(new_errors.loc[common].median()) if len(common) else nan,
        serving_error=float(serving_errors.loc[common].median()) if len(common) else nan,
        lists=len(common),
    )


def behaviour_failure(record: dict[str, Any]) -> str | None:
    """The behavioural check promotion adds to the gate's (demand falling with price): the optimum inside the
    grid for the best sellers, from the primary's ``edges`` summary in its run record."""
    edges = record.get("edges")
    if not edges or not edges.get("lists"):
        return None
    allowed = int(MAX_EDGE_SHARE * edges["lists"])
    if edges["at_edge_not_flagged"] > allowed:
        return (
            f"the new primary puts the optimum on the grid's edge for {edges['at_edge_not_flagged']} of "
            f"{edges['lists']} best sellers without flagging them not identifiable (at most {allowed} allowed)"
        )
    return None


@dataclass(frozen=True)
class Decision:
    """Whether the new run is published, and why."""

    publish: bool
    forced: bool
    reasons: list[str]  # why it was (or, with force, would have been) refused
    comparison: Comparison | None
    note: str | None = None  # why there was no comparison
    max_regression: float = MAX_REGRESSION

    @property
    def message(self) -> str:
        """One line for the log and the refusal."""
        if not self.publish:
            return (
                f"promotion refused, the run is stored but not published: {'; '.join(self.reasons)}. "
                "Train with --force to publish it anyway"
                + (" or a larger --max-regression" if self.comparison is not None else "")
            )
        if self.forced and self.reasons:
            return f"published with --force despite: {'; '.join(self.reasons)}"
        if self.comparison is None:
            return f"published ({self.note})"
        c = self.comparison
        return (
            f"published: {_LABELS[c.criterion]} {c.new_error:.4f} against the serving {c.serving_tag}'s "
            f"{c.serving_error:.4f} on {c.lists} lists ({c.change:+.1%}, at most {self.max_regression:+.1%} allowed)"
        )

    def metadata(self) -> dict[str, Any]:
        """``metadata["promotion"]`` of the run's models and the run record's ``promotion`` (BentoML metadata
        holds no None: absent entries are left out)."""
        meta: dict[str, Any] = {
            "published": self.publish,
            "forced": self.forced,
            "max_regression": self.max_regression if math.isfinite(self.max_regression) else "inf",
        }
        if self.reasons:
            meta["reason"] = "; ".join(self.reasons)
        if self.comparison is not None:
            meta["comparison"] = self.comparison.summary()
        if self.note:
            meta["note"] = self.note
        return meta


def decide(
    new: Contender,
    record: dict[str, Any],
    data: HeldOutData,
    *,
    max_regression: float = MAX_REGRESSION,
    force: bool = False,
    serving: Callable[[], tuple[str, Contender] | None] | None = None,
) -> Decision:
    """Decide whether the run whose primary is ``new`` (with run record ``record``) may serve.

    ``serving`` returns the serving run's id and primary (default: ``current_primary``, from the model store).
    """
    if not max_regression >= 0:  # also refuses NaN
        raise ValueError(f"max_regression: {max_regression} must be a number >= 0 (inf: no comparison)")
    reasons = [r for r in (behaviour_failure(record),) if r is not None]
    comparison, note = None, None
    if not math.isfinite(max_regression):
        note = "comparison with the serving run disabled (max_regression inf)"
    else:
        try:
            current = (serving or current_primary)()
            if current is not None:
                comparison = compare(new, current[1], data, serving_run=current[0])
        except Exception as exc:  # a damaged or incompatible stored model: no comparison, and no silent pass
            log.exception("PROMOTION: the serving primary could not be scored")
            reasons.append(f"the serving primary could not be loaded and scored to compare with ({exc!r})")
        else:
            if current is None:
                note = "no run serves in this model store: nothing to compare with"
            else:
                reason = comparison.refusal(max_regression)
                if reason is not None:
                    reasons.append(reason)
    decision = Decision(
        publish=force or not reasons,
        forced=force,
        reasons=reasons,
        comparison=comparison,
        note=note,
        max_regression=max_regression,
    )
    if decision.publish:
        (log.warning if reasons else log.info)("PROMOTION: %s", decision.message)
    else:
        log.error("PROMOTION: refused, the run will be stored but not published: %s", "; ".join(reasons))
    return decision


def current_primary() -> tuple[str, Contender] | None:
    """The serving run's id and its primary as stored, or None when no run serves."""
    try:
        run_id = serving_run_id()
    except LookupError:
        return None
    stored = load_model(serving_order(run_id)[0])
    return run_id, Contender(stored.tag, stored.estimator, stored.pipeline, stored.context)
