"""The release gate on a real training record (the smoke run's) and on doctored copies of it."""

from __future__ import annotations

import json


def doctored(smoke_run, tmp_path, change) -> str:
    record = json.loads((smoke_run.reports_dir / "metrics.json").read_text())
    change(record)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(record))
    return str(path)


def primary(record: dict) -> dict:
    family = record["serving_order"][0].split(":")[0].removeprefix("pricing_")
    return next(m for m in record["models"] if m["family"] == family)


def test_the_smoke_run_passes(cli, smoke_run) -> None:
    run = cli("gate", "--metrics", str(smoke_run.reports_dir / "metrics.json"))
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1] == "gate passed"
    assert smoke_run.record["serving_order"][0] in run.out


def test_worse_than_the_baseline_fails(cli, smoke_run, tmp_path) -> None:
    path = doctored(smoke_run, tmp_path, lambda r: primary(r)["pricing"].update(median_vs_baseline=1.3))
    run = cli("gate", "--metrics", path)
    assert run.code == 1
    assert run.err.startswith("error: gate: ") and "1.30x the baseline's error (allowed 1.00x)" in run.err


def test_no_better_than_no_change_fails(cli, smoke_run, tmp_path) -> None:
    path = doctored(smoke_run, tmp_path, lambda r: primary(r)["heldout"].update(median_abs_error=0.9,
                                                                                no_change_error=0.5))  # fmt: skip
    run = cli("gate", "--metrics", path)
    assert (run.code, run.err.count("\n")) == (1, 1)
    assert "no better than no change (0.900 vs 0.500)" in run.err


def test_a_run_that_stored_nothing_fails(cli, smoke_run, tmp_path) -> None:
    run = cli("gate", "--metrics", doctored(smoke_run, tmp_path, lambda r: r.update(serving_order=[])))
    assert run.code == 1 and "stored no model" in run.err
