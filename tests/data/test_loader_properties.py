"""Properties of the loader: whatever bytes a file holds, ``read_transactions`` returns a frame of the schema
or raises a one-line ``DataError``, never another exception; and slash dates are never read in the wrong
order without a word.

Hypothesis runs with the suite's profile (tests/conftest.py): derandomized, no example database, bounded examples.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.data import COLUMNS, DataError, clean_transactions, read_transactions, validate_transactions

HEADER = list(COLUMNS)
VALID_ROW = ["536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "6", "2010-12-01 08:26:00", "2.55", "17850",
             "United Kingdom"]  # fmt: skip

# Field values: plausible ones, the messy ones real exports have, and junk.
plausible = st.sampled_from(
    ["536365", "C536379", "85123A", "POST", "6", "-1", "0", "2.55", "0.0", "17850", "17850.0", "", "NA", "United "
     "Kingdom", "2010-12-01 08:26:00", "12/1/2010 8:26", "01/12/2010 08:26", "13/01/2011 08:08", "12/13/2010 10:00",
     "1e30", "-12345678901234567890", "inf", "nan", "0x10", "£5", "ÿþ", "9999-12-31", "0001-01-01", "31/31/2011",
     "2010-12-01T08:26:00+01:00", '"quoted, with comma"', '"unterminated', "a\tb", "x;y", "\x00"]
)  # fmt: skip
junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
field = st.one_of(plausible, junk)
separator = st.sampled_from([",", ",", ",", ";", "\t"])
line_end = st.sampled_from(["\n", "\r\n", "\r"])
encoding = st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """A header that is the schema's (maybe shuffled, cut or padded) or not, then rows of mostly plausible fields
    and junk, with varying field counts; maybe cut anywhere."""
    header = draw(
        st.one_of(
            st.just(HEADER),
            st.permutations(HEADER),
            st.lists(st.sampled_from([*HEADER, "Invoice", "Price", "Customer ID", "Notes"]), max_size=10),
            st.lists(junk, max_size=6),
        )
    )
    rows = draw(
        st.lists(
            st.one_of(
                st.just(VALID_ROW),
                st.lists(field, min_size=len(header), max_size=len(header)),
                st.lists(field, max_size=len(header) + 2),
            ),
            max_size=8,
        )
    )
    sep, end = draw(separator), draw(line_end)
    text = end.join(sep.join(fields) for fields in [header, *rows]) + draw(st.sampled_from([end, ""]))
    cut = draw(st.one_of(st.none(), st.integers(0, len(text))))
    return text if cut is None else text[:cut]


def encode(text: str, name: str) -> bytes:
    return text.encode(name, errors="replace")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("loader-properties")


def assert_frame_or_data_error(path: Path, date_format: str | None = None) -> None:
    """The loader's contract on one file: a frame with the schema's columns and dtypes, or a one-line DataError."""
    try:
        frame = read_transactions(path, date_format=date_format)
    except DataError as error:
        message = str(error)
        assert message and "\n" not in message, message
        return
    assert tuple(frame.columns) == COLUMNS
    assert len(frame) > 0
    assert frame["Quantity"].dtype == np.dtype("int64")
    assert frame["InvoiceDate"].dtype == np.dtype("datetime64[ns]")
    assert frame["UnitPrice"].dtype == np.dtype("float64") and np.isfinite(frame["UnitPrice"]).all()
    assert frame["CustomerID"].dtype == np.dtype("float64")
    assert frame["InvoiceDate"].notna().all()


def test_any_bytes_as_a_csv_give_a_frame_or_a_data_error(folder) -> None:
    @given(data=st.binary(max_size=3_000), suffix=st.sampled_from([".csv", ".csv.gz", ".xlsx", ".parquet", ".zip"]))
    def check(data: bytes, suffix: str) -> None:
        path = folder / f"bytes{suffix}"
        path.write_bytes(data)
        assert_frame_or_data_error(path)

    check()


def test_any_csv_like_text_in_any_encoding_gives_a_frame_or_a_data_error(folder) -> None:
    @given(text=csv_texts(), name=encoding, date_format=st.sampled_from([None, None, "%d/%m/%Y %H:%M", "%Y"]))
    def check(text: str, name: str, date_format: str | None) -> None:
        path = folder / "text.csv"
        path.write_bytes(encode(text, name))
        assert_frame_or_data_error(path, date_format)

    check()


COMPRESSORS = {".csv.gz": gzip.compress, ".csv.xz": lzma.compress, ".csv.bz2": bz2.compress}


def test_a_compressed_file_cut_or_damaged_anywhere_gives_a_frame_or_a_data_error(folder) -> None:
    whole = "\n".join(",".join(fields) for fields in [HEADER, *[VALID_ROW] * 40]) + "\n"

    @given(suffix=st.sampled_from(sorted(COMPRESSORS)), cut=st.floats(0, 1), flip=st.one_of(st.none(), st.integers()))
    def check(suffix: str, cut: float, flip: int | None) -> None:
        data = bytearray(COMPRESSORS[suffix](whole.encode()))
        if flip is not None:
            data[flip % len(data)] ^= 0xFF
        path = folder / f"cut{suffix}"
        path.write_bytes(bytes(data[: round(cut * len(data))]))
        assert_frame_or_data_error(path)

    check()


def test_any_frame_of_odd_values_validates_or_gives_a_data_error() -> None:
    value = st.one_of(
        st.none(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.text(max_size=8),
        plausible,
        st.datetimes(),
        st.booleans(),
    )

    @given(rows=st.lists(st.lists(value, min_size=len(HEADER), max_size=len(HEADER)), max_size=6))
    def check(rows: list[list]) -> None:
        frame = pd.DataFrame(rows, columns=HEADER, dtype=object)
        try:
            validated = validate_transactions(frame)
        except DataError as error:
            assert "\n" not in str(error)
            return
        assert tuple(validated.columns) == COLUMNS and len(validated) == len(rows)

    check()


# Slash dates: never read in the wrong order without a word.
dates = st.datetimes(min_value=datetime(2009, 1, 1), max_value=datetime(2012, 12, 31, 23, 59))


def test_slash_dates_are_read_in_their_order_or_refused(folder) -> None:
    """Dates written day first or month first (zero-padded or not) come back exactly, or the column is refused as
    ambiguous when no field exceeds 12 and some date reads differently the other way round."""

    @given(
        when=st.lists(dates, min_size=1, max_size=30),
        day_first=st.booleans(),
        padded=st.booleans(),
        name=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    )
    def check(when: list, day_first: bool, padded: bool, name: str) -> None:
        stamps = [pd.Timestamp(w).floor("min") for w in when]
        texts = [_slash(s, day_first, padded) for s in stamps]
        rows = [[*VALID_ROW[:4], text, *VALID_ROW[5:]] for text in texts]
        path = folder / "dates.csv"
        path.write_bytes(encode("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", name))
        decisive = any(s.day > 12 for s in stamps)  # written first (day first) or second (month first)
        ambiguous = not decisive and any(s.day != s.month for s in stamps)
        if ambiguous:
            with pytest.raises(DataError, match="--date-format"):
                read_transactions(path)
        else:
            assert read_transactions(path)["InvoiceDate"].tolist() == stamps

    check()


def _slash(stamp: pd.Timestamp, day_first: bool, padded: bool) -> str:
    first, second = (stamp.day, stamp.month) if day_first else (stamp.month, stamp.day)
    width = 2 if padded else 1
    return f"{first:0{width}d}/{second:0{width}d}/{stamp.year} {stamp.hour:0{width}d}:{stamp.minute:02d}"


def test_any_small_valid_transactions_pass_the_training_data_checks_or_give_a_data_error() -> None:
    """Cleaning, the demand table and training's data checks on few lines of few products: a DataError saying what
    is too small, never a traceback from deeper down (a file without any CustomerID once raised a TypeError)."""
    from pricing.demand import build_demand
    from pricing.training import check_enough_demand, check_enough_sales

    line = st.tuples(
        st.sampled_from(["536365", "536366", "C536367", "536368"]),
        st.sampled_from(["85123A", "22423", "POST", "84029E"]),
        st.integers(-5, 50),
        st.datetimes(min_value=datetime(2010, 12, 1), max_value=datetime(2011, 12, 9)),
        st.sampled_from([0.0, 1.25, 2.55, 2.95, 3.39, 12.75]),
        st.sampled_from([17850.0, float("nan"), 13047.0]),
    )

    @settings(max_examples=40)
    @given(lines=st.lists(line, min_size=1, max_size=80), period=st.sampled_from(["W", "D"]))
    def check(lines: list[tuple], period: str) -> None:
        columns = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
        raw = pd.DataFrame(lines, columns=columns).assign(Description="MUG", Country="United Kingdom")
        clean, report = clean_transactions(raw)
        try:
            check_enough_sales(clean, report)
            check_enough_demand(build_demand(clean, period=period))
        except DataError as error:
            assert "\n" not in str(error)

    check()
