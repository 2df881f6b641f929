"""A ground_truth.csv beside a data file (pricing.truth): a usable one loads, a damaged or ill-formed one gives a
one-line DataError naming the file and what is wrong (train.py's run on such a file is in test_garbage_files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricing.data import DataError
from pricing.truth import read_ground_truth

PRODUCTS = ["85123A", "22423"]
GOOD = "StockCode,Description,optimal_price\n85123A,MUG,3.10\n22423,CAKE STAND,14.5\n"


def refused(tmp_path: Path, content: bytes | str, *fragments: str, products: list[str] = PRODUCTS) -> str:
    path = tmp_path / "ground_truth.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DataError) as caught:
        read_ground_truth(path, products)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"ground truth {path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_usable_file_loads_with_codes_normalised_as_the_loader_does(tmp_path) -> None:
    path = tmp_path / "ground_truth.csv"
    path.write_text(" StockCode , optimal_price,extra\n 85123a ,3.10,x\n22423,14.5,y\n")
    truth = read_ground_truth(path, PRODUCTS)
    assert truth.set_index("StockCode")["optimal_price"].to_dict() == {"85123A": 3.10, "22423": 14.5}
    assert list(truth.columns) == ["StockCode", "optimal_price", "extra"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "it is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "not UTF-8 text"),
        (GOOD + '85124B,"MUG, BLUE,4.0\n', "not a readable CSV file"),
        (GOOD.replace("optimal_price", "best_price"), "no optimal_price column (its columns: ['StockCode', "),
        ("code,price\n85123A,3\n", "no StockCode or optimal_price column"),
        (GOOD + ",MUG,2.0\n", "1 rows have no StockCode"),
        (GOOD + "85123a,MUG,3.3\n", "StockCode appears more than once: ['85123A']"),
        (GOOD.replace("14.5", "n/a"), "optimal_price: 1 values are not positive prices, e.g. ['n/a']"),
        (GOOD.replace("14.5", "-1"), "not positive prices"),
        (GOOD.replace("14.5", "inf"), "not positive prices"),
        (GOOD.replace("14.5", ""), "1 values are not positive prices, e.g. ['']"),
    ],
    ids=[
        "empty",
        "binary",
        "cut_quote",
        "no_price_column",
        "other_schema",
        "blank_code",
        "repeated_code",
        "price_not_a_number",
        "negative_price",
        "infinite_price",
        "missing_price",
    ],
)
def test_a_damaged_or_ill_formed_file_is_refused_in_one_line(tmp_path, content, fragment) -> None:
    message = refused(tmp_path, content, fragment)
    assert message.endswith("fix it, or move it away to train without a ground truth")


def test_a_file_that_misses_products_of_the_data_names_them(tmp_path) -> None:
    refused(tmp_path, GOOD, "no row for 2 of the data's products, e.g. ['10002', '84879']",
            products=[*PRODUCTS, "84879", "10002"])  # fmt: skip


def test_a_directory_in_its_place_is_refused(tmp_path) -> None:
    (tmp_path / "ground_truth.csv").mkdir()
    with pytest.raises(DataError, match="not a readable CSV file"):
        read_ground_truth(tmp_path / "ground_truth.csv", PRODUCTS)
