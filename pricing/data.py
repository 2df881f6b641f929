"""Load, validate and clean transactions in the UCI "Online Retail" schema.

One row is one invoice line:

    InvoiceNo    str       6 digits; a leading "C" marks a cancellation
    StockCode    str       product code (5 digits plus optional letters, e.g. 85123A) or a
                           non-product code such as POST, M, DOT, BANK CHARGES
    Description  str       "" when missing
    Quantity     int64     negative for cancellations
    InvoiceDate  datetime64[ns]
    UnitPrice    float64   GBP, can be 0
    CustomerID   float64   NaN when missing (about 25% of the real file)
    Country      str

`read_transactions` reads CSV (also compressed: .csv.gz, .csv.xz, .csv.bz2, .zip), Excel or Parquet, and
`validate_transactions` maps tolerant column
names (and the "Online Retail II" aliases Invoice, Price, Customer ID) onto this schema, raising
`DataError` for anything it cannot parse. `clean_transactions` then drops, in this order and counting
each row under the first rule that drops it: cancellations, non-product codes, non-positive prices,
non-positive quantities and exact duplicate rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS: tuple[str, ...] = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)

# Every non-product stock code of the 2010-2011 UCI file, upper-cased as validation leaves them.
# fmt: off
NON_PRODUCT_CODES: frozenset[str] = frozenset(
    {
        "AMAZONFEE", "B", "BANK CHARGES", "C2", "CRUK", "D", "DOT", "M", "PADS", "POST", "S",
        "DCGS0003", "DCGS0004", "DCGS0055", "DCGS0057", "DCGS0066P", "DCGS0067", "DCGS0068",
        "DCGS0069", "DCGS0070", "DCGS0071", "DCGS0072", "DCGS0073", "DCGS0074", "DCGS0076",
        "DCGSSBOY", "DCGSSGIRL",
        "GIFT_0001_10", "GIFT_0001_20", "GIFT_0001_30", "GIFT_0001_40", "GIFT_0001_50",
    }
)
# fmt: on

# Keys are column names lower-cased with whitespace and underscores removed.
_COLUMN_ALIASES: dict[str, str] = {
    **{column.lower(): column for column in COLUMNS},
    "invoice": "InvoiceNo",  # Online Retail II
    "price": "UnitPrice",  # Online Retail II
}
_PRODUCT_CODE = r"\d{5}[A-Z]*"
# The UCI CSV writes dates month first without zero padding ("12/1/2010 8:26" is 1 December); UK Excel exports
# write them day first ("01/12/2010 08:26"). A file's slash dates are read the way that fits all of them.
_MONTH_FIRST_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
_DAY_FIRST_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y")
_SAMPLE_SIZE = 5


class DataError(ValueError):
    """Transactions do not fit the schema; the message names the columns and shows bad values."""


class _ColumnError(Exception):
    """One column failed to parse; validate_transactions prefixes the column name."""


def read_transactions(path: str | Path) -> pd.DataFrame:
    """Return the validated transactions stored in a CSV (plain or compressed), .xlsx or .parquet file."""
    path = Path(path)
    name = path.name.lower()
    suffix = next((s for s in sorted(_READERS, key=len, reverse=True) if name.endswith(s)), None)
    if suffix is None:
        raise DataError(f"unsupported file type for {path}; expected one of {', '.join(_READERS)}")
    reader = _READERS[suffix]
    if not path.is_file():
        raise DataError(f"transactions file not found: {path}")
    return validate_transactions(reader(path))


def validate_transactions(df: pd.DataFrame) -> pd.DataFrame:
    """Return a new frame with exactly COLUMNS, in order and with the schema's dtypes.

    Raises DataError naming every missing column, or every column with missing or unparseable values.
    """
    raw = _select_columns(df).reset_index(drop=True)
    parsed: dict[str, pd.Series] = {}
    problems: list[str] = []
    for column, parse in _PARSERS.items():
        try:
            parsed[column] = parse(raw[column])
        except _ColumnError as error:
            problems.append(f"{column}: {error}")
    if problems:
        raise DataError("invalid transactions:\n  " + "\n  ".join(problems))
    validated = pd.DataFrame(parsed, columns=list(COLUMNS))
    validated.index = df.index
    return validated


def is_product_code(codes: pd.Series) -> pd.Series:
    """Return a boolean mask, True where a stock code is a real product (5 digits, optional letters)."""
    # The str dtype answers False (not NaN) for a missing code, so the mask is plain bool.
    return codes.astype(str).str.strip().str.upper().str.fullmatch(_PRODUCT_CODE)


@dataclass(frozen=True)
class CleaningReport:
    """How many rows clean_transactions dropped, per rule in rule order."""

    rows_in: int
    rows_out: int
    dropped: dict[str, int]

    def format(self) -> str:
        """Return a table with one line per rule (rows dropped, % of rows in) and the totals."""
        width = max(len(name) for name in (*self.dropped, "total dropped"))
        lines = [
            f"cleaning: {self.rows_in:,} rows in, {self.rows_out:,} rows out",
            f"  {'rule':<{width}}  {'rows':>10}  {'% of in':>8}",
        ]
        for name, count in (*self.dropped.items(), ("total dropped", self.rows_in - self.rows_out)):
            lines.append(f"  {name:<{width}}  {count:>10,}  {self._percent(count):>7.2f}%")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Return the report as a JSON-serialisable dict with the same fields."""
        return asdict(self)

    def _percent(self, count: int) -> float:
        return 100.0 * count / self.rows_in if self.rows_in else 0.0


def clean_transactions(df: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Return the transactions that are real, positive, unique sales, sorted by date, and a report
    of how many rows each rule dropped. The input frame is left unchanged."""
    frame = validate_transactions(df).reset_index(drop=True)
    rule_masks = {
        "cancellation": frame["InvoiceNo"].str.startswith(("C", "c")) | (frame["Quantity"] < 0),
        "non_product_code": ~is_product_code(frame["StockCode"]),
        "non_positive_price": frame["UnitPrice"] <= 0,
        "non_positive_quantity": frame["Quantity"] <= 0,
    }
    keep = pd.Series(True, index=frame.index)
    dropped: dict[str, int] = {}
    for name, mask in rule_masks.items():
        dropped[name] = int((mask & keep).sum())
        keep &= ~mask
    # Duplicates are judged among surviving rows, so a row already dropped is not counted twice.
    duplicate = frame[keep].duplicated(keep="first").reindex(frame.index, fill_value=False)
    dropped["duplicate"] = int(duplicate.sum())
    keep &= ~duplicate

    cleaned = frame[keep].sort_values("InvoiceDate", kind="stable").reset_index(drop=True)
    return cleaned, CleaningReport(rows_in=len(frame), rows_out=len(cleaned), dropped=dropped)


def _read_csv(path: Path) -> pd.DataFrame:
    # Read every field as text so validation sees (and reports) the raw values; only empty fields are
    # missing, so a description or country that reads "NA" survives.
    options = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    try:
        return pd.read_csv(path, encoding="utf-8", **options)
    except UnicodeDecodeError:
        # The widely shared CSV export of the UCI file is Latin-1 (its pound signs are not UTF-8).
        return pd.read_csv(path, encoding="latin-1", **options)


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".csv.xz": _read_csv,
    ".csv.bz2": _read_csv,
    ".zip": _read_csv,  # a zip holding one CSV, as the UCI download is
    ".xlsx": pd.read_excel,
    ".parquet": pd.read_parquet,
}


def _select_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Return df's schema columns renamed to their canonical names; DataError if any is missing."""
    sources: dict[str, str] = {}
    for name in df.columns:
        canonical = _COLUMN_ALIASES.get(re.sub(r"[\s_]+", "", str(name)).lower())
        if canonical is None:
            continue
        if canonical in sources:
            raise DataError(f"columns {sources[canonical]!r} and {name!r} both map to {canonical}")
        sources[canonical] = name
    missing = [column for column in COLUMNS if column not in sources]
    if missing:
        raise DataError(f"missing required column(s) {missing}; found columns {[str(c) for c in df.columns]}")
    return df[[sources[column] for column in COLUMNS]].set_axis(list(COLUMNS), axis=1)


def _check(
    raw: pd.Series, *, missing: pd.Series | None = None, bad: pd.Series | None = None, problem: str = ""
) -> None:
    """Raise _ColumnError if any row is missing or bad; bad rows are shown by value, missing by row."""
    messages = []
    if missing is not None and missing.any():
        rows = missing.index[missing][:_SAMPLE_SIZE].tolist()
        messages.append(f"{_count_values(missing)} missing, e.g. at rows {rows}")
    if bad is not None and bad.any():
        sample = raw[bad].drop_duplicates().head(_SAMPLE_SIZE).tolist()
        messages.append(f"{_count_values(bad)} {problem}, e.g. {sample!r}")
    if messages:
        raise _ColumnError("; ".join(messages))


def _count_values(mask: pd.Series) -> str:
    count = int(mask.sum())
    return f"{count} value{'' if count == 1 else 's'}"


def _parse_code(raw: pd.Series) -> pd.Series:
    # Excel stores numeric codes as numbers, which pandas turns into floats when a cell is empty.
    text = raw.astype(str).str.strip().str.replace(r"^(\d+)\.0$", r"\1", regex=True)
    _check(raw, missing=raw.isna() | text.eq(""))
    return text


def _parse_stock_code(raw: pd.Series) -> pd.Series:
    return _parse_code(raw).str.upper()


def _parse_text(raw: pd.Series, fill: str) -> pd.Series:
    return raw.astype(str).fillna(fill)


def _parse_quantity(raw: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce")
    missing = raw.isna()
    not_integer = ~missing & (numbers.isna() | (numbers % 1 != 0))
    _check(raw, missing=missing, bad=not_integer, problem="cannot be parsed as integers")
    return numbers.astype("int64")


def _parse_price(raw: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    missing = raw.isna()
    _check(raw, missing=missing, bad=~missing & ~np.isfinite(numbers), problem="cannot be parsed as numbers")
    return numbers


def _parse_customer_id(raw: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    _check(raw, bad=raw.notna() & numbers.isna(), problem="cannot be parsed as numbers")
    return numbers


def _parse_date(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw
    else:
        dates = pd.to_datetime(raw, format="ISO8601", errors="coerce")
        for date_format in _slash_formats(raw[dates.isna() & raw.notna()]):
            pending = dates.isna() & raw.notna()
            if not pending.any():
                break
            dates = dates.fillna(pd.to_datetime(raw[pending], format=date_format, errors="coerce"))
    missing = raw.isna()
    _check(raw, missing=missing, bad=~missing & dates.isna(), problem="cannot be parsed as dates")
    return dates.astype("datetime64[ns]")


def _slash_formats(raw: pd.Series) -> tuple[str, ...]:
    """Month-first formats unless some slash date only makes sense day first (a first field above 12)."""
    fields = raw.astype(str).str.extract(r"^\s*(\d{1,2})/(\d{1,2})/")
    first = pd.to_numeric(fields[0], errors="coerce")
    second = pd.to_numeric(fields[1], errors="coerce")
    if (first > 12).any() and not (second > 12).any():
        return _DAY_FIRST_FORMATS
    return _MONTH_FIRST_FORMATS


_PARSERS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "InvoiceNo": _parse_code,
    "StockCode": _parse_stock_code,
    "Description": lambda raw: _parse_text(raw, fill=""),
    "Quantity": _parse_quantity,
    "InvoiceDate": _parse_date,
    "UnitPrice": _parse_price,
    "CustomerID": _parse_customer_id,
    # "Unspecified" is the UCI file's own label for an unknown country.
    "Country": lambda raw: _parse_text(raw, fill="Unspecified"),
}
