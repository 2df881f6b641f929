"""The ground truth beside a data file: ``ground_truth.csv``, each product's true revenue-maximising price.

The synthetic generator writes one (``pricing.synthetic``, its columns ``TRUTH_COLUMNS``); a user may place one
beside real data. Training reads two columns, ``StockCode`` and ``optimal_price`` (other columns are kept for
the reports), and needs a row for every product of the cleaned data: the pricing error of each family and the
serving order are computed from it. A file that does not give that is refused with one line naming the file
and what is wrong (``DataError``, so ``train.py`` exits 2 before anything is written), never a traceback later.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from pricing.data import DataError

REQUIRED = ("StockCode", "optimal_price")
_SHOWN = 3  # examples quoted in a message
_REMEDY = "fix it, or move it away to train without a ground truth"


def read_ground_truth(path: Path, products: Iterable[str]) -> pd.DataFrame:
    """``path`` as a ground-truth table (``StockCode`` normalised as the loader does: trimmed, upper case), checked
    to give one positive finite ``optimal_price`` for each of ``products``; ``DataError`` otherwise."""
    truth = _read(path)
    missing = [column for column in REQUIRED if column not in truth.columns]
    if missing:
        raise _refused(path, f"no {' or '.join(missing)} column (its columns: {_sample(list(truth.columns))})")
    codes = truth["StockCode"].astype("string").str.strip().str.upper()
    if codes.isna().any() or codes.eq("").any():
        raise _refused(path, f"{int(codes.isna().sum() + codes.eq('').sum()):,} rows have no StockCode")
    repeated = codes[codes.duplicated()].unique().tolist()
    if repeated:
        raise _refused(path, f"StockCode appears more than once: {_sample(repeated)}")
    prices = pd.to_numeric(truth["optimal_price"], errors="coerce")
    bad = truth.loc[~(np.isfinite(prices) & (prices > 0)), "optimal_price"]
    if len(bad):
        raise _refused(path, f"optimal_price: {len(bad):,} values are not positive prices, e.g. {_sample(list(bad))}")
    absent = sorted(set(products) - set(codes))
    if absent:
        raise _refused(path, f"no row for {len(absent):,} of the data's products, e.g. {_sample(absent)}")
    return truth.assign(StockCode=codes.astype(str), optimal_price=prices.astype(np.float64))


def _read(path: Path) -> pd.DataFrame:
    try:
        # Values as written (no "n/a" read as missing), so that a message quotes them.
        frame = pd.read_csv(path, dtype={"StockCode": str}, skipinitialspace=True, keep_default_na=False)
        return frame.rename(columns=str.strip)
    except pd.errors.EmptyDataError:
        raise _refused(path, "it is empty") from None
    except UnicodeDecodeError as exc:
        raise _refused(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, ValueError) as exc:  # pandas' ParserError is a ValueError
        raise _refused(path, f"not a readable CSV file ({' '.join(str(exc).split())[:160]})") from None


def _refused(path: Path, reason: str) -> DataError:
    return DataError(f"ground truth {path}: {reason}; {_REMEDY}")


def _sample(values: list) -> str:
    shown = [value if not isinstance(value, str) or len(value) <= 40 else value[:37] + "..." for value in values]
    return repr(shown[:_SHOWN])[:-1] + (", ...]" if len(values) > _SHOWN else "]")
