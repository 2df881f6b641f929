"""Train the pricing models and save them into the BentoML model store.

Usage:
    python train.py --budget smoke                          # small synthetic data set, ~1 minute
    python train.py                                         # default synthetic data, standard budget
    python train.py --data "Online Retail.xlsx" --budget standard
    python train.py --data export.csv --date-format "%d/%m/%Y %H:%M"   # when the file's date order is unclear
    python train.py --optuna-storage sqlite:///optuna.db    # share Optuna studies between processes
    python train.py --s3-bucket my-bucket                   # also upload features, reports and models
    python train.py --max-regression 0.1                    # allow a primary up to 10% worse than the serving one
    python train.py --force                                 # publish even if promotion refuses the run

Models land in $BENTOML_HOME (default ~/bentoml); `bentoml models list` shows them. A run serves only once it
is published: when its primary is not worse than the serving one by more than --max-regression on this run's
held-out data and keeps its optima inside the grid (pricing/promotion.py), or with --force.

Exit status: 0 published, 2 bad data, 3 every family refused by the gate, 4 promotion refused (the run's models
are stored but not published; the serving run is unchanged).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from pricing.config import BUDGETS, FAMILIES, TrainConfig


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Build the run's configuration from command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--data", type=Path, help="transactions file (.csv, .xlsx, .parquet); default: synthetic")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="standard", help="tuning budget")
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated model families (default: {','.join(FAMILIES)})"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed for data generation, splits and models")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="synthetic data and feature store")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="metrics and plots")
    parser.add_argument("--optuna-storage", help="Optuna storage URL (sqlite:///f.db, postgresql://..., journal:PATH)")
    parser.add_argument("--s3-bucket", help="upload features, reports and models to this existing bucket")
    parser.add_argument("--s3-prefix", default="pricing", help="key prefix for --s3-bucket (default: pricing)")
    parser.add_argument("--synthetic-lines", type=int, help="size of the generated data set")
    parser.add_argument("--synthetic-products", type=int, help="products in the generated data set")
    parser.add_argument("--period", choices=("W", "D"), default="W", help="demand per week (W, default) or per day (D)")
    parser.add_argument(
        "--max-regression",
        type=float,
        default=TrainConfig.max_regression,
        help="refuse to publish a primary whose held-out error is this much (relative) worse than the serving "
        "primary's (default: %(default)s; inf: no comparison)",
    )
    parser.add_argument(
        "--force", action="store_true", help="publish even when promotion refuses the run (recorded in its metadata)"
    )
    parser.add_argument(
        "--date-format",
        help="strftime format of --data's InvoiceDate text, e.g. '%%d/%%m/%%Y %%H:%%M' (default: ISO, or the slash "
        "order the whole column shows)",
    )
    args = parser.parse_args(argv)

    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        parser.error(f"--families: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(FAMILIES)}")
    if args.data is not None and not args.data.exists():
        parser.error(f"--data: {args.data} does not exist")
    if math.isnan(args.max_regression) or args.max_regression < 0:
        parser.error(f"--max-regression: {args.max_regression} must be a number >= 0 (inf: no comparison)")
    if args.date_format is not None and (args.data is None or "%" not in args.date_format):
        reason = "applies to --data only" if args.data is None else f"{args.date_format!r} has no % directive"
        parser.error(f"--date-format: {reason}; e.g. --date-format '%d/%m/%Y %H:%M' for 31/12/2010 08:26")
    return TrainConfig(
        budget=BUDGETS[args.budget],
        data_path=args.data,
        families=families,
        seed=args.seed,
        data_dir=args.data_dir,
        reports_dir=args.reports_dir,
        optuna_storage=args.optuna_storage,
        s3_bucket=args.s3_bucket,
        s3_prefix=args.s3_prefix,
        synthetic_lines=args.synthetic_lines,
        synthetic_products=args.synthetic_products,
        period=args.period,
        max_regression=args.max_regression,
        force=args.force,
        date_format=args.date_format,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options, run training, report failure as a one-line error."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)
    from pricing.data import DataError
    from pricing.promotion import PromotionRefusedError
    from pricing.training import NoModelPassedError, run_training

    try:
        run_training(config)
    except DataError as exc:
        logging.getLogger("train").error("data error: %s", exc)
        return 2
    except NoModelPassedError as exc:
        logging.getLogger("train").error("%s", exc)
        return 3
    except PromotionRefusedError as exc:
        logging.getLogger("train").error("%s", exc)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
