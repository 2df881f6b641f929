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
`validate_transactions` maps tolerant column names (and the "Online Retail II" aliases Invoice, Price,
Customer ID) onto this schema. Anything that is not such a file raises `DataError` with a one-line message
saying what is wrong, never another exception: an empty or header-only file, a compressed stream or a CSV
cut short, binary data, another schema, unparseable values (the column is named and bad values shown).

Text files are read as UTF-8 (with or without a byte-order mark), UTF-16 or UTF-32 with a byte-order mark, or
else Latin-1 (the widely shared "E-Commerce Data" copy of the UCI file is ISO-8859-1); the field separator is a
comma unless the header line has none and has semicolons, tabs or bars instead.

Dates: ISO dates (``2010-12-01 08:26:00``; a UTC offset is converted to UTC), native Excel or Parquet
datetimes, and slash dates whose order the whole column decides: day first when some first field exceeds 12
(UK Excel exports, ``13/01/2011 08:08``), month first when some second field does (the UCI CSV,
``12/13/2010 10:00``). A column where both happen, or where no field ever exceeds 12 so that both orders
read differently, is refused: the caller passes an explicit ``date_format`` (``train.py --date-format``).

`clean_transactions` then drops, in this order and counting each row under the first rule that drops it:
cancellations, non-product codes, non-positive prices, non-positive quantities and exact duplicate rows.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import re
import zipfile
import zlib
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
# write them day first ("01/12/2010 08:26"). The whole column decides which (see the module docstring).
_SLASH_DATE = r"^\s*(\d{1,2})/(\d{1,2})/\d{2,4}(?:\s|$)"
_TIMES = (" %H:%M", " %H:%M:%S", "")
_DATE_ORDERS: dict[str, tuple[str, ...]] = {
    "day first": tuple(f"%d/%m/{year}{time}" for year in ("%Y", "%y") for time in _TIMES),
    "month first": tuple(f"%m/%d/{year}{time}" for year in ("%Y", "%y") for time in _TIMES),
}
# Invoice dates outside these years are typing or export errors (and beyond 2262 do not fit datetime64[ns]).
_FIRST_YEAR, _LAST_YEAR = 1900, 2199
_MAX_INTEGER = 2**53  # the largest integer every float64 on the way represents exactly

# Files that are not CSV text, by their first bytes, and what to call them.
_MAGIC: dict[bytes, str] = {
    b"PK\x03\x04": "a ZIP archive or Excel workbook (name it .zip or .xlsx)",
    b"PAR1": "a Parquet file (name it .parquet)",
    b"\x1f\x8b": "gzip-compressed (name it .csv.gz)",
    b"\xfd7zXZ\x00": "xz-compressed (name it .csv.xz)",
    b"BZh": "bzip2-compressed (name it .csv.bz2)",
    b"\xd0\xcf\x11\xe0": "an old binary Excel workbook (.xls): save it as .xlsx or CSV",
}
_SEPARATORS = (",", ";", "\t", "|")
_SAMPLE_SIZE = 5
_SHOWN_CHARS = 40  # longer values are shortened in messages


class DataError(ValueError):
    """The file or frame is not usable transactions; the one-line message says why (columns, bad values)."""


class _ColumnError(Exception):
    """One column failed to parse; validate_transactions prefixes the column name."""


def read_transactions(path: str | Path, date_format: str | None = None) -> pd.DataFrame:
    """Return the validated transactions stored in a CSV (plain or compressed), .xlsx or .parquet file.

    ``date_format`` (a strftime format such as ``%d/%m/%Y %H:%M``) reads InvoiceDate text with exactly that
    format instead of deciding it from the column. Raises DataError for anything that is not such a file.
    """
    path = Path(path)
    name = path.name.lower()
    suffix = next((s for s in sorted(_READERS, key=len, reverse=True) if name.endswith(s)), None)
    if suffix is None:
        raise DataError(f"unsupported file type for {path}; expected one of {', '.join(_READERS)}")
    if not path.is_file():
        raise DataError(f"transactions file not found: {path}")
    frame = _READERS[suffix](path)
    try:
        _select_columns(frame)  # a file of another schema is named as such, even when it has no rows
        if frame.empty:
            raise DataError("no transactions, only a header")
        return validate_transactions(frame, date_format=date_format)
    except DataError as error:
        raise DataError(f"{path}: {error}") from error


def validate_transactions(df: pd.DataFrame, date_format: str | None = None) -> pd.DataFrame:
    """Return a new frame with exactly COLUMNS, in order and with the schema's dtypes.

    Raises DataError naming every missing column, or every column with missing or unparseable values;
    ``date_format`` as in ``read_transactions``.
    """
    raw = _select_columns(df).reset_index(drop=True)
    parsers = {**_PARSERS, "InvoiceDate": lambda column: _parse_date(column, date_format)}
    parsed: dict[str, pd.Series] = {}
    problems: list[str] = []
    for column, parse in parsers.items():
        try:
            parsed[column] = parse(raw[column])
        except _ColumnError as error:
            problems.append(f"{column}: {error}")
    if problems:
        raise DataError("invalid transactions: " + "; ".join(problems))
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


# ---------------------------------------------------------------------------------------------------
# Readers: each returns the file's frame or raises DataError saying why it cannot


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV file's fields as text, whatever its compression, encoding and separator."""
    data, encoding = _decode(path, _read_bytes(path))
    header = data.partition(b"\n")[0].decode(encoding, errors="replace")
    separator = next((s for s in _SEPARATORS if s in header), ",")  # a comma whenever the header has one
    # Every field is read as text so that validation sees (and reports) the raw values; only empty fields
    # are missing, so a description or country that reads "NA" survives.
    try:
        frame = pd.read_csv(
            io.BytesIO(data), sep=separator, encoding=encoding, dtype=str, keep_default_na=False, na_values=[""]
        )
    except ValueError as error:  # pandas' ParserError and EmptyDataError are ValueErrors
        message = str(error).replace("Error tokenizing data. C error: ", "").strip()
        hint = ": the file looks cut short" if "EOF" in message else ""
        raise DataError(f"{path} is not a well-formed CSV file: {_shorten(message, 200)}{hint}") from error
    _check_last_line(path, data, encoding, separator, len(frame.columns))
    return frame


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed by its suffix; DataError when a compressed stream is cut short or damaged."""
    name = path.name.lower()
    openers: dict[str, Callable] = {".csv.gz": gzip.open, ".csv.xz": lzma.open, ".csv.bz2": bz2.open}
    kind = next((suffix for suffix in (*openers, ".zip") if name.endswith(suffix)), None)
    try:
        if kind is None:
            return path.read_bytes()
        if kind == ".zip":
            return _read_zip_member(path)
        with openers[kind](path) as stream:
            return stream.read()
    # zipfile raises NotImplementedError for a compression method it does not support: a file we cannot read.
    except (OSError, EOFError, lzma.LZMAError, zlib.error, zipfile.BadZipFile, NotImplementedError) as error:
        reason = _shorten(str(error) or type(error).__name__, 120)
        if kind is None:
            raise DataError(f"{path} cannot be read ({reason})") from error
        raise DataError(f"{path} cannot be decompressed ({reason}): the file is cut short or damaged") from error


def _read_zip_member(path: Path) -> bytes:
    """The one file a .zip holds (macOS resource forks aside), as the UCI download is."""
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(members) != 1:
            names = [m.filename for m in members][:_SAMPLE_SIZE]
            raise DataError(f"{path} holds {_count(len(members), 'file')} {names}; expected exactly one CSV file")
        if members[0].flag_bits & 0x1:
            raise DataError(f"{path} is encrypted; unpack it first")
        return archive.read(members[0])


def _decode(path: Path, data: bytes) -> tuple[bytes, str]:
    """The bytes pandas should read and their encoding: UTF-8, UTF-16 or UTF-32 with a byte-order mark, or
    Latin-1."""
    if not data or data.isspace():
        raise DataError(f"{path} is empty")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    else:
        boms = {
            "UTF-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE),
            "UTF-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
        }
        for name, marks in boms.items():  # UTF-32 first: its little-endian mark starts like UTF-16's
            if data.startswith(marks):
                try:
                    return data.decode(name).encode("utf-8"), "utf-8"
                except UnicodeDecodeError as error:
                    raise DataError(f"{path} is {name} text that cannot be decoded at byte {error.start}") from error
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise DataError(f"{path} is not CSV text: it is {what}")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(
            f"{path} is not CSV text: it has a NUL byte at byte {nul} (binary data, or UTF-16 without a "
            "byte-order mark: save it as UTF-8 CSV)"
        )
    if data.isascii():
        return data, "utf-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data, "latin-1"  # the widely shared "E-Commerce Data" copy of the UCI file is ISO-8859-1
    return data, "utf-8"


def _check_last_line(path: Path, data: bytes, encoding: str, separator: str, columns: int) -> None:
    """DataError when the file stops in the middle of its last line: no line end and fewer fields than the header.

    (A file cut inside its last field, after the last separator, cannot be told from a complete one.)"""
    if data.endswith((b"\n", b"\r")):
        return
    start = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
    fields = next(csv.reader([data[start:].decode(encoding, errors="replace")], delimiter=separator), [])
    if len(fields) < columns:
        line = len(data[:start].splitlines()) + 1
        raise DataError(
            f"{path} is cut short: its last line ({line:,}) ends after {len(fields)} of {columns} fields "
            "without a line end"
        )


def _read_excel(path: Path) -> pd.DataFrame:
    """The first sheet of an .xlsx workbook."""
    return _read_binary(path, "an Excel workbook", pd.read_excel)


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file's table."""
    return _read_binary(path, "a Parquet file", pd.read_parquet)


def _read_binary(path: Path, what: str, read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty")
    try:
        return read(path)
    except MemoryError:
        raise
    except Exception as error:  # openpyxl and pyarrow raise many types for damaged files; all mean the same
        reason = _shorten(str(error) or type(error).__name__, 160)
        raise DataError(f"{path} cannot be read as {what} ({reason}): cut short, damaged or another format") from error


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".csv.xz": _read_csv,
    ".csv.bz2": _read_csv,
    ".zip": _read_csv,  # a zip holding one CSV, as the UCI download is
    ".xlsx": _read_excel,
    ".parquet": _read_parquet,
}


# ---------------------------------------------------------------------------------------------------
# Columns and their parsers


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
        found = _sample([str(c) for c in df.columns], limit=12)
        raise DataError(f"missing required column(s) {missing}; found columns {found}")
    return df[[sources[column] for column in COLUMNS]].set_axis(list(COLUMNS), axis=1)


def _check(raw: pd.Series, *, missing: pd.Series | None = None, bad: dict[str, pd.Series] | None = None) -> None:
    """Raise _ColumnError if any row is missing or bad (``bad``: problem -> mask); bad rows are shown by value,
    missing ones by row."""
    messages = []
    if missing is not None and missing.any():
        rows = missing.index[missing][:_SAMPLE_SIZE].tolist()
        messages.append(f"{_count_values(missing)} missing, e.g. at rows {rows}")
    for problem, mask in (bad or {}).items():
        if mask.any():
            sample = _sample(raw[mask].drop_duplicates().head(_SAMPLE_SIZE).tolist())
            messages.append(f"{_count_values(mask)} {problem}, e.g. {sample}")
    if messages:
        raise _ColumnError(" and ".join(messages))


def _count_values(mask: pd.Series) -> str:
    return _count(int(mask.sum()), "value")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _shorten(text: str, limit: int = _SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sample(values: list, limit: int = _SAMPLE_SIZE) -> str:
    """A list's repr with long text shortened and at most ``limit`` items, for one-line messages."""
    shown = [_shorten(v) if isinstance(v, str) else v for v in values[:limit]]
    return repr(shown)[:-1] + (", ...]" if len(values) > limit else "]")


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
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    missing = raw.isna()
    integer = (numbers % 1 == 0) & (numbers.abs() < _MAX_INTEGER)
    _check(raw, missing=missing, bad={"cannot be parsed as integers": ~missing & ~integer})
    return numbers.astype("int64")


def _parse_price(raw: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    missing = raw.isna()
    _check(raw, missing=missing, bad={"cannot be parsed as numbers": ~missing & ~np.isfinite(numbers)})
    return numbers


def _parse_customer_id(raw: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    _check(raw, bad={"cannot be parsed as numbers": raw.notna() & ~np.isfinite(numbers)})
    return numbers


def _parse_date(raw: pd.Series, date_format: str | None = None) -> pd.Series:
    """Datetimes of a date column: native datetimes as they are, text with ``date_format`` or as the module
    docstring says. Text is parsed once per distinct value (the UCI file has 23k among 540k rows)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw.dt.tz_localize(None) if isinstance(raw.dtype, pd.DatetimeTZDtype) else raw
    else:
        codes, uniques = pd.factorize(raw)
        parsed = _parse_date_values(pd.Series(uniques, dtype=object).astype(str), date_format)
        # Code -1 (a missing value) picks the NaT appended at the end.
        values = np.append(parsed.to_numpy(dtype="datetime64[us]"), np.datetime64("NaT", "us"))
        dates = pd.Series(values[codes], index=raw.index)
    missing = raw.isna()
    in_range = (dates.dt.year >= _FIRST_YEAR) & (dates.dt.year <= _LAST_YEAR)
    _check(
        raw,
        missing=missing,
        bad={
            "cannot be parsed as dates": ~missing & dates.isna(),
            f"are dates outside the years {_FIRST_YEAR}-{_LAST_YEAR}": dates.notna() & ~in_range,
        },
    )
    return dates.astype("datetime64[ns]")


def _parse_date_values(values: pd.Series, date_format: str | None) -> pd.Series:
    """NaT where a distinct date text does not parse; _ColumnError when the slash dates' order is unclear."""
    if date_format is not None:
        try:
            return _to_datetime(values, date_format)
        except ValueError as error:
            raise _ColumnError(f"date format {date_format!r} is not valid: {error}") from error
    dates = _to_datetime(values, "ISO8601")
    pending = dates.isna()
    if pending.any():
        for slash_format in _DATE_ORDERS[_slash_order(values[pending])]:
            dates = dates.fillna(_to_datetime(values[pending], slash_format))
            pending = dates.isna()
            if not pending.any():
                break
    return dates


def _to_datetime(values: pd.Series, date_format: str) -> pd.Series:
    """Naive datetimes in microseconds (every year 1-9999 fits; _parse_date reports the implausible ones), NaT
    where a value does not parse. Raises only for a bad format. A UTC offset is converted to UTC."""
    dates = pd.to_datetime(values, format=date_format, errors="coerce", utc=True)
    return dates.dt.tz_localize(None).astype("datetime64[us]")


def _slash_order(values: pd.Series) -> str:
    """``day first`` or ``month first``, from every slash date of the column (see the module docstring)."""
    fields = values.str.extract(_SLASH_DATE)
    first, second = pd.to_numeric(fields[0]), pd.to_numeric(fields[1])
    day_first = values[(first > 12) & (second <= 12)]
    month_first = values[(second > 12) & (first <= 12)]
    if len(day_first) and len(month_first):
        raise _ColumnError(
            f"the slash dates mix day-first ({_shorten(day_first.iloc[0])!r}) and month-first "
            f"({_shorten(month_first.iloc[0])!r}) orders, so no one order reads them all; fix the export, or "
            "pass --date-format with the order most rows have to see the rows that do not fit"
        )
    if len(day_first):
        return "day first"
    if len(month_first):
        return "month first"
    ambiguous = values[(first != second) & (first <= 12) & (second <= 12)]
    if len(ambiguous):
        example = ambiguous.iloc[0]
        day, month = (_matching_format(example, _DATE_ORDERS[order]) for order in ("day first", "month first"))
        raise _ColumnError(
            f"no slash date has a field above 12, so {_shorten(example)!r} and the others read day first or "
            f"month first; pass --date-format {day!r} (day first) or {month!r} (month first)"
        )
    return "month first"  # no slash dates, or each reads the same either way (e.g. 1/1/2011)


def _matching_format(value: str, formats: tuple[str, ...]) -> str:
    """The first of ``formats`` that parses ``value`` (the first one when none does)."""
    for date_format in formats:
        if _to_datetime(pd.Series([value]), date_format).notna().all():
            return date_format
    return formats[0]


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
