"""Reading and validating transaction files: formats, tolerant column names, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.data import COLUMNS, DataError, read_transactions, validate_transactions

UCI_CSV = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,1/12/2011 9:05,1.85,,United Kingdom
C536379,D,Discount,-1,12/13/2010 10:00,27.5,14527,NA
"""


def make_messy_frame() -> pd.DataFrame:
    """Odd column names, an extra column, padded and lower-case codes, missing text and customers."""
    return pd.DataFrame(
        {
            " invoice no ": ["536365", " C536379", "536366"],
            "Stock_Code": ["85123a ", "D", "22633"],
            "DESCRIPTION": ["WHITE HANGING HEART T-LIGHT HOLDER", None, "HAND WARMER UNION JACK"],
            "quantity": [6, -1, 12],
            "Invoice Date": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:41", "2010-12-02 10:00"]),
            "Unit Price": [2.55, 27.5, 1.85],
            "Customer ID": [17850.0, np.nan, 13047.0],
            "country": ["United Kingdom", "United Kingdom", "France"],
            "Notes": ["a", "b", "c"],
        }
    )


def make_expected_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "InvoiceNo": ["536365", "C536379", "536366"],
            "StockCode": ["85123A", "D", "22633"],
            "Description": ["WHITE HANGING HEART T-LIGHT HOLDER", "", "HAND WARMER UNION JACK"],
            "Quantity": np.array([6, -1, 12], dtype="int64"),
            "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:41", "2010-12-02 10:00"]).astype(
                "datetime64[ns]"
            ),
            "UnitPrice": [2.55, 27.5, 1.85],
            "CustomerID": [17850.0, np.nan, 13047.0],
            "Country": ["United Kingdom", "United Kingdom", "France"],
        }
    )


def make_canonical_frame(**overrides: list) -> pd.DataFrame:
    """A valid two-row frame in canonical column names, with some columns replaced."""
    columns = {
        "InvoiceNo": ["536365", "536366"],
        "StockCode": ["85123A", "22633"],
        "Description": ["WHITE HANGING HEART T-LIGHT HOLDER", "HAND WARMER UNION JACK"],
        "Quantity": [6, 6],
        "InvoiceDate": ["2010-12-01 08:26", "2010-12-01 08:28"],
        "UnitPrice": [2.55, 1.85],
        "CustomerID": [17850.0, 17850.0],
        "Country": ["United Kingdom", "United Kingdom"],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def assert_schema_dtypes(df: pd.DataFrame) -> None:
    assert tuple(df.columns) == COLUMNS
    for column in ("InvoiceNo", "StockCode", "Description", "Country"):
        assert pd.api.types.is_string_dtype(df[column]), column
    assert df["Quantity"].dtype == np.dtype("int64")
    assert df["InvoiceDate"].dtype == np.dtype("datetime64[ns]")
    assert df["UnitPrice"].dtype == np.dtype("float64")
    assert df["CustomerID"].dtype == np.dtype("float64")


WRITERS = {
    ".csv": lambda df, path: df.to_csv(path, index=False),
    ".csv.gz": lambda df, path: df.to_csv(path, index=False),
    ".csv.xz": lambda df, path: df.to_csv(path, index=False),
    ".csv.bz2": lambda df, path: df.to_csv(path, index=False),
    ".zip": lambda df, path: df.to_csv(path, index=False),  # pandas zips the CSV inside
    ".xlsx": lambda df, path: df.to_excel(path, index=False),
    ".parquet": lambda df, path: df.to_parquet(path, index=False),
}


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_round_trip_of_messy_frame_gives_expected_frame(tmp_path, suffix):
    path = tmp_path / f"transactions{suffix}"
    WRITERS[suffix](make_messy_frame(), path)

    loaded = read_transactions(path)

    assert_schema_dtypes(loaded)
    pd.testing.assert_frame_equal(loaded, make_expected_frame())


def test_all_formats_give_identical_frames(tmp_path):
    frames = []
    for suffix, write in WRITERS.items():
        path = tmp_path / f"transactions{suffix}"
        write(make_messy_frame(), path)
        frames.append(read_transactions(str(path)))

    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


def test_suffix_is_case_insensitive(tmp_path):
    path = tmp_path / "TRANSACTIONS.CSV"
    make_messy_frame().to_csv(path, index=False)

    pd.testing.assert_frame_equal(read_transactions(path), make_expected_frame())


@pytest.mark.parametrize(
    "names",
    [
        ["invoice no", "stock code", "description", "quantity", "invoice date", "unit price", "customer id",
         "country"],
        [" InvoiceNo ", " StockCode", "Description ", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
         "Country"],
        ["INVOICE_NO", "STOCK_CODE", "DESCRIPTION", "QUANTITY", "INVOICE_DATE", "UNIT_PRICE", "CUSTOMER_ID",
         "COUNTRY"],
        ["invoiceno", "stockcode", "description", "quantity", "invoicedate", "unitprice", "customerid",
         "country"],
        # Online Retail II (2009-2011) header.
        ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"],
    ],
    ids=["spaces", "padded", "upper_snake", "lower", "online_retail_ii"],
)  # fmt: skip
def test_tolerant_column_names_map_to_canonical_names(names):
    raw = make_canonical_frame().set_axis(names, axis=1)

    validated = validate_transactions(raw)

    pd.testing.assert_frame_equal(validated, validate_transactions(make_canonical_frame()))


def test_extra_columns_are_dropped_and_order_is_canonical():
    raw = make_canonical_frame()
    raw = raw[list(reversed(raw.columns))].assign(Notes=["x", "y"], Margin=[0.1, 0.2])

    validated = validate_transactions(raw)

    assert tuple(validated.columns) == COLUMNS
    assert validated["InvoiceNo"].tolist() == ["536365", "536366"]


def test_validation_returns_new_frame_and_leaves_input_unchanged():
    raw = make_messy_frame()
    before = raw.copy()

    validated = validate_transactions(raw)
    validated.loc[0, "Quantity"] = 999

    pd.testing.assert_frame_equal(raw, before)


def test_validation_keeps_the_input_index():
    raw = make_canonical_frame().set_axis([7, 3])

    assert validate_transactions(raw).index.tolist() == [7, 3]


def test_missing_columns_are_all_named_with_the_columns_found():
    raw = make_canonical_frame().drop(columns=["Quantity", "UnitPrice"]).rename(columns=str.lower)

    with pytest.raises(DataError) as caught:
        validate_transactions(raw)

    message = str(caught.value)
    assert "missing required column(s) ['Quantity', 'UnitPrice']" in message
    assert "found columns ['invoiceno', 'stockcode', 'description', 'invoicedate', 'customerid', 'country']" in message


def test_two_columns_mapping_to_the_same_name_is_an_error():
    raw = make_canonical_frame().assign(Invoice=["1", "2"])

    with pytest.raises(DataError, match="'InvoiceNo' and 'Invoice' both map to InvoiceNo"):
        validate_transactions(raw)


def test_unparseable_dates_name_the_column_count_and_values():
    raw = make_canonical_frame(InvoiceDate=["12/13/2010 8:26", "not a date"])
    raw = pd.concat([raw, make_canonical_frame(InvoiceDate=["31/31/2011", "not a date"])], ignore_index=True)

    with pytest.raises(DataError) as caught:
        validate_transactions(raw)

    assert "InvoiceDate: 3 values cannot be parsed as dates, e.g. ['not a date', '31/31/2011']" in str(caught.value)


def test_unparseable_quantities_name_the_column_and_values():
    raw = make_canonical_frame(Quantity=["ten", 2.5])

    with pytest.raises(DataError) as caught:
        validate_transactions(raw)

    assert "Quantity: 2 values cannot be parsed as integers, e.g. ['ten', 2.5]" in str(caught.value)


def test_unparseable_price_and_customer_are_reported_together():
    raw = make_canonical_frame(UnitPrice=["2.55", "cheap"], CustomerID=["17850", "guest"])

    with pytest.raises(DataError) as caught:
        validate_transactions(raw)

    message = str(caught.value)
    assert "UnitPrice: 1 value cannot be parsed as numbers, e.g. ['cheap']" in message
    assert "CustomerID: 1 value cannot be parsed as numbers, e.g. ['guest']" in message


def test_error_sample_shows_at_most_five_distinct_values():
    bad_dates = [f"day {i}" for i in range(8)]
    raw = pd.concat([make_canonical_frame()] * 4, ignore_index=True).assign(InvoiceDate=bad_dates)

    with pytest.raises(DataError) as caught:
        validate_transactions(raw)

    message = str(caught.value)
    assert "8 values cannot be parsed as dates, e.g. ['day 0', 'day 1', 'day 2', 'day 3', 'day 4']" in message
    assert "day 5" not in message


@pytest.mark.parametrize("column", ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice"])
def test_missing_required_value_names_the_column(column):
    raw = make_canonical_frame()
    raw[column] = raw[column].astype(object)
    raw.loc[1, column] = None

    with pytest.raises(DataError, match=rf"{column}: 1 value missing, e.g. at rows \[1\]"):
        validate_transactions(raw)


def test_blank_stock_code_counts_as_missing():
    with pytest.raises(DataError, match=r"StockCode: 1 value missing"):
        validate_transactions(make_canonical_frame(StockCode=["85123A", "   "]))


def test_missing_customer_description_and_country_are_allowed():
    raw = make_canonical_frame(CustomerID=[np.nan, "13047"], Description=[None, "X"], Country=["EIRE", None])

    validated = validate_transactions(raw)

    assert np.isnan(validated.loc[0, "CustomerID"])
    assert validated.loc[1, "CustomerID"] == 13047.0
    assert validated["Description"].tolist() == ["", "X"]
    assert validated["Country"].tolist() == ["EIRE", "Unspecified"]


def test_uci_csv_dates_are_month_first(tmp_path):
    path = tmp_path / "Online Retail.csv"
    path.write_text(UCI_CSV, encoding="utf-8")

    loaded = read_transactions(path)

    assert loaded["InvoiceDate"].tolist() == [
        pd.Timestamp(2010, 12, 1, 8, 26),
        pd.Timestamp(2011, 1, 12, 9, 5),
        pd.Timestamp(2010, 12, 13, 10, 0),
    ]
    assert loaded["InvoiceNo"].tolist() == ["536365", "536366", "C536379"]
    assert loaded["Quantity"].tolist() == [6, 6, -1]
    assert loaded["CustomerID"].isna().tolist() == [False, True, False]
    # Only empty fields are missing: text that reads "NA" is kept.
    assert loaded["Country"].tolist() == ["United Kingdom", "United Kingdom", "NA"]


def test_uk_excel_csv_dates_are_day_first(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(UCI_CSV.replace("12/1/2010 8:26", "01/12/2010 08:26").replace("1/12/2011 9:05", "12/01/2011 09:05")
                    .replace("12/13/2010 10:00", "13/12/2010 10:00"), encoding="utf-8")  # fmt: skip

    loaded = read_transactions(path)

    assert loaded["InvoiceDate"].tolist() == [
        pd.Timestamp(2010, 12, 1, 8, 26),
        pd.Timestamp(2011, 1, 12, 9, 5),
        pd.Timestamp(2010, 12, 13, 10, 0),
    ]


def test_latin1_csv_is_read(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(UCI_CSV.replace("Discount", "Discount £5").encode("latin-1"))

    loaded = read_transactions(path)

    assert loaded.loc[2, "Description"] == "Discount £5"


def test_excel_integer_codes_become_strings_without_decimal(tmp_path):
    path = tmp_path / "Online Retail.xlsx"
    raw = make_canonical_frame(
        InvoiceNo=[536365, 536366],
        StockCode=pd.Series([22423, "85123A"], dtype=object),
        InvoiceDate=pd.to_datetime(["2010-12-01 08:26", "2010-12-01 08:28"]),
    )
    raw.to_excel(path, index=False)

    loaded = read_transactions(path)

    assert loaded["InvoiceNo"].tolist() == ["536365", "536366"]
    assert loaded["StockCode"].tolist() == ["22423", "85123A"]


def test_float_codes_lose_their_decimal():
    raw = make_canonical_frame(InvoiceNo=[536365.0, 536366.0], StockCode=[22423.0, 84029.0])

    validated = validate_transactions(raw)

    assert validated["InvoiceNo"].tolist() == ["536365", "536366"]
    assert validated["StockCode"].tolist() == ["22423", "84029"]


def test_parquet_string_dates_are_parsed(tmp_path):
    path = tmp_path / "transactions.parquet"
    make_canonical_frame(InvoiceDate=["2010-12-01 08:26:00", "12/22/2010 9:00"]).to_parquet(path)

    loaded = read_transactions(path)

    assert loaded["InvoiceDate"].tolist() == [pd.Timestamp(2010, 12, 1, 8, 26), pd.Timestamp(2010, 12, 22, 9)]


def test_unknown_suffix_is_an_error(tmp_path):
    path = tmp_path / "transactions.json"
    path.write_text("[]")

    with pytest.raises(DataError, match=r"unsupported file type for .*transactions\.json"):
        read_transactions(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="transactions file not found"):
        read_transactions(tmp_path / "absent.csv")
