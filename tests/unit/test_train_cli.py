"""train.py's command line: options become a TrainConfig, mistakes are named before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricing.config import BUDGETS, FAMILIES
from train import parse_args


def test_defaults_train_every_family_on_synthetic_data_with_the_standard_budget() -> None:
    config = parse_args([])
    assert config.budget == BUDGETS["standard"]
    assert config.families == FAMILIES
    assert config.data_path is None
    assert config.n_synthetic_lines == 540_000
    assert config.period == "W"


def test_options_are_carried_over(tmp_path: Path) -> None:
    data = tmp_path / "retail.csv"
    data.write_text("x")
    config = parse_args(
        ["--data", str(data), "--budget", "smoke", "--families", "xgboost, svr", "--seed", "3",
         "--optuna-storage", "sqlite:///o.db", "--s3-bucket", "b", "--synthetic-lines", "1000", "--period", "D"]
    )  # fmt: skip
    assert config.data_path == data and config.budget.name == "smoke" and config.seed == 3
    assert config.families == ("xgboost", "svr")
    assert config.optuna_storage == "sqlite:///o.db" and config.s3_bucket == "b"
    assert config.n_synthetic_lines == 1000 and config.period == "D"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--families", "torch,catboost"], "--families: unknown catboost"),
        (["--data", "no/such/file.csv"], "--data: no/such/file.csv does not exist"),
        (["--budget", "huge"], "invalid choice: 'huge'"),
        (["--period", "M"], "invalid choice: 'M'"),
    ],
)
def test_mistakes_are_named(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_run_whose_every_family_the_gate_refused_fails_with_one_line(monkeypatch, caplog) -> None:
    import pricing.training
    import train

    def refuse(config) -> None:
        raise pricing.training.NoModelPassedError("every family was refused by the gate: torch: test metrics: R² -1")

    monkeypatch.setattr(pricing.training, "run_training", refuse)
    assert train.main(["--budget", "smoke"]) == 3
    (record,) = [r for r in caplog.records if r.name == "train"]
    assert record.levelname == "ERROR" and "refused by the gate: torch" in record.getMessage()
    assert record.exc_info is None, "an expected failure is one line, not a traceback"


def test_promotion_options(capsys) -> None:
    assert parse_args([]).max_regression == 0.05 and parse_args([]).force is False
    config = parse_args(["--max-regression", "0.2", "--force"])
    assert config.max_regression == 0.2 and config.force is True
    assert parse_args(["--max-regression", "inf"]).max_regression == float("inf")


@pytest.mark.parametrize("value", ["-0.1", "nan"])
def test_max_regression_must_not_be_negative(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--max-regression", value])
    assert info.value.code == 2
    assert f"--max-regression: {float(value)} must be a number >= 0" in capsys.readouterr().err


def test_a_run_promotion_refused_fails_with_exit_4_and_one_line(monkeypatch, caplog) -> None:
    import pricing.training
    import train
    from pricing.promotion import PromotionRefusedError

    def refuse(config) -> None:
        raise PromotionRefusedError("promotion refused, the run is stored but not published: worse")

    monkeypatch.setattr(pricing.training, "run_training", refuse)
    assert train.main(["--budget", "smoke"]) == 4
    (record,) = [r for r in caplog.records if r.name == "train"]
    assert record.levelname == "ERROR" and record.getMessage().startswith("promotion refused")
    assert record.exc_info is None
