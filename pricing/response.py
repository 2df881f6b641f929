"""Each product's own price response, partially pooled: the statistical core of the price sweep.

For every price list (a product on the wholesale or the retail list) and period, demand responds to the
posted price ``p`` through ``x = p / r - 1``, ``r`` the list's usual price, in two parts whose product is a
period's units:

- **orders**: a Poisson model of the number of orders, ``log E[orders] = a + s season + t trend + period
  effect + b_o x`` (period effects are shared by the lists of a segment: the shop's traffic and high season;
  the season and trend terms are the list's own, so its seasonal peak is not read as a price effect);
- **order size**: the mean log quantity of a period's lines, weighted by their number: ``c + period effect +
  b_s x``.

The list's slope is ``b = b_o + b_s``. Both parts' slopes go through **empirical-Bayes partial pooling**
jointly: a normal prior per segment whose mean depends on the list's price tier (so a list is shrunk towards
lists of its tier), estimated with its covariance by EM from the lists with at least
``MIN_PRIOR_ORDERS`` orders per period, combined with each list's own information. A list whose price moved
a lot keeps its own slope; one whose price barely moved is shrunk to what similar lists show; one whose price
never moved gets exactly that pooled slope. Cells in which no list reaches ``MIN_PRIOR_ORDERS`` cannot estimate
the prior at all: ``fit`` refuses them (``TooLittleDataError``) rather than serve an invented response.

The shape of the curve is pooled, not per list: ``log D(x) = log(1 + k b x) / k`` (``k = 0``: log-linear in
price; ``k = 1``: linear demand). One year of one-sided price moves (promotions) cannot separate a list's
curvature from its slope, so ``k`` per segment comes from a pooled fit with a quadratic term
(``k = -mean curvature / mean squared slope``, within [0, 1]).

``identifiable``: the list's own data show its response, on their own: its slope is at least ``MIN_T`` own
standard errors below zero (the standard error from the list's own information on both parts, without the
prior). ``own_weight`` says how much of what is known of the slope comes from the list's own data (1 minus
the posterior variance over the prior's). The served slope is the posterior mean; a posterior that does not
fall with price (the data confound the price with something else) is served the pooled slope, and a pooled
slope that does not fall is served flat: no response is claimed that the data do not show. The posterior
variance gives the interval of the optimal price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_T = 2.0  # own standard errors the slope must lie below zero for the list's response to count as identified
MIN_PRIOR_ORDERS = 3.0  # orders per period a list needs to help estimate the pooled prior
SEASON_PEAK_DAY = 320  # mid-November: the phase of the seasonal term (a list's own amplitude is estimated)
_NUISANCE_RIDGE = 1.0  # keeps the season and trend terms of a list with few periods finite
_PRICE_RIDGE = 1e-3
RATIO_RANGE = (0.25, 3.0)  # posted / usual price beyond these counts as these (see price_terms)
_CHOKE = 1e-6  # 1 + k b x is floored here: past the choke price, demand is nearly nothing


class TooLittleDataError(ValueError):
    """The cells cannot estimate the pooled price response: no list has enough orders per period."""


@dataclass(frozen=True)
class Design:
    """The per-cell regressors of both parts, and which list and period-effect group each cell belongs to."""

    lists: pd.Index  # (StockCode, segment) per list number
    group: np.ndarray  # list number of each cell
    period_group: np.ndarray  # (segment, period) number of each cell
    n_period_groups: int
    nuisance: np.ndarray  # (cells, k): intercept, season, trend
    price: np.ndarray  # (cells, 1 or 2): x (and x^2)


def price_terms(ratio: np.ndarray, quadratic: bool) -> np.ndarray:
    """The price regressors ``[x]`` (or ``[x, x^2]``) for price ratios ``p / usual price``; a ratio beyond
    ``RATIO_RANGE`` counts as its end (one odd posted price must not dominate a list's fit)."""
    x = np.clip(np.asarray(ratio, dtype=np.float64), *RATIO_RANGE) - 1.0
    return np.column_stack([x, x * x] if quadratic else [x])


def season_terms(periods: pd.Series | pd.DatetimeIndex, start: pd.Timestamp) -> np.ndarray:
    """Seasonal and trend regressors of periods: ``cos`` of the day of year around mid-November, and years
    since ``start`` minus a half (so a one-year data set's trend is centred)."""
    periods = pd.DatetimeIndex(periods)
    day = periods.day_of_year.to_numpy()
    season = np.cos(2 * np.pi * (day - SEASON_PEAK_DAY) / 365.25)
    trend = (periods - start).days.to_numpy() / 365.25 - 0.5
    return np.column_stack([season, trend])


def build_design(cells: pd.DataFrame, usual_price: pd.Series, quadratic: bool) -> Design:
    """The design of ``cells`` (demand cells) with each list's usual price (indexed by StockCode, segment)."""
    keys = pd.MultiIndex.from_frame(cells[["StockCode", "segment"]])
    group, lists = pd.factorize(keys)
    period_group, period_groups = pd.factorize(
        pd.MultiIndex.from_frame(cells[["segment", "period"]].astype({"period": "datetime64[ns]"}))
    )
    reference = usual_price.reindex(lists).to_numpy()[group]
    start = pd.Timestamp(cells["period"].min())
    nuisance = np.column_stack([np.ones(len(cells)), season_terms(cells["period"], start)])
    return Design(
        lists=pd.MultiIndex.from_tuples(list(lists), names=["StockCode", "segment"]),
        group=group,
        period_group=period_group,
        n_period_groups=len(period_groups),
        nuisance=nuisance,
        price=price_terms(cells["posted_price"].to_numpy() / reference, quadratic),
    )


# ---------------------------------------------------------------------------------------------------
# Per-list fits of the two parts


@dataclass(frozen=True)
class PartFit:
    """One part's per-list price coefficients (lists, terms) and their information matrices (lists, terms, terms);
    ``nuisance`` holds the per-list level, season and trend coefficients where the part has them."""

    coef: np.ndarray
    info: np.ndarray
    nuisance: np.ndarray | None = None


def grouped_normal_equations(
    group: np.ndarray, Z: np.ndarray, y: np.ndarray, w: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per group: Z' W Z (groups, k, k) and Z' W y (groups, k)."""
    k = Z.shape[1]
    gram, moment = np.zeros((n_groups, k, k)), np.zeros((n_groups, k))
    for a in range(k):
        moment[:, a] = np.bincount(group, w * Z[:, a] * y, n_groups)
        for b in range(a, k):
            gram[:, a, b] = gram[:, b, a] = np.bincount(group, w * Z[:, a] * Z[:, b], n_groups)
    return gram, moment


def _ridge(k: int, n_nuisance: int) -> np.ndarray:
    """The penalty added to every group's normal equations: a negligible one on the intercept, a firm one on the
    season and trend terms, a light one on the price terms."""
    penalty = np.full(k, _PRICE_RIDGE)
    penalty[0] = 1e-6
    penalty[1:n_nuisance] = _NUISANCE_RIDGE
    return np.diag(penalty)


def _price_information(gram: np.ndarray, n_nuisance: int, scale: np.ndarray) -> np.ndarray:
    """Information on the price coefficients once the nuisance terms are profiled out (a Schur complement)."""
    A = gram[:, :n_nuisance, :n_nuisance] + _ridge(gram.shape[1], n_nuisance)[:n_nuisance, :n_nuisance]
    B, C = gram[:, :n_nuisance, n_nuisance:], gram[:, n_nuisance:, n_nuisance:]
    jitter = 1e-10 * (1.0 + np.trace(A, axis1=1, axis2=2))  # keeps a numerically singular A solvable
    solved = np.linalg.solve(A + jitter[:, None, None] * np.eye(A.shape[1])[None], B)
    return (C - np.einsum("gab,gac->gbc", B, solved)) / scale[:, None, None]


def _dispersion(residual_ss: np.ndarray, n: np.ndarray, k: int, floor: float) -> np.ndarray:
    """Per-group residual variance (or Pearson dispersion), the pooled one where a group has too few cells,
    and never below ``floor`` times the pooled one."""
    dof = np.maximum(n - k, 1)
    enough = n > k + 2
    pooled = residual_ss[enough].sum() / max(dof[enough].sum(), 1)
    return np.maximum(np.where(enough, residual_ss / dof, pooled), floor * pooled)


def fit_orders(design: Design, orders: np.ndarray, iterations: int = 30) -> PartFit:
    """Poisson fit of the orders per period: per-list coefficients, shared period effects; overdispersion
    (Pearson) scales each list's information."""
    Z = np.column_stack([design.nuisance, design.price])
    k, n_nuisance, n_groups = Z.shape[1], design.nuisance.shape[1], len(design.lists)
    y = np.asarray(orders, dtype=np.float64)
    group, pgroup = design.group, design.period_group
    n = np.bincount(group, minlength=n_groups).astype(np.float64)
    coef = np.zeros((n_groups, k))
    coef[:, 0] = np.log((np.bincount(group, y, n_groups) + 0.5) / np.maximum(n, 1))
    effects = np.zeros(design.n_period_groups)
    penalty = _ridge(k, n_nuisance)
    # A list's expected orders stay below ten times its busiest period: a list whose few periods a price
    # term fits perfectly must not run its coefficients (and its Fisher information) off to infinity.
    ceiling = np.log(10.0 * np.maximum.reduceat(y[np.argsort(group, kind="stable")], _starts(group)) + 10.0)[group]

    def mean(list_eta: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(list_eta + effects[pgroup], -30.0, ceiling))

    for _ in range(iterations):
        mu = mean(np.einsum("ck,ck->c", Z, coef[group]))
        fisher, _ = grouped_normal_equations(group, Z, y, mu, n_groups)
        _, score = grouped_normal_equations(group, Z, y - mu, np.ones_like(y), n_groups)
        score -= np.einsum("ab,gb->ga", penalty, coef)
        coef += np.clip(_solve(fisher + penalty[None], score), -2.0, 2.0)  # damped: few orders must not overshoot
        list_mu = np.exp(np.clip(np.einsum("ck,ck->c", Z, coef[group]), -30.0, ceiling))
        observed = np.bincount(pgroup, y, design.n_period_groups)
        expected = np.bincount(pgroup, list_mu, design.n_period_groups)
        effects = np.log(observed + 1e-3) - np.log(expected + 1e-3)
    mu = mean(np.einsum("ck,ck->c", Z, coef[group]))
    fisher, _ = grouped_normal_equations(group, Z, y, mu, n_groups)
    pearson = np.bincount(group, (y - mu) ** 2 / np.maximum(mu, 1e-9), n_groups)
    phi = np.maximum(_dispersion(pearson, n, k, floor=0.5), 1.0)
    return PartFit(coef[:, n_nuisance:], _price_information(fisher, n_nuisance, phi), coef[:, :n_nuisance])


def _starts(group: np.ndarray) -> np.ndarray:
    """Where each group starts in ``group`` sorted stably (groups are numbered 0..n-1, none empty)."""
    return np.concatenate([[0], np.cumsum(np.bincount(group))[:-1]])


def _solve(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Solve each group's system, with a ridge relative to its scale so that none is numerically singular."""
    k = matrices.shape[1]
    scale = 1e-10 * (1.0 + np.trace(matrices, axis1=1, axis2=2))
    return np.linalg.solve(matrices + scale[:, None, None] * np.eye(k)[None], vectors[..., None])[..., 0]


def fit_size(
    design: Design,
    lines: np.ndarray,
    log_quantity_sum: np.ndarray,
    log_quantity_sq_sum: np.ndarray,
    iterations: int = 10,
) -> PartFit:
    """Weighted least squares of a period's mean log order size (weights: its lines) on the price terms, with a
    per-list level and shared period effects. The variance that scales a list's information is per line (the
    sums of squares keep the spread within a period, which the period means hide)."""
    Z = np.column_stack([design.nuisance[:, :1], design.price])
    k, n_groups = Z.shape[1], len(design.lists)
    w = np.asarray(lines, dtype=np.float64)
    total, squares = np.asarray(log_quantity_sum, dtype=np.float64), np.asarray(log_quantity_sq_sum, dtype=np.float64)
    y = np.where(w > 0, total / np.maximum(w, 1.0), 0.0)
    group, pgroup = design.group, design.period_group
    penalty = _ridge(k, 1)
    effects = np.zeros(design.n_period_groups)
    for _ in range(iterations):
        gram, moment = grouped_normal_equations(group, Z, y - effects[pgroup], w, n_groups)
        coef = _solve(gram + penalty[None], moment)
        residual = y - np.einsum("ck,ck->c", Z, coef[group])
        effects = np.bincount(pgroup, w * residual, design.n_period_groups) / np.maximum(
            np.bincount(pgroup, w, design.n_period_groups), 1e-9
        )
    fitted = effects[pgroup] + np.einsum("ck,ck->c", Z, coef[group])
    line_ss = np.maximum(squares - 2.0 * fitted * total + w * fitted**2, 0.0)  # sum over the cell's lines
    variance = _dispersion(np.bincount(group, line_ss, n_groups), np.bincount(group, w, n_groups), k, floor=0.5)
    return PartFit(coef[:, 1:], _price_information(gram, 1, variance))


# ---------------------------------------------------------------------------------------------------
# Partial pooling


@dataclass(frozen=True)
class Pooled:
    """Posterior mean (lists, terms) and covariance (lists, terms, terms); each list's prior mean (lists, terms),
    which depends on its covariates; and per segment the prior mean at average covariates and the covariance."""

    mean: np.ndarray
    cov: np.ndarray
    list_prior_mean: np.ndarray
    prior_mean: dict[str, np.ndarray]
    prior_cov: dict[str, np.ndarray]


def pool(
    part: PartFit, segment: np.ndarray, estimates_prior: np.ndarray, covariates: np.ndarray, iterations: int = 200
) -> Pooled:
    """Empirical-Bayes posterior of each list's price coefficients under a normal prior per segment whose mean
    depends on the list's covariates: a list is shrunk towards similar lists, not towards all of them.

    The prior (a linear map from covariates to a mean, and a covariance) is estimated by EM over the lists in
    ``estimates_prior``: posterior means and covariances in the E step; in the M step a least-squares fit of the
    posterior means on the covariates and the covariance of what it leaves. Information matrices may be
    singular (a list whose price never moved has none): only precisions are used. ``estimates_prior`` must hold
    at least one list (``ValueError`` otherwise: a prior of no lists is 0 / 0).
    """
    if not np.any(estimates_prior):
        raise ValueError("pool: no list to estimate the prior from (estimates_prior is all False)")
    score = np.einsum("gab,gb->ga", part.info, part.coef)
    n_terms = part.coef.shape[1]
    design = np.column_stack([np.ones(len(segment)), covariates])
    mean, cov = np.zeros_like(part.coef), np.zeros_like(part.info)
    list_prior = np.zeros_like(part.coef)
    prior_mean, prior_cov = {}, {}
    for name in np.unique(segment):
        rows = segment == name
        fit_rows = rows & estimates_prior
        if fit_rows.sum() < 10 * design.shape[1]:  # too few lists to estimate a prior: borrow every segment's
            fit_rows = estimates_prior
        W = design[fit_rows]
        coef, sigma = np.zeros((W.shape[1], n_terms)), np.eye(n_terms)
        for _ in range(iterations):
            post_mean, post_cov = _posterior(part.info[fit_rows], score[fit_rows], W @ coef, sigma)
            coef = np.linalg.lstsq(W, post_mean, rcond=None)[0]
            centred = post_mean - W @ coef
            sigma = (centred.T @ centred + post_cov.sum(axis=0)) / len(post_mean) + 1e-8 * np.eye(n_terms)
        list_prior[rows] = design[rows] @ coef
        mean[rows], cov[rows] = _posterior(part.info[rows], score[rows], list_prior[rows], sigma)
        prior_mean[str(name)], prior_cov[str(name)] = W.mean(axis=0) @ coef, sigma
    return Pooled(mean, cov, list_prior, prior_mean, prior_cov)


def _posterior(info: np.ndarray, score: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    """Posterior means and covariances of lists with information ``info``, ``score`` = info x estimate, and
    prior means ``mu`` (one row per list) and covariance ``sigma``."""
    precision = np.linalg.inv(sigma)
    cov = np.linalg.inv(info + precision[None])
    return np.einsum("gab,gb->ga", cov, score + mu @ precision), cov


# ---------------------------------------------------------------------------------------------------
# The fitted response


class PriceResponse:
    """Every list's posterior slope and each segment's pooled curve shape; fitted by ``fit`` on demand cells."""

    def fit(self, cells: pd.DataFrame, usual_price: pd.Series) -> PriceResponse:
        """Fit on ``cells`` (``pricing.demand`` cells); ``usual_price`` is indexed by (StockCode, segment)."""
        curved = build_design(cells, usual_price, quadratic=True)
        segment = curved.lists.get_level_values("segment").to_numpy()
        orders_per_period = np.bincount(curved.group, cells["orders"].to_numpy(), len(curved.lists)) / np.bincount(
            curved.group, minlength=len(curved.lists)
        )
        well_measured = orders_per_period >= MIN_PRIOR_ORDERS
        if not well_measured.any():
            most, periods = orders_per_period.max(initial=0.0), cells["period"].nunique()
            raise TooLittleDataError(
                f"too few orders to estimate the pooled price response: no price list averages {MIN_PRIOR_ORDERS:g} "
                f"orders a period over these {periods} periods (the most: {most:.1f})"
            )
        covariates = _similarity(usual_price.reindex(curved.lists).to_numpy(), segment)
        shape_prior = _pooled_total(curved, cells, segment, well_measured, covariates, n_terms=2)
        linear = build_design(cells, usual_price, quadratic=False)
        slopes = _pooled_total(linear, cells, segment, well_measured, covariates, n_terms=1)

        self.shape_ = {}
        for name in np.unique(segment):
            mean, _ = shape_prior.prior[name]
            rows = (segment == name) & well_measured
            squared = float(np.mean(shape_prior.mean[rows, 0] ** 2)) if rows.any() else 1.0
            self.shape_[str(name)] = float(np.clip(-mean[1] / max(squared, 1e-6), 0.0, 1.0))
        self.prior_ = {name: (float(m[0]), float(c[0, 0])) for name, (m, c) in slopes.prior.items()}

        slope, variance = slopes.mean[:, 0], slopes.cov[:, 0, 0]
        prior_mean = slopes.list_prior_mean[:, 0]  # what similar lists say: the pooled slope for this list
        prior_var = np.array([self.prior_[s][1] for s in segment])
        own_weight = np.clip(1.0 - variance / prior_var, 0.0, 1.0)
        identifiable = (slope < 0) & (-slope * np.sqrt(slopes.own_information) >= MIN_T)
        # A rising demand curve is not a demand response (the data confound it): serve the pooled slope.
        served = np.minimum(np.where(slope < 0, slope, prior_mean), 0.0)
        self.lists_ = pd.DataFrame(
            {
                "usual_price": usual_price.reindex(linear.lists).to_numpy(),
                "slope": served,
                "slope_sd": np.sqrt(np.where(slope < 0, variance, prior_var)),
                "pooled_slope": prior_mean,
                "own_weight": own_weight,
                "identifiable": identifiable,
                "season": slopes.orders_nuisance[:, 1],  # the list's own seasonal amplitude (orders, log scale)
                "trend": slopes.orders_nuisance[:, 2],
            },
            index=linear.lists,
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "lists_"):
            raise RuntimeError("PriceResponse is not fitted: call fit(cells, usual_price) first")

    def slopes(self, stockcodes: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Served slope and its posterior sd per (stock code, segment); the pooled prior for unknown lists."""
        self._check_fitted()
        keys = pd.MultiIndex.from_arrays([np.asarray(stockcodes), np.asarray(segments)])
        known = self.lists_[["slope", "slope_sd"]].reindex(keys).to_numpy()
        prior = np.array([self._prior(s) for s in np.asarray(segments)], dtype=np.float64).reshape(-1, 2)
        prior[:, 1] = np.sqrt(prior[:, 1])
        return np.where(np.isnan(known), prior, known).T

    def shape(self, segments: np.ndarray) -> np.ndarray:
        """The pooled curve shape ``k`` of each row's segment."""
        self._check_fitted()
        default = float(np.mean(list(self.shape_.values())))
        return np.array([self.shape_.get(s, default) for s in np.asarray(segments)], dtype=np.float64)

    def _prior(self, segment: str) -> tuple[float, float]:
        if segment in self.prior_:
            return self.prior_[segment]
        means, variances = zip(*self.prior_.values(), strict=True)
        return float(np.mean(means)), float(np.mean(variances))


def log_response(ratio: np.ndarray, slope: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """``log D`` at price ratios ``p / usual price``: ``log(1 + k b x) / k`` (``b x`` as ``k`` tends to 0), with
    demand falling to (nearly) nothing past the curve's choke price."""
    x = np.asarray(ratio, dtype=np.float64) - 1.0
    slope, shape = np.asarray(slope, dtype=np.float64), np.asarray(shape, dtype=np.float64)
    linear = slope * x
    with np.errstate(divide="ignore", invalid="ignore"):
        curved = np.log(np.maximum(1.0 + shape * linear, _CHOKE)) / shape
    return np.where(shape < 1e-6, linear, curved)


@dataclass(frozen=True)
class _Total:
    mean: np.ndarray  # (lists, n_terms): posterior of the list's total coefficients
    list_prior_mean: np.ndarray  # (lists, n_terms): the list's prior mean, from similar lists
    cov: np.ndarray
    prior: dict[str, tuple[np.ndarray, np.ndarray]]
    orders_nuisance: np.ndarray  # (lists, 3): the orders part's level, season and trend
    own_information: np.ndarray  # (lists,): the list's own information on its total slope (no prior)


def _similarity(usual_price: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """What makes lists similar for the prior: their price tier (log usual price), standardised within each
    segment. Not their volume: a list's mean sales rise with its own promotions, the more so the steeper its
    response, so volume would carry the outcome into the prior."""
    raw = np.log(usual_price)[:, None]
    out = np.zeros_like(raw)
    for name in np.unique(segment):
        rows = segment == name
        spread = raw[rows].std(axis=0)
        out[rows] = (raw[rows] - raw[rows].mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return out


def _pooled_total(
    design: Design,
    cells: pd.DataFrame,
    segment: np.ndarray,
    well_measured: np.ndarray,
    covariates: np.ndarray,
    n_terms: int,
) -> _Total:
    """Fit both parts, pool their price coefficients jointly and sum them: the list's total response."""
    orders = fit_orders(design, cells["orders"].to_numpy())
    size = fit_size(
        design, cells["lines"].to_numpy(), cells["log_quantity_sum"].to_numpy(), cells["log_quantity_sq_sum"].to_numpy()
    )
    # Pooled jointly: how a list's order count and order size respond to price are correlated across lists,
    # so what its sizes show also says something about its orders.
    zeros = np.zeros_like(orders.info)
    joint = PartFit(np.hstack([orders.coef, size.coef]), np.block([[orders.info, zeros], [zeros, size.info]]))
    pooled = pool(joint, segment, well_measured, covariates)
    total = np.hstack([np.eye(n_terms), np.eye(n_terms)])  # log D = orders part + size part
    return _Total(
        mean=pooled.mean @ total.T,
        list_prior_mean=pooled.list_prior_mean @ total.T,
        cov=total @ pooled.cov @ total.T,
        prior={s: (total @ pooled.prior_mean[s], total @ pooled.prior_cov[s] @ total.T) for s in pooled.prior_mean},
        orders_nuisance=orders.nuisance,
        own_information=_total_information(orders.info[:, 0, 0], size.info[:, 0, 0]),
    )


def _total_information(orders: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Information on the sum of two independently estimated slopes: 1 / (1 / orders + 1 / size)."""
    with np.errstate(divide="ignore"):
        return np.where((orders > 0) & (size > 0), 1.0 / (1.0 / orders + 1.0 / size), 0.0)
