"""Training configuration: tuning budgets and the options of one training run.

Everything here is a frozen dataclass built from CLI options (see ``train.py``); nothing is read or
created at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FAMILIES: tuple[str, ...] = ("torch", "xgboost", "lightgbm", "svr", "elasticnet")


@dataclass(frozen=True)
class Budget:
    """How much work tuning and training may do; ``smoke`` is for tests, ``full`` for a long run."""

    name: str
    synthetic_lines: int  # size of the generated data set when no --data is given
    synthetic_products: int
    tune_rows: int  # training rows sampled for each tuning trial (the final fit uses all of them)
    torch_trials: int
    torch_tune_epochs: int
    torch_max_epochs: int  # final fit; early stopping usually ends it sooner
    gbm_trials: int  # Optuna trials for XGBoost and LightGBM each
    gbm_max_trees: int
    svr_rows: int  # bounded subsample SVR trains on (kernel SVR is quadratic in rows)
    skopt_calls: int  # gp_minimize calls for SVR and ElasticNet each
    cv_folds: int
    elasticnet_rows: int  # rows used for ElasticNet's k-fold search


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        name="smoke",
        synthetic_lines=40_000,
        synthetic_products=150,
        tune_rows=8_000,
        torch_trials=2,
        torch_tune_epochs=3,
        torch_max_epochs=8,
        gbm_trials=2,
        gbm_max_trees=200,
        svr_rows=800,
        skopt_calls=5,
        cv_folds=3,
        elasticnet_rows=8_000,
    ),
    "standard": Budget(
        name="standard",
        synthetic_lines=540_000,
        synthetic_products=4_000,
        tune_rows=120_000,
        torch_trials=8,
        torch_tune_epochs=12,
        torch_max_epochs=40,
        gbm_trials=12,
        gbm_max_trees=1_500,
        svr_rows=3_000,
        skopt_calls=15,
        cv_folds=3,
        elasticnet_rows=100_000,
    ),
    "full": Budget(
        name="full",
        synthetic_lines=540_000,
        synthetic_products=4_000,
        tune_rows=300_000,
        torch_trials=30,
        torch_tune_epochs=25,
        torch_max_epochs=80,
        gbm_trials=40,
        gbm_max_trees=4_000,
        svr_rows=8_000,
        skopt_calls=40,
        cv_folds=5,
        elasticnet_rows=400_000,
    ),
}


@dataclass(frozen=True)
class TrainConfig:
    """Options of one ``train.py`` run."""

    budget: Budget
    data_path: Path | None = None  # None: generate synthetic data into data_dir
    families: tuple[str, ...] = FAMILIES
    seed: int = 42
    data_dir: Path = Path("data")
    reports_dir: Path = Path("reports")
    optuna_storage: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = "pricing"
    synthetic_lines: int | None = None  # override the budget's synthetic data size
    synthetic_products: int | None = None
    period: str = "W"  # demand cells per week ("W") or day ("D"); see docs/MODELS.md
    max_regression: float = 0.05  # refuse to publish a primary this much worse than the serving one (relative)
    force: bool = False  # publish even when promotion refuses the run (recorded in the models' metadata)
    date_format: str | None = None  # strftime format of the data's InvoiceDate text; None: decided from the column

    @property
    def n_synthetic_lines(self) -> int:
        """Size of the synthetic data set this run generates."""
        return self.synthetic_lines or self.budget.synthetic_lines

    @property
    def n_synthetic_products(self) -> int:
        """Number of products in the synthetic data set this run generates."""
        return self.synthetic_products or self.budget.synthetic_products
