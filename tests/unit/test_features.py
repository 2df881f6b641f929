"""Features: past-only history, the time split, the fitted pipeline and the shared price block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.features import (
    CONTEXT_FEATURES,
    FEATURES,
    PRICE_FEATURES,
    FeaturePipeline,
    HistoryIndex,
    add_history_features,
    from_target,
    price_features,
    split_by_time,
    to_target,
)


def rows(*lines: tuple[str, str, str, int, float, float | None, str]) -> pd.DataFrame:
    """Cleaned rows from (invoice, stockcode, timestamp, quantity, price, customer, country) tuples."""
    frame = pd.DataFrame(
        lines, columns=["InvoiceNo", "StockCode", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID", "Country"]
    )
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["CustomerID"] = frame["CustomerID"].astype(float)
    frame["Description"] = ""
    return frame


HISTORY = rows(
    ("1", "A", "2011-01-01 10:00", 2, 1.0, 100, "United Kingdom"),
    ("1", "B", "2011-01-01 10:00", 4, 2.0, 100, "United Kingdom"),
    ("2", "A", "2011-01-10 09:00", 8, 1.0, 100, "United Kingdom"),
    ("3", "A", "2011-01-10 09:00", 1, 1.0, None, "France"),
    ("4", "A", "2011-02-20 12:00", 3, 1.0, 200, "France"),
    ("5", "A", "2011-02-21 12:00", 5, 1.0, 100, "United Kingdom"),
)


def test_product_lines_in_previous_28_days_exclude_same_instant_and_older_rows() -> None:
    out = add_history_features(HISTORY)
    # A@01-01: none before; B: none; A@01-10 (two rows at one instant): only 01-01; A@02-20: 01-10 and
    # 01-01 are more than 28 days earlier; A@02-21: the 02-20 row only.
    assert out["product_lines_28d"].tolist() == [0, 0, 1, 1, 0, 1]


def test_customer_history_uses_earlier_invoices_only() -> None:
    out = add_history_features(HISTORY)
    assert out["customer_prior_invoices"].tolist() == [0, 0, 1, 0, 0, 2]
    past = out["customer_past_mean_logq"].to_numpy()
    assert np.isnan(past[[0, 1, 3, 4]]).all()  # first invoices and the guest have no history
    assert past[2] == pytest.approx(np.mean(np.log([2, 4])))
    assert past[5] == pytest.approx(np.mean(np.log([2, 4, 8])))


def test_history_features_never_see_the_future(tiny) -> None:
    clean = tiny.enriched.drop(columns=["product_lines_28d", "customer_prior_invoices", "customer_past_mean_logq"])
    cut = clean["InvoiceDate"].quantile(0.6)
    future = clean["InvoiceDate"] > cut
    changed = clean.copy()
    changed.loc[future, "Quantity"] = changed.loc[future, "Quantity"] * 10
    changed = changed[~(future & (np.arange(len(changed)) % 3 == 0))]  # and drop some future rows
    before, after = add_history_features(clean), add_history_features(changed)
    past = before["InvoiceDate"] <= cut
    pd.testing.assert_frame_equal(
        before.loc[past].reset_index(drop=True), after.loc[after["InvoiceDate"] <= cut].reset_index(drop=True)
    )


def test_time_split_orders_train_val_test(tiny) -> None:
    split = tiny.split
    assert split.train["InvoiceDate"].max() < split.val["InvoiceDate"].min()
    assert split.val["InvoiceDate"].max() < split.test["InvoiceDate"].min()
    assert len(split.train) + len(split.val) + len(split.test) == len(tiny.enriched)
    assert 0.1 < len(split.test) / len(tiny.enriched) < 0.2


def test_time_split_refuses_to_leave_a_part_empty() -> None:
    with pytest.raises(ValueError, match="empty part"):
        split_by_time(add_history_features(HISTORY.iloc[:2]))


def test_pipeline_learns_from_training_rows_only(tiny) -> None:
    train = tiny.split.train
    pipeline = FeaturePipeline().fit(train)
    changed_val = tiny.split.val.assign(Quantity=tiny.split.val["Quantity"] * 50)
    again = FeaturePipeline().fit(train)
    np.testing.assert_array_equal(pipeline.transform(changed_val), again.transform(changed_val))
    code = train["StockCode"].iloc[0]
    assert pipeline.reference_price(np.array([code]))[0] == pytest.approx(
        train.loc[train["StockCode"] == code, "UnitPrice"].median()
    )


def test_unseen_products_fall_back_to_global_levels(tiny) -> None:
    row = tiny.split.test.iloc[[0]].assign(StockCode="99999Z")
    X = tiny.pipeline.transform(row)
    assert X[0, CONTEXT_FEATURES.index("product_known")] == 0.0
    assert not tiny.pipeline.knows("99999Z")
    assert np.isfinite(X).all()


def test_transform_is_context_block_then_the_shared_price_block(tiny) -> None:
    part = tiny.split.val
    X = tiny.pipeline.transform(part)
    assert X.shape == (len(part), len(FEATURES))
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X[:, : len(CONTEXT_FEATURES)], tiny.pipeline.encode_context(part))
    expected = price_features(part["UnitPrice"].to_numpy(), tiny.pipeline.reference_price(part["StockCode"]))
    np.testing.assert_array_equal(X[:, len(CONTEXT_FEATURES) :], expected)


def test_price_block_is_relative_to_the_reference_price() -> None:
    block = price_features(np.array([1.0, 2.0, 3.0]), 2.0)
    assert block.shape == (3, len(PRICE_FEATURES)) == (3, 1)
    np.testing.assert_allclose(block[:, 0], [0.5, 1.0, 1.5])


def test_target_transform_round_trips() -> None:
    q = np.array([1, 2, 12, 480])
    np.testing.assert_allclose(from_target(to_target(q)), q)


def test_unfitted_pipeline_says_so(tiny) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FeaturePipeline().transform(tiny.split.val)


def test_history_index_matches_the_training_history_features(tiny) -> None:
    clean = tiny.enriched.drop(columns=["product_lines_28d", "customer_prior_invoices", "customer_past_mean_logq"])
    cut = clean["InvoiceDate"].quantile(0.8)
    history, later = clean[clean["InvoiceDate"] < cut], clean[clean["InvoiceDate"] >= cut]
    served = HistoryIndex(history).features(later.head(40)).reset_index(drop=True)
    for i, (_, row) in enumerate(later.head(40).iterrows()):
        trained = add_history_features(pd.concat([history, row.to_frame().T.astype(history.dtypes)])).iloc[-1]
        assert served.loc[i, "product_lines_28d"] == trained["product_lines_28d"]
        assert served.loc[i, "customer_prior_invoices"] == trained["customer_prior_invoices"]
        assert served.loc[i, "customer_past_mean_logq"] == pytest.approx(
            trained["customer_past_mean_logq"], nan_ok=True
        )
