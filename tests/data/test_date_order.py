"""InvoiceDate text: the slash-date order the whole column decides, ambiguous and mixed columns refused, an explicit
format, and the copies of the UCI file users have (the "E-Commerce Data" CSV and UK Excel exports)."""

from __future__ import annotations

import pandas as pd
import pytest

from pricing.data import DataError, read_transactions, validate_transactions

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def frame_with_dates(dates: list[str | None]) -> pd.DataFrame:
    """Valid transactions, one per date, with the dates as given."""
    n = len(dates)
    return pd.DataFrame(
        {
            "InvoiceNo": [str(536365 + i) for i in range(n)],
            "StockCode": ["85123A"] * n,
            "Description": ["WHITE HANGING HEART T-LIGHT HOLDER"] * n,
            "Quantity": ["6"] * n,
            "InvoiceDate": dates,
            "UnitPrice": ["2.55"] * n,
            "CustomerID": ["17850"] * n,
            "Country": ["United Kingdom"] * n,
        }
    )


def parsed_dates(dates: list[str | None], date_format: str | None = None) -> list[pd.Timestamp]:
    return validate_transactions(frame_with_dates(dates), date_format=date_format)["InvoiceDate"].tolist()


def test_a_first_field_above_12_anywhere_makes_the_whole_column_day_first() -> None:
    # Only the last date says so; the others would read month first on their own.
    dates = ["01/12/2010 08:26", "05/01/2011 09:05", "12/02/2011 10:00", "28/02/2011 17:45"]
    assert parsed_dates(dates) == [
        pd.Timestamp(2010, 12, 1, 8, 26),
        pd.Timestamp(2011, 1, 5, 9, 5),
        pd.Timestamp(2011, 2, 12, 10, 0),
        pd.Timestamp(2011, 2, 28, 17, 45),
    ]


def test_a_second_field_above_12_anywhere_makes_the_whole_column_month_first() -> None:
    dates = ["12/1/2010 8:26", "1/5/2011 9:05", "2/12/2011 10:00", "2/28/2011 17:45"]
    assert parsed_dates(dates) == [
        pd.Timestamp(2010, 12, 1, 8, 26),
        pd.Timestamp(2011, 1, 5, 9, 5),
        pd.Timestamp(2011, 2, 12, 10, 0),
        pd.Timestamp(2011, 2, 28, 17, 45),
    ]


def test_a_column_whose_fields_never_exceed_12_is_refused_naming_date_format() -> None:
    with pytest.raises(DataError) as caught:
        parsed_dates(["01/12/2010 08:26", "05/01/2011 09:05", "12/02/2011 10:00:30"])
    message = str(caught.value)
    assert message.startswith("invalid transactions: InvoiceDate: no slash date has a field above 12")
    assert "'01/12/2010 08:26'" in message
    assert "pass --date-format '%d/%m/%Y %H:%M' (day first) or '%m/%d/%Y %H:%M' (month first)" in message
    assert "\n" not in message


def test_the_suggested_formats_fit_the_dates_shape() -> None:
    with pytest.raises(DataError, match=r"--date-format '%d/%m/%y' \(day first\) or '%m/%d/%y' \(month first\)"):
        parsed_dates(["01/12/10", "05/01/11"])


def test_dates_that_read_the_same_either_way_need_no_order() -> None:
    assert parsed_dates(["1/1/2011 8:00", "12/12/2010 9:30"]) == [
        pd.Timestamp(2011, 1, 1, 8),
        pd.Timestamp(2010, 12, 12, 9, 30),
    ]


def test_a_column_mixing_both_orders_is_refused_with_an_example_of_each() -> None:
    with pytest.raises(DataError) as caught:
        parsed_dates(["13/01/2011 08:08", "12/13/2010 10:00", "01/02/2011 09:00"])
    message = str(caught.value)
    assert "InvoiceDate: the slash dates mix day-first ('13/01/2011 08:08') and month-first ('12/13/2010 10:00')" in (
        message
    )
    assert "--date-format" in message


def test_an_explicit_format_decides_the_order_of_an_ambiguous_column() -> None:
    dates = ["01/12/2010 08:26", "05/01/2011 09:05"]
    assert parsed_dates(dates, "%d/%m/%Y %H:%M") == [pd.Timestamp(2010, 12, 1, 8, 26), pd.Timestamp(2011, 1, 5, 9, 5)]
    assert parsed_dates(dates, "%m/%d/%Y %H:%M") == [pd.Timestamp(2010, 1, 12, 8, 26), pd.Timestamp(2011, 5, 1, 9, 5)]


def test_an_explicit_format_reads_other_shapes_and_reports_what_does_not_fit() -> None:
    assert parsed_dates(["01.12.2010 08:26"], "%d.%m.%Y %H:%M") == [pd.Timestamp(2010, 12, 1, 8, 26)]
    with pytest.raises(DataError, match=r"InvoiceDate: 1 value cannot be parsed as dates, e.g. \['2010-12-01 08:26'\]"):
        parsed_dates(["01/12/2010 08:26", "2010-12-01 08:26"], "%d/%m/%Y %H:%M")


def test_an_invalid_explicit_format_is_named() -> None:
    with pytest.raises(DataError, match=r"InvoiceDate: date format '%Q' is not valid"):
        parsed_dates(["01/12/2010 08:26"], "%Q")


def test_native_datetimes_ignore_the_format() -> None:
    raw = frame_with_dates(["x"]).assign(InvoiceDate=pd.to_datetime(["2010-12-01 08:26"]))
    validated = validate_transactions(raw, date_format="%d/%m/%Y")
    assert validated["InvoiceDate"].tolist() == [pd.Timestamp(2010, 12, 1, 8, 26)]


def test_iso_dates_with_a_utc_offset_become_utc_and_time_zone_aware_datetimes_lose_their_zone() -> None:
    assert parsed_dates(["2010-12-01T08:26:00+01:00", "2010-12-01 09:00"]) == [
        pd.Timestamp(2010, 12, 1, 7, 26),
        pd.Timestamp(2010, 12, 1, 9, 0),
    ]
    aware = frame_with_dates(["x"]).assign(
        InvoiceDate=pd.to_datetime(["2010-12-01 08:26"]).tz_localize("Europe/London")
    )
    validated = validate_transactions(aware)
    assert validated["InvoiceDate"].dtype == "datetime64[ns]"
    assert validated["InvoiceDate"].tolist() == [pd.Timestamp(2010, 12, 1, 8, 26)]


def test_implausible_years_are_reported_not_overflowed() -> None:
    with pytest.raises(DataError) as caught:
        parsed_dates(["0001-01-01", "9999-12-31 23:59", "2010-12-01"])
    assert "InvoiceDate: 2 values are dates outside the years 1900-2199, e.g. ['0001-01-01', '9999-12-31 23:59']" in (
        str(caught.value)
    )


def test_missing_dates_are_reported_by_row_alongside_the_parsed_ones() -> None:
    with pytest.raises(DataError, match=r"InvoiceDate: 1 value missing, e.g. at rows \[1\]"):
        parsed_dates(["13/01/2011 08:08", None])


def write_csv(path, rows: list[str], encoding: str = "utf-8") -> None:
    path.write_bytes((HEADER + "".join(row + "\n" for row in rows)).encode(encoding))


def test_e_commerce_data_copy_latin1_month_first_loads(tmp_path) -> None:
    path = tmp_path / "data.csv"
    write_csv(
        path,
        [
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom",
            "536366,22633,HAND WARMER UNION JACK,6,12/13/2010 9:05,1.85,,United Kingdom",
            "537000,GIFT_0001_10,Dotcomgiftshop Gift Voucher £10.00,1,1/4/2011 10:00,8.5,,United Kingdom",
        ],
        encoding="latin-1",
    )
    loaded = read_transactions(path)
    assert loaded["InvoiceDate"].tolist() == [
        pd.Timestamp(2010, 12, 1, 8, 26),
        pd.Timestamp(2010, 12, 13, 9, 5),
        pd.Timestamp(2011, 1, 4, 10, 0),
    ]
    assert loaded.loc[2, "Description"] == "Dotcomgiftshop Gift Voucher £10.00"


def test_uk_excel_export_day_first_loads(tmp_path) -> None:
    path = tmp_path / "export.csv"
    write_csv(
        path,
        [
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,01/12/2010 08:26,2.55,17850,United Kingdom",
            "536366,22633,HAND WARMER UNION JACK,6,04/01/2011 09:05,1.85,,United Kingdom",
            "536367,22633,HAND WARMER UNION JACK,6,13/01/2011 08:08,1.85,,United Kingdom",
        ],
    )
    assert read_transactions(path)["InvoiceDate"].tolist() == [
        pd.Timestamp(2010, 12, 1, 8, 26),
        pd.Timestamp(2011, 1, 4, 9, 5),
        pd.Timestamp(2011, 1, 13, 8, 8),
    ]


def test_the_order_is_decided_over_the_whole_column_not_a_sample(tmp_path) -> None:
    """About 41,000 day-first dates over a year whose only day above 12 is the very last one."""
    times = pd.date_range("2010-12-01", "2011-11-30 23:55", freq="5min")
    times = times[times.day <= 12]
    texts = [*times.strftime("%d/%m/%Y %H:%M"), "13/01/2011 08:08"]
    loaded = validate_transactions(frame_with_dates(texts))["InvoiceDate"]
    assert (loaded.iloc[:-1].to_numpy() == times.to_numpy()).all()
    assert loaded.iloc[-1] == pd.Timestamp(2011, 1, 13, 8, 8)


def test_the_file_option_reaches_the_loader(tmp_path) -> None:
    path = tmp_path / "export.csv"
    write_csv(path, ["536365,85123A,X,6,01/12/2010 08:26,2.55,17850,United Kingdom"])
    with pytest.raises(DataError, match="--date-format"):
        read_transactions(path)
    loaded = read_transactions(path, date_format="%d/%m/%Y %H:%M")
    assert loaded["InvoiceDate"].tolist() == [pd.Timestamp(2010, 12, 1, 8, 26)]
