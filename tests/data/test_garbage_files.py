"""Files that are not usable transactions: each gives a one-line DataError that says what is wrong, and a real
``train.py`` run on them exits 2 with that line, writing nothing into the model store or the data and reports
folders. Files that look odd but are fine (UTF-8 with a byte-order mark, UTF-16, semicolons) load."""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest

from pricing.config import BUDGETS, TrainConfig
from pricing.data import DataError, read_transactions
from pricing.training import MIN_PERIODS, run_training
from tests.support import ROOT
from train import parse_args

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
TRAIN_TIMEOUT_S = 180


def csv_text(
    weeks: int = 10, products: int = 3, price_change: bool = True, separator: str = ",", days: tuple = (0, 2, 4)
) -> str:
    """A valid transactions CSV: each product sold on ``days`` of each of ``weeks`` weeks; with ``price_change``
    the first product's price rises halfway (descriptions hold quotes and commas, as the real file's do)."""
    lines = [HEADER.replace(",", separator)]
    start = pd.Timestamp("2011-01-03 09:00")
    invoice = 540_000
    for week in range(weeks):
        for day in days:
            date = start + pd.Timedelta(weeks=week, days=day)
            for p in range(products):
                invoice += 1
                price = 2.55 * (1.2 if price_change and p == 0 and week >= weeks // 2 else 1.0) + p
                description = f'"MUG, {p} ""RED"""' if separator == "," else f"MUG {p}"
                fields = [str(invoice), f"8512{p}A", description, str(6 + (week + p) % 5), f"{date:%Y-%m-%d %H:%M}",
                          f"{price:.2f}", "17850", "United Kingdom"]  # fmt: skip
                lines.append(separator.join(fields))
    return "\n".join(lines) + "\n"


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def assert_refused(path: Path, *fragments: str) -> str:
    """The loader raises DataError whose one-line message holds every fragment; returns the message."""
    with pytest.raises(DataError) as caught:
        read_transactions(path)
    message = str(caught.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---------------------------------------------------------------------------------------------------
# Files the loader refuses


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t"], ids=["zero_bytes", "whitespace"])
def test_an_empty_file_is_refused(tmp_path, content) -> None:
    assert_refused(write(tmp_path / "t.csv", content), "t.csv is empty")


@pytest.mark.parametrize("suffix", [".xlsx", ".parquet"])
def test_an_empty_binary_file_is_refused(tmp_path, suffix) -> None:
    assert_refused(write(tmp_path / f"t{suffix}", b""), "is empty")


def test_a_header_only_file_is_refused(tmp_path) -> None:
    assert_refused(write(tmp_path / "t.csv", HEADER + "\n"), "t.csv: no transactions, only a header")


def test_a_file_cut_in_the_middle_of_a_line_is_refused(tmp_path) -> None:
    text = csv_text(weeks=2)
    cut = text[: text.index("\n", len(text) // 2) + 10]  # 10 characters into a line: the invoice and a bit
    assert_refused(write(tmp_path / "t.csv", cut), "is cut short: its last line (", "fields without a line end")


def test_a_file_cut_inside_a_quoted_field_is_refused(tmp_path) -> None:
    text = csv_text(weeks=2)
    cut = text[: text.rindex('"MUG') + 5]
    assert_refused(write(tmp_path / "t.csv", cut), "is not a well-formed CSV file", "cut short")


def test_a_complete_file_without_a_final_line_end_loads(tmp_path) -> None:
    loaded = read_transactions(write(tmp_path / "t.csv", csv_text(weeks=1).rstrip("\n")))
    assert len(loaded) == 9


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".csv.gz", gzip.compress), (".csv.xz", lzma.compress), (".csv.bz2", bz2.compress)],
)
def test_a_cut_compressed_stream_is_refused(tmp_path, suffix, compress) -> None:
    whole = compress(csv_text(weeks=30).encode())
    path = write(tmp_path / f"t{suffix}", whole[: len(whole) // 2])
    assert_refused(path, "cannot be decompressed", "the file is cut short or damaged")


def test_a_cut_zip_is_refused(tmp_path) -> None:
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("t.csv", csv_text(weeks=30))
    write(path, path.read_bytes()[:-200])  # the central directory is at the end
    assert_refused(path, "cannot be decompressed")


def test_a_zip_of_several_files_is_refused_naming_them(tmp_path) -> None:
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("2010.csv", csv_text())
        archive.writestr("2011.csv", csv_text())
        archive.writestr("__MACOSX/._2010.csv", b"\x00\x05")
    assert_refused(path, "holds 2 files ['2010.csv', '2011.csv']; expected exactly one CSV file")


def test_a_zip_of_one_csv_loads_ignoring_macos_resource_forks(tmp_path) -> None:
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Online Retail.csv", csv_text(weeks=1))
        archive.writestr("__MACOSX/._Online Retail.csv", b"\x00\x05")
    assert len(read_transactions(path)) == 9


def test_binary_junk_is_refused(tmp_path) -> None:
    junk = np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    assert_refused(write(tmp_path / "t.csv", junk), "is not CSV text")


def test_utf16_without_a_byte_order_mark_is_refused(tmp_path) -> None:
    path = write(tmp_path / "t.csv", csv_text().encode("utf-16-le"))
    assert_refused(path, "NUL byte at byte 1", "UTF-16 without a byte-order mark")


def test_an_excel_workbook_named_csv_is_refused_saying_what_it_is(tmp_path) -> None:
    path = tmp_path / "t.csv"
    pd.read_csv(write(tmp_path / "src.csv", csv_text())).to_excel(path.with_suffix(".xlsx"), index=False)
    path.with_suffix(".xlsx").rename(path)
    assert_refused(path, "is not CSV text: it is a ZIP archive or Excel workbook (name it .zip or .xlsx)")


def test_a_csv_named_xlsx_or_parquet_is_refused(tmp_path) -> None:
    assert_refused(write(tmp_path / "t.xlsx", csv_text()), "cannot be read as an Excel workbook")
    assert_refused(write(tmp_path / "t.parquet", csv_text()), "cannot be read as a Parquet file")


def test_a_cut_parquet_file_is_refused(tmp_path) -> None:
    path = tmp_path / "t.parquet"
    pd.read_csv(write(tmp_path / "src.csv", csv_text())).to_parquet(path)
    write(path, path.read_bytes()[:-100])
    assert_refused(path, "cannot be read as a Parquet file", "cut short, damaged or another format")


def test_a_file_of_another_schema_is_refused_naming_what_it_has(tmp_path) -> None:
    iris = "sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa\n"
    assert_refused(
        write(tmp_path / "iris.csv", iris),
        "missing required column(s) ['InvoiceNo', 'StockCode', 'Description', 'Quantity', 'InvoiceDate', "
        "'UnitPrice', 'CustomerID', 'Country']; found columns ['sepal_length',",
    )


def test_a_one_line_file_of_another_kind_is_named_as_another_schema_not_as_empty(tmp_path) -> None:
    assert_refused(
        write(tmp_path / "t.csv", "<html><head><title>404 Not Found</title></head></html>\n"),
        "t.csv: missing required column(s)",
        "found columns ['<html><head><title>404 Not Found</tit...']",  # long names shortened
    )


def test_a_row_with_extra_fields_is_refused_naming_its_line(tmp_path) -> None:
    lines = csv_text(weeks=1).splitlines()
    lines[3] += ",surplus"
    assert_refused(write(tmp_path / "t.csv", "\n".join(lines) + "\n"), "Expected 8 fields in line 4, saw 9")


def test_long_bad_values_are_shortened_in_the_message(tmp_path) -> None:
    lines = csv_text(weeks=1, separator=";").splitlines()
    fields = lines[1].split(";")
    fields[3] = "x" * 100_000  # Quantity
    lines[1] = ";".join(fields)
    message = assert_refused(write(tmp_path / "t.csv", "\n".join(lines) + "\n"), "Quantity: 1 value cannot be parsed")
    assert len(message) < 300


def test_out_of_range_quantities_are_refused_not_overflowed(tmp_path) -> None:
    text = csv_text(weeks=1).replace(",6,", ",1e30,", 1).replace(",7,", ",-12345678901234567890,", 1)
    assert_refused(write(tmp_path / "t.csv", text), "Quantity: 2 values cannot be parsed as integers")


# ---------------------------------------------------------------------------------------------------
# Files that look odd but load


def test_utf8_with_a_byte_order_mark_loads(tmp_path) -> None:
    loaded = read_transactions(write(tmp_path / "t.csv", codecs.BOM_UTF8 + csv_text().encode()))
    assert loaded.columns[0] == "InvoiceNo" and len(loaded) == 90


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_with_a_byte_order_mark_loads_as_excel_unicode_text(tmp_path, encoding) -> None:
    text = csv_text(separator="\t").replace("United Kingdom", "Österreich")
    data = codecs.BOM_UTF16_BE + text.encode(encoding) if encoding == "utf-16-be" else text.encode(encoding)
    loaded = read_transactions(write(tmp_path / "t.csv", data))
    assert len(loaded) == 90 and set(loaded["Country"]) == {"Österreich"}


def test_semicolon_separated_export_loads(tmp_path) -> None:
    loaded = read_transactions(write(tmp_path / "t.csv", csv_text(separator=";")))
    pd.testing.assert_frame_equal(loaded.drop(columns="Description"), read_transactions(
        write(tmp_path / "c.csv", csv_text())).drop(columns="Description"))  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Files that load but cannot be trained on: refused before anything is written


def quiet_after(text: str, weeks: int) -> str:
    """``text`` (from ``csv_text``) keeping only the Monday sales after its first ``weeks`` weeks."""
    header, *lines = text.splitlines()
    start = pd.Timestamp(lines[0].split(",")[-4]).normalize()

    def kept(line: str) -> bool:
        day = (pd.Timestamp(line.split(",")[-4]) - start).days
        return day < 7 * weeks or day % 7 == 0

    return "\n".join([header, *filter(kept, lines)]) + "\n"


def train_config(tmp_path: Path, data: Path) -> TrainConfig:
    return TrainConfig(
        budget=BUDGETS["smoke"],
        data_path=data,
        families=("elasticnet",),
        data_dir=tmp_path / "out" / "data",
        reports_dir=tmp_path / "out" / "reports",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            csv_text().replace("\n540", "\nC540"),
            "no sales left to train on: cleaning dropped all 90 rows (cancellation 90)",
        ),
        (
            csv_text().replace(",17850,", ",,"),
            "no registered customers to train on: none of the 90 sales has a CustomerID",
        ),
        (
            csv_text(weeks=MIN_PERIODS - 1),
            f"too few weeks to train on: the sales fall in {MIN_PERIODS - 1} weeks (2011-01-03 to 2011-02-14); "
            f"at least {MIN_PERIODS} are needed",
        ),
        (
            csv_text(price_change=False),
            "too little price variation to train on: none of the 3 wholesale price lists changed its posted price "
            "over the 10 weeks",
        ),
        (
            csv_text(days=(0, 3)),
            "too few orders to train on: no price list averages 3 orders a week in the training weeks (the most: 2.0)",
        ),
        # Busy enough in the six training weeks, not over all ten: the serving fit could not pool (it gave NaN).
        (
            quiet_after(csv_text(), weeks=6),
            "too few orders to train on: no price list averages 3 orders a week over all 10 weeks (the most: 2.2)",
        ),
    ],
    ids=[
        "all_cleaned_away",
        "no_customer_ids",
        "too_few_weeks",
        "no_price_change",
        "too_few_orders",
        "too_few_orders_over_all_weeks",
    ],
)
def test_data_too_small_to_train_on_is_refused_before_anything_is_written(tmp_path, text, message) -> None:
    stored = {str(m.tag) for m in bentoml.models.list()}
    with pytest.raises(DataError) as caught:
        run_training(train_config(tmp_path, write(tmp_path / "t.csv", text)))
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert {str(m.tag) for m in bentoml.models.list()} == stored


# ---------------------------------------------------------------------------------------------------
# The real train.py


def run_train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``train.py`` in its own process, with an empty BentoML home and output folders under tmp_path."""
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "1"}
    command = [sys.executable, "train.py", "--budget", "smoke", "--families", "elasticnet",
               "--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports"), *args]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S)


def cut_xz(tmp_path: Path) -> Path:
    whole = lzma.compress(csv_text(weeks=30).encode())
    return write(tmp_path / "t.csv.xz", whole[: len(whole) // 2])


def ambiguous_dates(tmp_path: Path) -> Path:
    """Slash dates day first whose days never exceed 12 (the sales of days 13 and later left out)."""
    header, *lines = csv_text(weeks=10).splitlines()
    kept = [line for line in lines if pd.Timestamp(line.split(",")[-4]).day <= 12]
    text = "\n".join([header, *kept]) + "\n"
    for date in {line.split(",")[-4] for line in kept}:
        text = text.replace(date, f"{pd.Timestamp(date):%d/%m/%Y %H:%M}")
    return write(tmp_path / "t.csv", text)


def damaged_truth(tmp_path: Path) -> Path:
    """Good transactions beside a ground_truth.csv cut short inside a quoted field."""
    write(tmp_path / "ground_truth.csv", 'StockCode,Description,optimal_price\n85120A,"MUG, RED,3.1\n')
    return write(tmp_path / "t.csv", csv_text())


def partial_truth(tmp_path: Path) -> Path:
    """Good transactions beside a ground_truth.csv that lacks two of their three products."""
    write(tmp_path / "ground_truth.csv", "StockCode,optimal_price\n85120A,3.1\n")
    return write(tmp_path / "t.csv", csv_text())


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (cut_xz, [], "cannot be decompressed"),
        (damaged_truth, [], "ground_truth.csv: not a readable CSV file (Error tokenizing data."),
        (partial_truth, [], "ground_truth.csv: no row for 2 of the data's products, e.g. ['85121A', '85122A']"),
        (ambiguous_dates, [], "--date-format '%d/%m/%Y %H:%M' (day first) or '%m/%d/%Y %H:%M' (month first)"),
        # The option reaches the loader: the dates are read, and the six weeks they fall in are too few.
        (
            ambiguous_dates,
            ["--date-format", "%d/%m/%Y %H:%M"],
            "too few weeks to train on: the sales fall in 6 weeks (2011-01-03 to 2011-03-07)",
        ),
    ],
    ids=["cut_xz", "damaged_truth", "partial_truth", "ambiguous_dates", "ambiguous_dates_with_date_format"],
)
def test_train_py_exits_2_with_one_line_and_writes_nothing(tmp_path, make, options, message) -> None:
    proc = run_train(tmp_path, "--data", str(make(tmp_path)), *options)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and " data error: " in errors[0] and message in errors[0], output
    assert "Traceback" not in output
    for folder in ("data", "reports"):
        assert not (tmp_path / folder).exists(), folder
    models = tmp_path / "bentoml" / "models"
    assert not models.exists() or not any(models.iterdir()), list(models.rglob("*"))


def test_date_format_is_checked_by_the_command_line(tmp_path, capsys) -> None:
    data = write(tmp_path / "t.csv", csv_text())
    assert parse_args(["--data", str(data), "--date-format", "%d/%m/%Y %H:%M"]).date_format == "%d/%m/%Y %H:%M"
    assert parse_args(["--data", str(data)]).date_format is None
    for argv, reason in [
        (["--date-format", "%d/%m/%Y"], "--date-format: applies to --data only"),
        (["--data", str(data), "--date-format", "dd/mm/yyyy"], "--date-format: 'dd/mm/yyyy' has no % directive"),
    ]:
        with pytest.raises(SystemExit) as info:
            parse_args(argv)
        assert info.value.code == 2 and reason in capsys.readouterr().err
