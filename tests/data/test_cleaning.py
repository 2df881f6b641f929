"""Cleaning rules: which rows each rule drops, how the report counts them, and product codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pricing.data import (
    COLUMNS,
    NON_PRODUCT_CODES,
    CleaningReport,
    clean_transactions,
    is_product_code,
    validate_transactions,
)

RULES = ["cancellation", "non_product_code", "non_positive_price", "non_positive_quantity", "duplicate"]


def make_row(**overrides) -> dict:
    row = {
        "InvoiceNo": "536365",
        "StockCode": "85123A",
        "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
        "Quantity": 6,
        "InvoiceDate": "2010-12-03 08:26",
        "UnitPrice": 2.55,
        "CustomerID": 17850.0,
        "Country": "United Kingdom",
    }
    row.update(overrides)
    return row


def make_frame(rows: list[dict]) -> pd.DataFrame:
    return validate_transactions(pd.DataFrame(rows))


# Each row's InvoiceNo says which rule should drop it; "keep" rows survive.
KNOWN_ROWS = [
    make_row(InvoiceNo="keep-3"),
    make_row(InvoiceNo="C536379", Quantity=-1),  # cancellation
    make_row(InvoiceNo="c536380", Quantity=1),  # cancellation: prefix only, any case
    make_row(InvoiceNo="536381", Quantity=-2),  # cancellation: negative quantity only
    make_row(InvoiceNo="C536390", StockCode="D", Quantity=-1),  # cancellation and non-product
    make_row(InvoiceNo="536400", StockCode="POST"),  # non_product_code
    make_row(InvoiceNo="536401", StockCode="M", UnitPrice=0.0),  # non_product_code and zero price
    make_row(InvoiceNo="536410", StockCode="22423", UnitPrice=0.0),  # non_positive_price
    make_row(InvoiceNo="536411", StockCode="22424", UnitPrice=-11062.06),  # non_positive_price
    make_row(InvoiceNo="536410", StockCode="22423", UnitPrice=0.0),  # non_positive_price, duplicate of one
    make_row(InvoiceNo="536420", Quantity=0),  # non_positive_quantity
    make_row(InvoiceNo="keep-3"),  # duplicate
    make_row(InvoiceNo="keep-3", Quantity=7),  # differs in one column: kept
    make_row(InvoiceNo="keep-1", InvoiceDate="2010-12-01 08:26"),
]
KNOWN_DROPPED = {
    "cancellation": 4,
    "non_product_code": 2,
    "non_positive_price": 3,
    "non_positive_quantity": 1,
    "duplicate": 1,
}


def test_each_rule_drops_the_known_rows():
    cleaned, report = clean_transactions(make_frame(KNOWN_ROWS))

    assert report.dropped == KNOWN_DROPPED
    assert list(report.dropped) == RULES
    assert (report.rows_in, report.rows_out) == (14, 3)
    assert cleaned["InvoiceNo"].tolist() == ["keep-1", "keep-3", "keep-3"]
    assert cleaned["Quantity"].tolist() == [6, 6, 7]


def test_report_counts_sum_to_rows_dropped():
    cleaned, report = clean_transactions(make_frame(KNOWN_ROWS))

    assert sum(report.dropped.values()) == report.rows_in - report.rows_out
    assert report.rows_out == len(cleaned)


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"InvoiceNo": "C536379", "Quantity": -1}, "cancellation"),
        ({"StockCode": "BANK CHARGES"}, "non_product_code"),
        ({"UnitPrice": 0.0}, "non_positive_price"),
        ({"Quantity": 0}, "non_positive_quantity"),
        ({}, "duplicate"),
    ],
)
def test_single_bad_row_is_counted_under_its_rule_only(overrides, rule):
    frame = make_frame([make_row(), make_row(**overrides)])

    cleaned, report = clean_transactions(frame)

    assert report.dropped == {name: int(name == rule) for name in RULES}
    assert len(cleaned) == 1


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"InvoiceNo": "C536379", "Quantity": -1, "StockCode": "D"}, "cancellation"),
        ({"InvoiceNo": "C536379", "Quantity": -1, "UnitPrice": 0.0}, "cancellation"),
        ({"StockCode": "M", "UnitPrice": 0.0}, "non_product_code"),
        ({"StockCode": "POST", "Quantity": 0}, "non_product_code"),
        ({"UnitPrice": -1.0, "Quantity": 0}, "non_positive_price"),
    ],
)
def test_row_matching_two_rules_is_counted_under_the_first(overrides, rule):
    _, report = clean_transactions(make_frame([make_row(), make_row(**overrides)]))

    assert report.dropped == {name: int(name == rule) for name in RULES}


def test_duplicate_of_a_dropped_row_is_not_counted_as_duplicate():
    zero_price = make_row(UnitPrice=0.0)

    _, report = clean_transactions(make_frame([make_row(), zero_price, zero_price]))

    assert report.dropped["non_positive_price"] == 2
    assert report.dropped["duplicate"] == 0


def test_clean_frame_keeps_all_rows_and_reports_every_rule_as_zero():
    frame = make_frame([make_row(), make_row(InvoiceNo="536366"), make_row(StockCode="15056bl")])

    cleaned, report = clean_transactions(frame)

    assert report == CleaningReport(rows_in=3, rows_out=3, dropped=dict.fromkeys(RULES, 0))
    assert cleaned["StockCode"].tolist() == ["85123A", "85123A", "15056BL"]


def test_output_is_sorted_by_date_stably_with_a_fresh_index():
    rows = [
        make_row(InvoiceNo="late", InvoiceDate="2011-01-05 10:00"),
        make_row(InvoiceNo="tie-first", InvoiceDate="2010-12-01 08:26"),
        make_row(InvoiceNo="early", InvoiceDate="2010-11-30 17:00"),
        make_row(InvoiceNo="tie-second", InvoiceDate="2010-12-01 08:26"),
    ]
    frame = make_frame(rows).set_axis([10, 20, 30, 40])

    cleaned, _ = clean_transactions(frame)

    assert cleaned["InvoiceNo"].tolist() == ["early", "tie-first", "tie-second", "late"]
    assert cleaned.index.tolist() == [0, 1, 2, 3]
    assert cleaned["InvoiceDate"].is_monotonic_increasing


def test_output_has_the_validated_columns_and_dtypes():
    frame = make_frame(KNOWN_ROWS)

    cleaned, _ = clean_transactions(frame)

    assert tuple(cleaned.columns) == COLUMNS
    assert cleaned.dtypes.to_dict() == frame.dtypes.to_dict()


def test_input_is_not_mutated():
    frame = make_frame(KNOWN_ROWS)
    before = frame.copy()

    clean_transactions(frame)

    pd.testing.assert_frame_equal(frame, before)


def test_raw_frame_is_validated_before_cleaning():
    raw = pd.DataFrame(KNOWN_ROWS).rename(columns={"UnitPrice": "Unit Price", "InvoiceNo": "invoice_no"})
    before = raw.copy()

    cleaned, report = clean_transactions(raw)

    pd.testing.assert_frame_equal(raw, before)
    expected, expected_report = clean_transactions(make_frame(KNOWN_ROWS))
    pd.testing.assert_frame_equal(cleaned, expected)
    assert report == expected_report


def test_empty_frame_is_cleaned_to_an_empty_frame():
    cleaned, report = clean_transactions(pd.DataFrame(columns=list(COLUMNS)))

    assert cleaned.empty and tuple(cleaned.columns) == COLUMNS
    assert report.to_dict() == {"rows_in": 0, "rows_out": 0, "dropped": dict.fromkeys(RULES, 0)}
    assert "0.00%" in report.format()


def test_format_lists_every_rule_with_count_and_share():
    _, report = clean_transactions(make_frame(KNOWN_ROWS))

    lines = report.format().splitlines()

    assert lines[0] == "cleaning: 14 rows in, 3 rows out"
    for name in RULES:
        (line,) = [line for line in lines if line.split()[0] == name]
        assert line.split()[1:] == [str(KNOWN_DROPPED[name]), f"{100 * KNOWN_DROPPED[name] / 14:.2f}%"]
    assert lines[-1].split() == ["total", "dropped", "11", "78.57%"]


def test_format_uses_thousands_separators():
    report = CleaningReport(rows_in=541_909, rows_out=392_692, dropped=dict.fromkeys(RULES, 0))

    assert "541,909 rows in, 392,692 rows out" in report.format()
    assert "149,217" in report.format()


def test_to_dict_is_json_serialisable():
    _, report = clean_transactions(make_frame(KNOWN_ROWS))

    as_dict = json.loads(json.dumps(report.to_dict()))

    assert as_dict == {"rows_in": 14, "rows_out": 3, "dropped": KNOWN_DROPPED}


PRODUCT_CODES = ["85123A", "22423", "84029G", "15056BL", "79323LP", "85099B", "47566", "15056bl", " 22633 "]
NON_PRODUCT_EXAMPLES = [
    "POST", "DOT", "M", "m", "D", "C2", "CRUK", "PADS", "S", "B", "AMAZONFEE", "BANK CHARGES",
    "gift_0001_20", "DCGS0003", "DCGS0066P", "DCGSSBOY", "8512", "", "85123-A",
]  # fmt: skip


@pytest.mark.parametrize("code", PRODUCT_CODES)
def test_real_product_codes_are_products(code):
    assert is_product_code(pd.Series([code])).tolist() == [True]


@pytest.mark.parametrize("code", NON_PRODUCT_EXAMPLES)
def test_non_product_codes_are_not_products(code):
    assert is_product_code(pd.Series([code])).tolist() == [False]


def test_is_product_code_returns_aligned_boolean_mask():
    codes = pd.Series(["85123A", "POST", np.nan, "22423"], index=[5, 6, 7, 8])

    mask = is_product_code(codes)

    assert mask.dtype == np.dtype("bool")
    assert mask.index.tolist() == [5, 6, 7, 8]
    assert mask.tolist() == [True, False, False, True]


def test_every_known_non_product_code_is_rejected():
    codes = pd.Series(sorted(NON_PRODUCT_CODES))

    uci_examples = {"POST", "DOT", "M", "D", "C2", "CRUK", "PADS", "S", "B", "AMAZONFEE", "BANK CHARGES"}
    assert uci_examples <= set(codes)
    assert not is_product_code(codes).any()
