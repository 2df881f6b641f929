"""Synthetic transactions in the UCI "Online Retail" schema, with a known revenue-maximising price per product.

The generator is as messy as the real file and contains what makes pricing it hard (measured on the real
file: ``../shared/notes/real-data.md``, ``docs/MODELS.md``), so that recovering its ground truth means
something:

- **Demand as the seller sees it.** Per product, price list and week, the *number of orders* responds to
  the posted price, and so (less) does their size: expected units per week are
  ``base x season(t) x trend(t) x D(p / P)``, with a share ``order_response`` of ``log D`` in the order
  count and the rest in the order size.
- **Each product's own response.** ``D`` is one of three demand forms, drawn per product: ``exponential``
  (log-linear in price), ``linear`` and ``logit`` (neither is). Each product's revenue-optimal ratio
  ``p* / P`` is drawn independently of its price tier (by default log-normal, 0.8 to 1.25).
- **Price lists and quantity tiers.** Registered customers buy at the wholesale list price; lines without a
  CustomerID mostly pay a retail list about twice it. A wholesale order of at least a product's tier
  threshold pays the tier price (82-92% of the list). Both are set per product.
- **Prices that move rarely, and confounded with the season.** List-price reviews happen mostly in the low
  season (and a catalogue-wide one in April); short promotions are three times as frequent in the high
  season; some products' prices never move at all.
- **Messiness** at roughly the original's rates: ~2% cancellation lines (``C`` invoices, negative
  quantities), non-product codes (POST, DOT, M, BANK CHARGES, ...), zero prices, stock adjustments, ~1%
  exact duplicate lines, ~25% missing CustomerID, ~38 countries with the UK around 90% of lines, no
  invoices on Saturdays, long-tailed product popularity, products launched or dropped during the year.

Ground truth (``SyntheticData.truth``, written as ``ground_truth.csv``): for each product and price list,
the posted price that maximises expected revenue per week (units times the price paid, tier discounts
included), found numerically from the generator's own demand and order-size distributions.

``GeneratorConfig()`` is the default shop; ``GeneratorConfig.legacy()`` is the earlier generator's demand:
log-linear, the whole response in the quantity per line, optimum tied to the price tier, one price list, no
tiers, frequent promotions on every product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricing.data import COLUMNS

START, END = "2010-12-01", "2011-12-09"
DEMAND_FORMS = ("exponential", "linear", "logit")
SEGMENTS = ("wholesale", "retail")  # the two price lists: registered customers', and the retail list guests pay
CATALOGUE_REVIEW = "2011-04-04"  # the week of the real file's catalogue-wide price review

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
class GeneratorConfig:
    """What the generated shop is like; the defaults are at least as hard as the real file."""

    demand_forms: tuple[str, ...] = DEMAND_FORMS  # drawn with equal probability per product
    optimum_ratio_centre: float = 1.0  # median of p* / P
    optimum_ratio_sd: float = 0.12  # sd of log(p* / P) across products
    optimum_ratio_bounds: tuple[float, float] = (0.8, 1.25)
    optimum_tier_slope: float = 0.0  # d log(p*/P) / d log(P): 0 = the optimum is independent of the price tier
    order_response: float = 0.4  # share of log D carried by the number of orders (the rest: their size)
    retail_list: bool = True  # guests mostly buy at a retail list about twice the wholesale list
    quantity_tiers: bool = True  # large wholesale orders pay a tier price below the list
    fixed_price_share: float = 0.15  # products whose price never moves
    promoted_share: float = 0.7  # of the others: products that get short promotions
    promo_rate: tuple[float, float] = (0.25, 0.45)  # weekly promotion probability in the low and high season
    promo_depth: tuple[float, float] = (0.1, 0.35)
    reviews_per_year: float = 2.0  # mean number of a non-fixed product's own list-price reviews
    max_reviews: int = 4
    review_step: tuple[float, float] = (0.88, 1.15)  # factor of one review
    catalogue_review_share: float = 0.15  # of the non-fixed products: the April catalogue-wide review
    weekly_shock_shape: float = 100.0  # gamma shape of a product's weekly demand shock (sd ~ 1/sqrt(shape))
    size_sd: float = 0.6  # log-sd of the order size around its median
    popularity_sd: float = 0.9  # log-sd of the products' popularity (long-tailed)
    # A controlled experiment: the two best sellers become twins, identical in everything (value price, demand
    # level, seasonality, tier, posted prices over the year) but their optimum ratio, these two values.
    twins: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.demand_forms) - set(DEMAND_FORMS))
        if unknown or not self.demand_forms:
            raise ValueError(f"demand_forms: unknown {unknown or '(empty)'}; choose from {DEMAND_FORMS}")
        low, high = self.optimum_ratio_bounds
        if not 0.55 <= low < high <= 2.0:
            raise ValueError(f"optimum_ratio_bounds must satisfy 0.55 <= low < high <= 2, got {low, high}")
        if not 0.0 <= self.order_response <= 1.0:
            raise ValueError(f"order_response must be in [0, 1], got {self.order_response}")

    @classmethod
    def legacy(cls) -> GeneratorConfig:
        """The earlier generator's demand: log-linear, per-line quantity response, optimum tied to the tier."""
        return cls(
            demand_forms=("exponential",),
            optimum_ratio_centre=0.9,
            optimum_ratio_sd=0.05,
            optimum_ratio_bounds=(0.75, 1.05),
            optimum_tier_slope=-0.055,
            order_response=0.0,
            retail_list=False,
            quantity_tiers=False,
            fixed_price_share=0.0,
            promoted_share=1.0,
            promo_rate=(0.08, 0.24),
            promo_depth=(0.1, 0.35),
            reviews_per_year=1.6,
            max_reviews=1,
            review_step=(0.9, 1.12),
            weekly_shock_shape=1e6,
            size_sd=0.55,
            catalogue_review_share=0.0,
        )


@dataclass(frozen=True)
class SyntheticData:
    """Transactions in the raw UCI schema plus the per-product ground truth."""

    transactions: pd.DataFrame
    truth: pd.DataFrame  # one row per product: see TRUTH_COLUMNS


TRUTH_COLUMNS = (
    "StockCode", "Description", "demand_form", "value_price", "usual_price", "optimum_ratio", "optimal_price",
    "retail_value_price", "retail_optimal_price", "tier_threshold", "tier_factor", "price_moves",
)  # fmt: skip


@dataclass(frozen=True)
class _Products:
    codes: np.ndarray
    descriptions: np.ndarray
    value_price: np.ndarray  # P: the wholesale list price the demand curve is centred on
    retail_multiplier: np.ndarray  # retail list / wholesale list
    form: np.ndarray  # index into DEMAND_FORMS
    ratio: np.ndarray  # target p* / P
    slope: np.ndarray  # exponential: 1 / ratio; linear: c; logit: k
    logit_level: np.ndarray  # logit: a (the demand at P is sigmoid(a) of the market)
    popularity: np.ndarray
    season_amp: np.ndarray
    season_peak: np.ndarray  # day of year of the peak
    trend: np.ndarray  # log change over the year
    order_size: np.ndarray  # median wholesale order size at P
    tier_threshold: np.ndarray  # wholesale orders of at least this many units pay the tier price
    tier_factor: np.ndarray  # tier price / list price (1 without tiers)
    launch_week: np.ndarray
    end_week: np.ndarray  # exclusive


@dataclass(frozen=True)
class _Calendar:
    days: pd.DatetimeIndex  # trading days (no Saturdays)
    day_week: np.ndarray  # week index of each day
    day_traffic: np.ndarray  # relative number of orders on each day
    week_starts: pd.DatetimeIndex  # Mondays
    high_season: np.ndarray  # per week: mid-October to Christmas

    @property
    def n_weeks(self) -> int:
        return len(self.week_starts)


# Orders: which price list, who places them, and how large they are relative to the product's median.
_SEGMENT_SHARE = {"wholesale": 0.75, "retail": 0.25}  # of orders, with a retail list
_GUEST_SHARE = {"wholesale": 0.05, "retail": 1.0}  # of a list's orders placed without a CustomerID
_GUEST_SIZE, _ABROAD_SIZE = np.log(0.3), 0.4  # log multipliers of the order size
_GUEST_ABROAD = 0.03
_LINES_PER_INVOICE = {"registered": 18, "guest": 12}


def generate_transactions(
    n_lines: int = 540_000, n_products: int = 4_000, seed: int = 0, config: GeneratorConfig | None = None
) -> SyntheticData:
    """Generate about ``n_lines`` raw transaction lines over ``n_products`` products, deterministic by seed."""
    config = config or GeneratorConfig()
    rng = np.random.default_rng(seed)
    calendar = _make_calendar()
    products = _make_products(n_products, calendar.n_weeks, rng, config)
    wholesale, retail = _posted_prices(products, calendar, rng, config)
    if config.twins is not None:
        products, wholesale, retail = _make_twins(products, wholesale, retail, config.twins)
    customers = _make_customers(rng)

    posted = {"wholesale": wholesale, "retail": retail}
    segments = SEGMENTS if config.retail_list else ("wholesale",)
    orders = _draw_orders(int(n_lines * 0.955), products, calendar, posted, segments, rng, config)
    lines = _place_orders(orders, products, calendar, customers, rng, config)
    frame = _add_mess(lines, rng)
    truth = _ground_truth(products, posted, calendar, customers, config)
    return SyntheticData(transactions=frame[list(COLUMNS)], truth=truth)


# ---------------------------------------------------------------------------------------------------
# Calendar, products and their demand curves


def _make_calendar() -> _Calendar:
    days = pd.date_range(START, END, freq="D")
    days = days[days.day_of_week != 5]  # the original shop never invoiced on Saturdays
    week_starts = pd.date_range(days[0].to_period("W-SUN").start_time, END, freq="W-MON")
    day_week = np.searchsorted(week_starts, days, side="right") - 1
    # Orders follow the shop's traffic: busier before Christmas, quieter on Sundays.
    from_peak = np.abs(days.day_of_year.to_numpy() - 325)
    traffic = 1.0 + 0.8 * np.exp(-((np.minimum(from_peak, 365 - from_peak) / 40.0) ** 2))
    traffic *= np.where(days.day_of_week == 6, 0.6, 1.0)
    doy = week_starts.day_of_year.to_numpy()
    return _Calendar(days, day_week, traffic, week_starts, (doy >= 288) | (doy <= 2))


def demand(products: _Products, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Relative demand D(p / P), with D(1) = 1, at price ratios ``x``.

    Without ``rows``, ``x`` has one row per product (and any number of columns); with ``rows``, ``x[i]`` is a
    ratio for product ``rows[i]``.
    """
    x = np.asarray(x, dtype=np.float64)
    pick = (lambda a: a[:, None]) if rows is None else (lambda a: a[rows])
    form, slope, level = pick(products.form), pick(products.slope), pick(products.logit_level)
    out = np.exp(-slope * (x - 1.0))
    out = np.where(form == 1, np.maximum(0.0, 1.0 - slope * (x - 1.0)), out)
    return np.where(form == 2, _sigmoid(level - slope * (x - 1.0)) / _sigmoid(level), out)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _make_products(n_products: int, n_weeks: int, rng: np.random.Generator, config: GeneratorConfig) -> _Products:
    n_top = min(len(TOP_PRODUCTS), n_products)
    codes = _random_codes(n_products - n_top, rng, exclude={c for c, _, _ in TOP_PRODUCTS})
    codes = np.concatenate([[c for c, _, _ in TOP_PRODUCTS[:n_top]], codes]).astype(object)
    descriptions = np.concatenate(
        [[d for _, d, _ in TOP_PRODUCTS[:n_top]], _random_descriptions(n_products - n_top, rng)]
    ).astype(object)
    value_price = np.exp(rng.normal(np.log(2.5), 0.8, n_products)).clip(0.25, 60.0)
    value_price[:n_top] = [p for _, _, p in TOP_PRODUCTS[:n_top]]
    value_price = value_price.round(2)
    tier = np.log(value_price / 2.5)

    low, high = config.optimum_ratio_bounds
    log_ratio = np.log(config.optimum_ratio_centre) + config.optimum_tier_slope * tier
    ratio = np.exp(log_ratio + rng.normal(0.0, config.optimum_ratio_sd, n_products)).clip(low, high)
    form = rng.choice([DEMAND_FORMS.index(f) for f in config.demand_forms], size=n_products)
    slope, logit_level, form = _curve_parameters(form, ratio, rng)

    popularity = np.sort(np.exp(rng.normal(0.0, config.popularity_sd, n_products)))[::-1]
    order_size = np.exp(rng.normal(2.0, 0.4, n_products) - 0.25 * tier).clip(1.0, 60.0)
    thresholds = np.array([6, 12, 24, 48, 100, 200])
    tier_threshold = thresholds[np.minimum(np.searchsorted(thresholds, 2.5 * order_size), len(thresholds) - 1)]
    tier_factor = rng.uniform(0.82, 0.92, n_products) if config.quantity_tiers else np.ones(n_products)

    # Most products sell all year; some are launched or dropped during it (never the named best sellers).
    launch = np.where(rng.random(n_products) < 0.15, rng.integers(4, n_weeks - 12, n_products), 0)
    end = np.where(rng.random(n_products) < 0.08, rng.integers(20, n_weeks, n_products), n_weeks)
    launch[:n_top], end[:n_top] = 0, n_weeks
    end = np.maximum(end, launch + 8)
    return _Products(
        codes=codes,
        descriptions=descriptions,
        value_price=value_price,
        retail_multiplier=rng.uniform(1.9, 2.2, n_products),
        form=form,
        ratio=ratio,
        slope=slope,
        logit_level=logit_level,
        popularity=popularity / popularity.sum(),
        season_amp=rng.uniform(0.05, 0.5, n_products),
        season_peak=rng.normal(320.0, 25.0, n_products),
        trend=rng.normal(0.0, 0.2, n_products),
        order_size=order_size,
        tier_threshold=tier_threshold,
        tier_factor=tier_factor,
        launch_week=launch,
        end_week=np.minimum(end, n_weeks),
    )


def _curve_parameters(
    form: np.ndarray, ratio: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each form's parameter that puts the revenue optimum of x * D(x) at ``ratio``; returns (slope, a, form)."""
    slope = 1.0 / ratio  # exponential: revenue x exp(-b (x - 1)) peaks at 1 / b
    linear = form == 1
    slope[linear] = 1.0 / (2.0 * ratio[linear] - 1.0)  # x (1 - c (x - 1)) peaks at (1 + c) / (2c)
    level = np.zeros(len(form))
    logit = np.flatnonzero(form == 2)
    share = rng.uniform(0.2, 0.6, len(logit))  # of the product's market that buys at x = 1
    level[logit] = np.log(share / (1.0 - share))
    # Revenue x sigmoid(a - k (x - 1)) is log-concave in x; its optimum is at x = r where k r (1 - s) = 1.
    grid = np.linspace(0.05, 40.0, 4_000)
    r, a = ratio[logit], level[logit]

    def foc(k: np.ndarray) -> np.ndarray:
        rr, aa = (r, a) if k.ndim == 1 else (r[:, None], a[:, None])
        return k * rr * (1.0 - _sigmoid(aa - k * (rr - 1.0))) - 1.0

    crossed = foc(np.broadcast_to(grid, (len(logit), len(grid)))) >= 0
    found = crossed.any(axis=1)
    # The first grid point past the root and the one before it bracket it: bisect to machine precision.
    high = grid[np.maximum(crossed.argmax(axis=1), 1)]
    low = grid[np.maximum(crossed.argmax(axis=1) - 1, 0)]
    for _ in range(50):
        mid = 0.5 * (low + high)
        above = foc(mid) >= 0
        low, high = np.where(above, low, mid), np.where(above, mid, high)
    slope[logit] = np.where(found, high, 1.0 / ratio[logit])
    form = form.copy()
    form[logit[~found]] = 0  # no logit curve peaks there with this share: fall back to the exponential form
    return slope, level, form


def _make_twins(
    products: _Products, wholesale: np.ndarray, retail: np.ndarray, ratios: tuple[float, float]
) -> tuple[_Products, np.ndarray, np.ndarray]:
    """The first two products as twins: the second copies the first in everything but its optimum ratio
    (both log-linear, so the ratio alone sets each one's response)."""
    if len(products.codes) < 2:
        raise ValueError("twins need at least two products")
    fields = {f: getattr(products, f).copy() for f in products.__dataclass_fields__}
    for name, values in fields.items():
        if name not in ("codes", "descriptions"):
            values[1] = values[0]
    fields["popularity"][:2] = fields["popularity"][0]
    fields["form"][:2] = DEMAND_FORMS.index("exponential")
    fields["ratio"][:2] = ratios
    fields["slope"][:2] = 1.0 / np.asarray(ratios)
    # Both get the posted prices of the first product whose price moves at least every other month, scaled to
    # their value price: twins whose price never moved could not show how they differ.
    relative = wholesale / products.value_price[:, None]
    moving = np.flatnonzero((np.abs(np.diff(relative, axis=1)) > 1e-9).sum(axis=1) >= 6)
    source = int(moving[0]) if len(moving) else 0
    wholesale, retail = wholesale.copy(), retail.copy()
    for twin in (0, 1):
        wholesale[twin] = np.round(relative[source] * fields["value_price"][twin], 2)
        retail[twin] = np.round(retail[source] / products.value_price[source] * fields["value_price"][twin], 2)
    return _Products(**fields), wholesale, retail


# ---------------------------------------------------------------------------------------------------
# Posted prices


def _posted_prices(
    products: _Products, calendar: _Calendar, rng: np.random.Generator, config: GeneratorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Posted wholesale and retail list prices of every product in every week, each of shape (products, weeks)."""
    n, n_weeks = len(products.codes), calendar.n_weeks
    weeks = calendar.week_starts
    fixed = rng.random(n) < config.fixed_price_share
    factor = np.ones((n, n_weeks))

    def week_index(day: str) -> int:
        return int(np.searchsorted(weeks, pd.Timestamp(day)))

    # List-price reviews: a product's own, about half of them in January and February (low season); up or down.
    n_reviews = np.where(fixed, 0, np.minimum(rng.poisson(config.reviews_per_year, n), config.max_reviews))
    for k in range(config.max_reviews):
        early = rng.random(n) < 0.5
        week = np.where(
            early,
            rng.integers(week_index("2011-01-03"), week_index("2011-03-01"), n),
            rng.integers(week_index("2011-03-01"), week_index("2011-11-01"), n),
        )
        step = rng.uniform(*config.review_step, n)
        after = (n_reviews > k)[:, None] & (np.arange(n_weeks)[None, :] >= week[:, None])
        factor *= np.where(after, step[:, None], 1.0)
    catalogue = ~fixed & (rng.random(n) < config.catalogue_review_share)
    step = rng.uniform(1.03, 1.08, n)[:, None]
    factor *= np.where(catalogue[:, None] & (np.arange(n_weeks)[None, :] >= week_index(CATALOGUE_REVIEW)), step, 1.0)

    # Short promotions, three times as likely in the high season (mid-October to Christmas).
    promoted = ~fixed & (rng.random(n) < config.promoted_share)
    rate = np.where(calendar.high_season, config.promo_rate[1], config.promo_rate[0])
    on_promo = promoted[:, None] & (rng.random((n, n_weeks)) < rate[None, :])
    depth = rng.uniform(*config.promo_depth, (n, n_weeks))
    discount = np.where(on_promo, 1.0 - depth, 1.0)

    wholesale_list = products.value_price[:, None] * factor
    retail_list = np.round(wholesale_list * products.retail_multiplier[:, None], 2)
    wholesale = np.maximum(np.round(np.round(wholesale_list, 2) * discount, 2), 0.01)
    retail = np.maximum(np.round(retail_list * discount, 2), 0.01)
    return wholesale, retail


# ---------------------------------------------------------------------------------------------------
# Customers, orders and invoice lines


@dataclass(frozen=True)
class _Customers:
    ids: np.ndarray
    country: np.ndarray
    abroad: np.ndarray  # outside the UK: larger orders (more of them are wholesalers)
    activity: np.ndarray  # probability of each customer placing a given registered invoice

    @property
    def abroad_share(self) -> float:
        """Share of registered invoices placed by customers outside the UK."""
        return float(self.activity[self.abroad].sum())


def _make_customers(rng: np.random.Generator) -> _Customers:
    n_customers = 4_300
    ids = rng.choice(np.arange(12_346, 18_288), size=n_customers, replace=False).astype(float)
    # Overseas customers are fewer, and order more per line (more of them are wholesalers).
    foreign = rng.random(n_customers) < 0.14
    weights = np.exp(rng.normal(0.0, 1.3, len(COUNTRIES)))
    country = np.where(
        foreign,
        rng.choice(np.array(COUNTRIES, dtype=object), size=n_customers, p=weights / weights.sum()),
        "United Kingdom",
    ).astype(object)
    activity = np.exp(rng.normal(0.0, 1.2, n_customers))
    return _Customers(ids, country, foreign, activity / activity.sum())


def _expected_orders(
    products: _Products, calendar: _Calendar, posted: dict[str, np.ndarray], segment: str, config: GeneratorConfig
) -> np.ndarray:
    """Expected orders per (product, week) at the posted prices, before scaling to the data set's size."""
    weeks = calendar.week_starts
    week_traffic = np.bincount(calendar.day_week, weights=calendar.day_traffic, minlength=calendar.n_weeks)
    phase = 2 * np.pi * (weeks.day_of_year.to_numpy()[None, :] - products.season_peak[:, None]) / 365.25
    season = np.exp(products.season_amp[:, None] * np.cos(phase))
    elapsed = ((weeks - weeks[0]).days.to_numpy() / 365.25 - 0.5)[None, :]
    trend = np.exp(products.trend[:, None] * elapsed)
    index = np.arange(calendar.n_weeks)[None, :]
    active = (index >= products.launch_week[:, None]) & (index < products.end_week[:, None])
    x = posted[segment] / _list_value(products, segment)[:, None]
    response = demand(products, x) ** config.order_response
    share = _SEGMENT_SHARE[segment] if config.retail_list else 1.0
    return products.popularity[:, None] * share * week_traffic[None, :] * season * trend * response * active


def _list_value(products: _Products, segment: str) -> np.ndarray:
    """The price each product's demand curve is centred on, for a price list."""
    return products.value_price * (products.retail_multiplier if segment == "retail" else 1.0)


def _draw_orders(
    n_orders: int,
    products: _Products,
    calendar: _Calendar,
    posted: dict[str, np.ndarray],
    segments: tuple[str, ...],
    rng: np.random.Generator,
    config: GeneratorConfig,
) -> pd.DataFrame:
    """Orders (one per invoice line): product, price list, week, and the product's demand at that price."""
    expected = {s: _expected_orders(products, calendar, posted, s, config) for s in segments}
    scale = n_orders / sum(e.sum() for e in expected.values())
    shock = rng.gamma(config.weekly_shock_shape, 1.0 / config.weekly_shock_shape, expected[segments[0]].shape)
    frames = []
    for segment in segments:
        counts = rng.poisson(expected[segment] * scale * shock)
        product, week = np.nonzero(counts)
        repeat = counts[product, week]
        product, week = np.repeat(product, repeat), np.repeat(week, repeat)
        price = posted[segment][product, week]
        x = price / _list_value(products, segment)[product]
        frames.append(
            pd.DataFrame({"product": product, "week": week, "segment": segment, "price": price,
                          "demand": demand(products, x, rows=product)})
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _place_orders(
    orders: pd.DataFrame,
    products: _Products,
    calendar: _Calendar,
    customers: _Customers,
    rng: np.random.Generator,
    config: GeneratorConfig,
) -> pd.DataFrame:
    """Invoice lines for the orders: a day in the order's week, an invoice (a customer's, or a guest's), the
    country, the quantity and the price paid."""
    n = len(orders)
    week, product = orders["week"].to_numpy(), orders["product"].to_numpy()
    day = _day_in_week(week, calendar, rng)
    retail = (orders["segment"] == "retail").to_numpy()
    guest_share = np.where(retail, _GUEST_SHARE["retail"], _GUEST_SHARE["wholesale"] if config.retail_list else 0.25)
    guest = rng.random(n) < guest_share

    # Invoices: a registered customer's lines of a day form one of that day's invoices; guests' likewise.
    n_days = len(calendar.days)
    invoice = np.empty(n, dtype=np.int64)
    inv_day, inv_customer, inv_country = [], [], []
    for kind, mask in (("registered", ~guest), ("guest", guest)):
        days_of_lines = day[mask]
        extra = rng.choice(n_days, size=len(days_of_lines) // _LINES_PER_INVOICE[kind], p=_share(calendar.day_traffic))
        days = np.sort(np.concatenate([np.unique(days_of_lines), extra]))
        start = np.searchsorted(days, days_of_lines, side="left")
        count = np.searchsorted(days, days_of_lines, side="right") - start
        invoice[mask] = sum(map(len, inv_day)) + start + (rng.random(len(days_of_lines)) * count).astype(np.int64)
        inv_day.append(days)
        if kind == "registered":
            picked = rng.choice(len(customers.ids), size=len(days), p=customers.activity)
            inv_customer.append(customers.ids[picked])
            inv_country.append(customers.country[picked])
        else:
            abroad = rng.random(len(days)) < _GUEST_ABROAD
            inv_customer.append(np.full(len(days), np.nan))
            inv_country.append(
                np.where(abroad, rng.choice(np.array(COUNTRIES, dtype=object), len(days)), "United Kingdom")
            )
    all_days = np.concatenate(inv_day)
    seconds = rng.integers(7 * 3600 + 45 * 60, 20 * 3600, len(all_days))
    times = calendar.days[all_days] + pd.to_timedelta(seconds - seconds % 60, unit="s")
    number = np.empty(len(all_days), dtype=np.int64)
    number[np.argsort(times.to_numpy(), kind="stable")] = 536_365 + np.arange(len(all_days))
    customer_id, country = np.concatenate(inv_customer)[invoice], np.concatenate(inv_country).astype(object)[invoice]

    # Quantity: the product's order size, larger abroad, smaller for guests, and its share of the response.
    abroad = country != "United Kingdom"
    log_size = (
        np.log(products.order_size[product])
        + np.where(guest, _GUEST_SIZE, 0.0)
        + np.where(abroad, _ABROAD_SIZE, 0.0)
        + (1.0 - config.order_response) * np.log(np.maximum(orders["demand"].to_numpy(), 1e-12))
        + rng.normal(0.0, config.size_sd, n)
    )
    quantity = np.maximum(1, np.rint(np.exp(log_size))).astype(np.int64)
    tiered = ~retail & (quantity >= products.tier_threshold[product])
    price = orders["price"].to_numpy()
    paid = np.maximum(np.round(np.where(tiered, price * products.tier_factor[product], price), 2), 0.01)
    frame = pd.DataFrame(
        {
            "InvoiceNo": number[invoice].astype(str),
            "StockCode": products.codes[product],
            "Description": products.descriptions[product],
            "Quantity": quantity,
            "InvoiceDate": times[invoice],
            "UnitPrice": paid,
            "CustomerID": customer_id,
            "Country": country,
        }
    )
    return frame.sort_values(["InvoiceDate", "InvoiceNo"], kind="stable", ignore_index=True)


def _day_in_week(week: np.ndarray, calendar: _Calendar, rng: np.random.Generator) -> np.ndarray:
    """A trading day of each order's week, in proportion to the shop's daily traffic."""
    cumulative = np.cumsum(calendar.day_traffic)
    weeks = np.arange(calendar.n_weeks)
    first = np.searchsorted(calendar.day_week, weeks, side="left")
    last = np.searchsorted(calendar.day_week, weeks, side="right") - 1
    before = np.where(first > 0, cumulative[np.maximum(first - 1, 0)], 0.0)
    point = before[week] + rng.random(len(week)) * (cumulative[last[week]] - before[week])
    return np.minimum(np.searchsorted(cumulative, point, side="right"), last[week])


def _share(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


# ---------------------------------------------------------------------------------------------------
# Ground truth

_TRUTH_GRID = np.linspace(0.4, 2.2, 361)  # price ratios p / P searched for the optimum (step 0.005)
_SIZE_NODES = np.linspace(-4.0, 4.0, 61)  # standard-normal nodes for the order-size noise
_SIZE_WEIGHTS = _share(np.exp(-0.5 * _SIZE_NODES**2))


def _ground_truth(
    products: _Products,
    posted: dict[str, np.ndarray],
    calendar: _Calendar,
    customers: _Customers,
    config: GeneratorConfig,
) -> pd.DataFrame:
    """Per product: the revenue-optimal posted price of each price list, and what the optimum depends on."""
    index = np.arange(calendar.n_weeks)[None, :]
    active = (index >= products.launch_week[:, None]) & (index < products.end_week[:, None])
    wholesale = np.where(active, posted["wholesale"], np.nan)
    usual = pd.DataFrame(wholesale.T).mode().iloc[0].to_numpy()
    moves = np.nanmax(wholesale, axis=1) > np.nanmin(wholesale, axis=1)
    optimum = {s: _optimal_ratio(products, s, customers, config) * _list_value(products, s) for s in SEGMENTS}
    return pd.DataFrame(
        {
            "StockCode": products.codes,
            "Description": products.descriptions,
            "demand_form": np.array(DEMAND_FORMS)[products.form],
            "value_price": products.value_price,
            "usual_price": usual,
            "optimum_ratio": products.ratio.round(6),
            "optimal_price": optimum["wholesale"].round(4),
            "retail_value_price": _list_value(products, "retail").round(4),
            "retail_optimal_price": optimum["retail"].round(4),
            "tier_threshold": products.tier_threshold,
            "tier_factor": products.tier_factor.round(4),
            "price_moves": moves,
        }
    )


def _optimal_ratio(products: _Products, segment: str, customers: _Customers, config: GeneratorConfig) -> np.ndarray:
    """The ratio p / P that maximises expected revenue per week of a price list, per product.

    Revenue per week at ratio x is proportional to x * D(x)^order_response * E[q * tier(q)], the expectation
    over the order sizes q at that price (their median scales with D(x)^(1 - order_response)), the mix of
    guests, registered customers and countries placing the list's orders, and the tier discount.
    """
    guest = _GUEST_SHARE[segment] if config.retail_list else 0.25
    abroad = customers.abroad_share
    components = [  # (share of orders, log size multiplier)
        ((1 - guest) * (1 - abroad), 0.0),
        ((1 - guest) * abroad, _ABROAD_SIZE),
        (guest * (1 - _GUEST_ABROAD), _GUEST_SIZE),
        (guest * _GUEST_ABROAD, _GUEST_SIZE + _ABROAD_SIZE),
    ]
    log_shift = np.concatenate([m + config.size_sd * _SIZE_NODES for _, m in components])
    weight = np.concatenate([w * _SIZE_WEIGHTS for w, _ in components])
    tiers = segment == "wholesale" and config.quantity_tiers
    out = np.empty(len(products.codes))
    for chunk in np.array_split(np.arange(len(out)), max(1, len(out) // 200)):
        d = demand(_subset(products, chunk), np.broadcast_to(_TRUTH_GRID, (len(chunk), len(_TRUTH_GRID))))
        median = products.order_size[chunk, None] * np.maximum(d, 1e-12) ** (1.0 - config.order_response)
        q = np.maximum(1.0, np.rint(median[:, :, None] * np.exp(log_shift)[None, None, :]))
        if tiers:
            factor = products.tier_factor[chunk, None, None]
            q = q * np.where(q >= products.tier_threshold[chunk, None, None], factor, 1.0)
        revenue = _TRUTH_GRID[None, :] * d**config.order_response * (q @ weight)
        out[chunk] = _refined_argmax(revenue)
    return out


def _refined_argmax(values: np.ndarray) -> np.ndarray:
    """The maximising ratio of each row of ``values`` over _TRUTH_GRID, refined by a parabola through the
    best grid point and its neighbours."""
    best = np.clip(values.argmax(axis=1), 1, len(_TRUTH_GRID) - 2)
    rows = np.arange(len(values))
    left, mid, right = values[rows, best - 1], values[rows, best], values[rows, best + 1]
    curvature = left - 2 * mid + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
    step = _TRUTH_GRID[1] - _TRUTH_GRID[0]
    return _TRUTH_GRID[best] + np.clip(offset, -1.0, 1.0) * step


def _subset(products: _Products, rows: np.ndarray) -> _Products:
    return _Products(**{f: getattr(products, f)[rows] for f in products.__dataclass_fields__})


# ---------------------------------------------------------------------------------------------------
# Names and codes


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
