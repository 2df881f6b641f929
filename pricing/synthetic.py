"""Synthetic transactions in the UCI "Online Retail" schema, with a known revenue-maximising price.

The real file cannot be downloaded here, so this generator stands in for it. It aims to be as messy as
the original and honest about what makes pricing hard, so that recovering its ground truth means
something.

Demand. Each line's quantity follows

    log q = a_i + b_i * (1 - p / P_i) + season_i(t) + country + customer + noise,  noise ~ N(0, 0.55)

for product i with value price P_i. Revenue p * exp(-b_i * p / P_i) peaks at p* = P_i / b_i, the true
optimum written to ``ground_truth.csv``. The optimum's ratio to P_i drifts with the price tier (cheap
goods are less price-sensitive) plus an idiosyncratic part, so the models must learn per-product slopes.

Prices. The observed price is P_i times a list-price factor times a promotion discount, rounded to pence.
List-price reviews mostly happen in January and February (low season) and promotions are three times
as frequent from mid-October (high season). Price therefore correlates with season: a model that cannot
tell the two apart overstates how much demand rises when the price falls and finds the wrong optimum.
Calendar features let the models separate them.

Messiness, at roughly the original's rates: ~2% cancellation lines (``C`` invoices, negative
quantities), a few non-product codes (POST, DOT, M, BANK CHARGES, ...), zero prices, stock adjustments
with negative quantities, ~1% exact duplicate lines, ~25% missing CustomerID, ~38 countries with the UK
around 90% of lines, no invoices on Saturdays, long-tailed product popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricing.data import COLUMNS

START, END = "2010-12-01", "2011-12-09"
NOISE_SD = 0.55

# The best sellers of the real file keep their codes, so examples written for it work here too.
TOP_PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.95),
    ("22423", "REGENCY CAKESTAND 3 TIER", 12.75),
    ("85099B", "JUMBO BAG RED RETROSPOT", 2.08),
    ("47566", "PARTY BUNTING", 4.95),
    ("20725", "LUNCH BAG RED RETROSPOT", 1.65),
    ("84879", "ASSORTED COLOUR BIRD ORNAMENT", 1.69),
    ("22720", "SET OF 3 CAKE TINS PANTRY DESIGN", 4.95),
    ("21212", "PACK OF 72 RETROSPOT CAKE CASES", 0.55),
    ("22197", "SMALL POPCORN HOLDER", 0.85),
    ("23203", "JUMBO BAG DOILEY PATTERNS", 2.08),
)

COUNTRIES: tuple[str, ...] = (
    "Germany",
    "France",
    "EIRE",
    "Spain",
    "Netherlands",
    "Belgium",
    "Switzerland",
    "Portugal",
    "Australia",
    "Norway",
    "Italy",
    "Channel Islands",
    "Finland",
    "Cyprus",
    "Sweden",
    "Austria",
    "Denmark",
    "Japan",
    "Poland",
    "Israel",
    "USA",
    "Hong Kong",
    "Singapore",
    "Iceland",
    "Canada",
    "Greece",
    "Malta",
    "United Arab Emirates",
    "European Community",
    "RSA",
    "Lebanon",
    "Lithuania",
    "Brazil",
    "Czech Republic",
    "Bahrain",
    "Saudi Arabia",
    "Unspecified",
)

NON_PRODUCT_LINES: tuple[tuple[str, str, float, float], ...] = (
    # code, description, typical price, share among non-product lines
    ("POST", "POSTAGE", 18.0, 0.55),
    ("DOT", "DOTCOM POSTAGE", 120.0, 0.15),
    ("M", "Manual", 2.5, 0.15),
    ("C2", "CARRIAGE", 50.0, 0.05),
    ("BANK CHARGES", "Bank Charges", 15.0, 0.04),
    ("CRUK", "CRUK Commission", 10.0, 0.02),
    ("PADS", "PADS TO MATCH ALL CUSHIONS", 0.001, 0.02),
    ("AMAZONFEE", "AMAZON FEE", 5000.0, 0.02),
)

_WORDS_ADJ = (
    "SMALL",
    "LARGE",
    "JUMBO",
    "MINI",
    "VINTAGE",
    "RETRO",
    "SET OF 3",
    "PACK OF 12",
    "ANTIQUE",
    "WOODEN",
    "GLASS",
    "CERAMIC",
    "PAPER",
    "HANGING",
    "FELT",
    "ENAMEL",
    "REGENCY",
    "PARTY",
)
_WORDS_COLOUR = (
    "RED",
    "PINK",
    "BLUE",
    "WHITE",
    "IVORY",
    "GREEN",
    "SILVER",
    "GOLD",
    "RETROSPOT",
    "POLKADOT",
    "FLORAL",
    "PAISLEY",
    "STRIPE",
    "SPOTTY",
    "CREAM",
    "BLACK",
)
_WORDS_NOUN = (
    "HEART",
    "BAG",
    "MUG",
    "CANDLE HOLDER",
    "CAKE CASES",
    "NAPKINS",
    "LANTERN",
    "BUNTING",
    "DOORMAT",
    "TEA SET",
    "NOTEBOOK",
    "ORNAMENT",
    "CUSHION COVER",
    "LUNCH BOX",
    "BOTTLE",
    "CLOCK",
    "PHOTO FRAME",
    "STICKERS",
    "WRAP",
    "BASKET",
    "TRAY",
    "CHALKBOARD",
    "TIN",
)


@dataclass(frozen=True)
class SyntheticData:
    """Transactions in the raw UCI schema plus the per-product ground truth."""

    transactions: pd.DataFrame
    truth: pd.DataFrame  # StockCode, Description, value_price, sensitivity, optimal_price


@dataclass(frozen=True)
class _Products:
    codes: np.ndarray
    descriptions: np.ndarray
    value_price: np.ndarray  # P_i
    sensitivity: np.ndarray  # b_i
    base_logq: np.ndarray  # a_i
    season_amp: np.ndarray
    popularity: np.ndarray  # probability of each product on a line


def generate_transactions(n_lines: int = 540_000, n_products: int = 4_000, seed: int = 0) -> SyntheticData:
    """Generate about ``n_lines`` raw transaction lines over ``n_products`` products, deterministic by seed."""
    rng = np.random.default_rng(seed)
    days = _trading_days()
    products = _make_products(n_products, rng)
    prices = _price_paths(products, days, rng)

    base_lines = int(n_lines * 0.955)  # the messy extras below bring the total back to about n_lines
    lines = _make_invoice_lines(base_lines, products, days, rng)
    day_idx, prod = lines["day_idx"], lines["product"]
    unit_price = prices[prod, day_idx]
    logq = (
        products.base_logq[prod]
        + products.sensitivity[prod] * (1.0 - unit_price / products.value_price[prod])
        + _seasonality(days[day_idx], products.season_amp[prod])
        + lines["effect"]
        + rng.normal(0.0, NOISE_SD, size=len(prod))
    )
    quantity = np.maximum(1, np.rint(np.exp(logq))).astype(np.int64)

    frame = pd.DataFrame(
        {
            "InvoiceNo": lines["invoice_no"].astype(str),
            "StockCode": products.codes[prod],
            "Description": products.descriptions[prod],
            "Quantity": quantity,
            "InvoiceDate": lines["timestamp"],
            "UnitPrice": unit_price,
            "CustomerID": lines["customer_id"],
            "Country": lines["country"],
        }
    )
    frame = _add_mess(frame, rng)
    truth = pd.DataFrame(
        {
            "StockCode": products.codes,
            "Description": products.descriptions,
            "value_price": products.value_price.round(4),
            "sensitivity": products.sensitivity.round(6),
            "optimal_price": (products.value_price / products.sensitivity).round(4),
        }
    )
    return SyntheticData(transactions=frame[list(COLUMNS)], truth=truth)


def add_observed_ranges(truth: pd.DataFrame, clean: pd.DataFrame) -> pd.DataFrame:
    """Add each product's observed price range, line count and whether its optimum lies inside it."""
    stats = clean.groupby("StockCode")["UnitPrice"].agg(observed_min="min", observed_max="max", lines="size")
    out = truth.merge(stats, left_on="StockCode", right_index=True, how="left")
    out["lines"] = out["lines"].fillna(0).astype(np.int64)
    out["optimum_in_range"] = (out["optimal_price"] >= out["observed_min"]) & (
        out["optimal_price"] <= out["observed_max"]
    )
    return out


# ---------------------------------------------------------------------------------------------------
# Products, prices and seasons


def _trading_days() -> pd.DatetimeIndex:
    days = pd.date_range(START, END, freq="D")
    return days[days.day_of_week != 5]  # the original shop never invoiced on Saturdays


def _seasonality(dates: pd.DatetimeIndex, amplitude: np.ndarray) -> np.ndarray:
    # Demand peaks in mid-November, ahead of Christmas.
    phase = 2 * np.pi * (dates.day_of_year.to_numpy() - 320) / 365.25
    return amplitude * np.cos(phase)


def _make_products(n_products: int, rng: np.random.Generator) -> _Products:
    n_top = min(len(TOP_PRODUCTS), n_products)
    codes = _random_codes(n_products - n_top, rng, exclude={c for c, _, _ in TOP_PRODUCTS})
    codes = np.concatenate([[c for c, _, _ in TOP_PRODUCTS[:n_top]], codes]).astype(object)
    descriptions = np.concatenate(
        [
            [d for _, d, _ in TOP_PRODUCTS[:n_top]],
            _random_descriptions(n_products - n_top, rng),
        ]
    ).astype(object)
    value_price = np.exp(rng.normal(np.log(2.5), 0.8, n_products)).clip(0.25, 60.0)
    value_price[:n_top] = [p for _, _, p in TOP_PRODUCTS[:n_top]]
    value_price = value_price.round(2)

    # Optimum / value-price ratio: cheaper goods tolerate a higher price, plus a per-product part.
    tier = np.log(value_price / 2.5)
    ratio = (0.9 - 0.05 * tier + rng.normal(0.0, 0.045, n_products)).clip(0.75, 1.05)
    sensitivity = 1.0 / ratio
    base_logq = rng.normal(2.3, 0.4, n_products) - 0.1 * tier
    season_amp = rng.uniform(0.05, 0.5, n_products)

    popularity = np.sort(np.exp(rng.normal(0.0, 0.9, n_products)))[::-1]
    return _Products(
        codes=codes,
        descriptions=descriptions,
        value_price=value_price,
        sensitivity=sensitivity,
        base_logq=base_logq,
        season_amp=season_amp,
        popularity=popularity / popularity.sum(),
    )


def _random_codes(n: int, rng: np.random.Generator, exclude: set[str]) -> np.ndarray:
    numbers = rng.choice(np.arange(10_000, 90_000), size=n * 2, replace=False)
    suffix = np.where(rng.random(n * 2) < 0.15, rng.choice(list("ABCDEFGHKLMNPRSW"), n * 2), "")
    codes = pd.unique(np.char.add(numbers.astype(str), suffix.astype(str)))
    return np.array([c for c in codes if c not in exclude][:n], dtype=object)


def _random_descriptions(n: int, rng: np.random.Generator) -> np.ndarray:
    adj = rng.choice(_WORDS_ADJ, n)
    colour = rng.choice(_WORDS_COLOUR, n)
    noun = rng.choice(_WORDS_NOUN, n)
    return np.char.add(np.char.add(np.char.add(adj, " "), np.char.add(colour, " ")), noun)


def _price_paths(products: _Products, days: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """Observed unit price of every product on every trading day, shape (products, days)."""
    n, n_days = len(products.codes), len(days)
    day_of_year = days.day_of_year.to_numpy()

    # List-price reviews: most in January-February, some mid-year; increases more common than cuts.
    list_factor = np.ones((n, n_days))
    changes = rng.random(n) < 0.8
    early = rng.random(n) < 0.75
    change_day = np.where(
        early,
        rng.integers(
            np.searchsorted(days, pd.Timestamp("2011-01-04")), np.searchsorted(days, pd.Timestamp("2011-03-01")), n
        ),
        rng.integers(
            np.searchsorted(days, pd.Timestamp("2011-04-01")), np.searchsorted(days, pd.Timestamp("2011-09-01")), n
        ),
    )
    factor = np.where(rng.random(n) < 0.75, rng.uniform(1.03, 1.12, n), rng.uniform(0.9, 0.97, n))
    after = np.arange(n_days)[None, :] >= change_day[:, None]
    list_factor = np.where(changes[:, None] & after, factor[:, None], list_factor)

    # Weekly promotions, three times as likely in the high season (mid-October to Christmas).
    week = np.arange(n_days) // 6  # six trading days a week
    n_weeks = week.max() + 1
    week_start_doy = day_of_year[np.searchsorted(week, np.arange(n_weeks))]
    high_season = (week_start_doy >= 288) | (week_start_doy <= 2)
    promo_prob = np.where(high_season, 0.24, 0.08)
    on_promo = rng.random((n, n_weeks)) < promo_prob[None, :]
    depth = rng.uniform(0.1, 0.35, (n, n_weeks))
    discount = np.where(on_promo, 1.0 - depth, 1.0)[:, week]

    prices = products.value_price[:, None] * list_factor * discount
    return np.maximum(np.round(prices, 2), 0.01)


# ---------------------------------------------------------------------------------------------------
# Invoices, customers and lines


def _make_invoice_lines(
    n_lines: int, products: _Products, days: pd.DatetimeIndex, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    sizes = _invoice_sizes(n_lines, rng)
    n_invoices = len(sizes)

    # Invoices per day follow the shop's traffic: busier before Christmas, quieter on Sundays.
    traffic = 1.0 + 0.8 * np.exp(-((((days.day_of_year.to_numpy() - 325) % 365) / 40.0) ** 2))
    traffic *= np.where(days.day_of_week == 6, 0.6, 1.0)
    inv_day = np.sort(rng.choice(len(days), size=n_invoices, p=traffic / traffic.sum()))
    seconds = rng.integers(7 * 3600 + 45 * 60, 20 * 3600, n_invoices)
    inv_time = days[inv_day] + pd.to_timedelta(seconds - seconds % 60, unit="s")
    order = np.lexsort((inv_time.to_numpy(), inv_day))
    inv_day, inv_time = inv_day[order], inv_time[order]

    customer_id, country, effect = _invoice_customers(n_invoices, rng)
    invoice_no = 536_365 + np.arange(n_invoices)

    line_inv = np.repeat(np.arange(n_invoices), sizes)
    product = rng.choice(len(products.codes), size=len(line_inv), p=products.popularity)
    return {
        "invoice_no": invoice_no[line_inv],
        "day_idx": inv_day[line_inv],
        "timestamp": inv_time[line_inv],
        "customer_id": customer_id[line_inv],
        "country": country[line_inv],
        "effect": effect[line_inv],
        "product": product,
    }


def _invoice_sizes(n_lines: int, rng: np.random.Generator) -> np.ndarray:
    sizes = rng.geometric(1 / 20.0, size=n_lines // 10 + 10)
    total = np.cumsum(sizes)
    k = int(np.searchsorted(total, n_lines)) + 1
    sizes = sizes[:k].copy()
    sizes[-1] -= total[k - 1] - n_lines
    return sizes[sizes > 0]


def _invoice_customers(n_invoices: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """CustomerID (NaN for guests), country and the combined demand effect of each invoice."""
    n_customers = 4_300
    ids = rng.choice(np.arange(12_346, 18_288), size=n_customers, replace=False).astype(float)
    # Overseas customers are fewer but more of them are wholesalers ordering larger quantities.
    foreign = rng.random(n_customers) < 0.14
    country_weights = np.exp(rng.normal(0.0, 1.3, len(COUNTRIES)))
    cust_country = np.where(
        foreign,
        rng.choice(np.array(COUNTRIES, dtype=object), size=n_customers, p=country_weights / country_weights.sum()),
        "United Kingdom",
    )
    country_effect = dict(zip(COUNTRIES, rng.normal(0.25, 0.2, len(COUNTRIES)), strict=True))
    country_effect["United Kingdom"] = 0.0
    cust_effect = rng.normal(0.0, 0.35, n_customers)
    activity = np.exp(rng.normal(0.0, 1.2, n_customers))

    pick = rng.choice(n_customers, size=n_invoices, p=activity / activity.sum())
    guest = rng.random(n_invoices) < 0.25
    customer_id = np.where(guest, np.nan, ids[pick])
    country = np.where(guest & (rng.random(n_invoices) < 0.97), "United Kingdom", cust_country[pick])
    effect = np.where(guest, -0.25, cust_effect[pick]) + np.array([country_effect[c] for c in country])
    return customer_id, country.astype(object), effect


# ---------------------------------------------------------------------------------------------------
# The messiness of a real export


def _later_trading_time(times: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Up to three days after each time, never on a Saturday nor after the last day of the data."""
    later = times + pd.to_timedelta(rng.integers(1, 72, len(times)), unit="h")
    later = later.where(later.dt.day_of_week != 5, later + pd.Timedelta(days=1))
    return later.where(later < pd.Timestamp(END) + pd.Timedelta(days=1), times + pd.Timedelta(minutes=10))


def _add_mess(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(frame)
    last_invoice = int(frame["InvoiceNo"].astype(np.int64).max())

    # Cancellations: a later "C" invoice that returns part of an earlier line.
    cancelled = frame.iloc[rng.choice(n, size=int(n * 0.02), replace=False)].copy()
    cancelled["InvoiceNo"] = ["C" + str(last_invoice + 1 + i) for i in range(len(cancelled))]
    cancelled["Quantity"] = -np.maximum(1, (cancelled["Quantity"] * rng.uniform(0.2, 1.0, len(cancelled))).round())
    cancelled["InvoiceDate"] = _later_trading_time(cancelled["InvoiceDate"], rng)

    # Non-product lines (postage, manual adjustments, fees) on existing invoices.
    base = frame.iloc[rng.choice(n, size=int(n * 0.004), replace=False)].copy()
    shares = np.array([s for *_, s in NON_PRODUCT_LINES])
    kind = rng.choice(len(NON_PRODUCT_LINES), size=len(base), p=shares / shares.sum())
    base["StockCode"] = [NON_PRODUCT_LINES[k][0] for k in kind]
    base["Description"] = [NON_PRODUCT_LINES[k][1] for k in kind]
    base["UnitPrice"] = np.round(
        np.array([NON_PRODUCT_LINES[k][2] for k in kind]) * rng.uniform(0.5, 1.5, len(base)), 2
    )
    base["Quantity"] = rng.integers(1, 4, len(base))

    # Stock adjustments: zero price, no customer, negative or positive quantity, often no description.
    adjust = frame.iloc[rng.choice(n, size=int(n * 0.004), replace=False)].copy()
    adjust["UnitPrice"] = 0.0
    adjust["CustomerID"] = np.nan
    adjust["Quantity"] = np.where(rng.random(len(adjust)) < 0.5, -1, 1) * rng.integers(1, 60, len(adjust))
    adjust["Description"] = np.where(rng.random(len(adjust)) < 0.6, None, "check")

    dupes = frame.iloc[rng.choice(n, size=int(n * 0.01), replace=False)]
    out = pd.concat([frame, cancelled, base, adjust, dupes], ignore_index=True)
    out["Quantity"] = out["Quantity"].astype(np.int64)
    return out.sort_values("InvoiceDate", kind="stable", ignore_index=True)
