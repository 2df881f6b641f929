"""Shared fixtures.

The whole session runs against one temporary BentoML home (set before anything imports bentoml), so
no test touches the developer's ~/bentoml. Local stand-ins replace external services: a moto server for
AWS (never a real account). ``smoke_run`` runs the real ``train.py --budget smoke`` once per session and
is shared by the model-behaviour and end-to-end tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from pricing.local_server import stop_group
from tests.support import ROOT, free_port

# The property tests (Hypothesis): a fixed seed and no example database, so every run tries the same examples;
# no deadline, as the machine is shared and a slow example is not a failure.
settings.register_profile(
    "pricing",
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("pricing")

_BENTOML_HOME = Path(tempfile.mkdtemp(prefix="pricing-test-bentoml-"))
os.environ["BENTOML_HOME"] = str(_BENTOML_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "1"

MOTO_START_DEADLINE_S = 20.0
SMOKE_TRAIN_TIMEOUT_S = 600
# The session's trainings share one model store, in whatever order the selected tests need them: each is
# published without comparing it with the one trained before it (promotion's own tests compare).
NO_COMPARISON = ("--max-regression", "inf")
_MARKERS = ("unit", "data", "model", "integration", "cloud")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the name of its folder (unit, data, model, integration)."""
    for item in items:
        folder = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if folder in _MARKERS:
            item.add_marker(folder)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's temporary BentoML home."""
    shutil.rmtree(_BENTOML_HOME, ignore_errors=True)


def _answers_http(url: str) -> bool:
    """Return True if anything at `url` answers HTTP, whatever the status."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a moto server (all AWS services on one port) on 127.0.0.1; yield its endpoint URL."""
    executable = Path(sys.executable).parent / "moto_server"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # A file, not a pipe: moto logs every request to stderr and a full pipe would stall the server.
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.monotonic()
        while not _answers_http(endpoint):
            if proc.poll() is not None or time.monotonic() - started > MOTO_START_DEADLINE_S:
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "not answering"
                pytest.fail(
                    f"moto_server on {endpoint} {state} after {time.monotonic() - started:.1f} s; "
                    f"its output:\n{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        yield endpoint
    finally:
        stop_group(proc, timeout_s=10)


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point every boto3 client at the moto server with dummy credentials; return the endpoint URL."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_aws_env(moto_server, tmp_path).items():
        monkeypatch.setenv(name, value)
    return moto_server


def fake_aws_env(endpoint: str, scratch: Path) -> dict[str, str]:
    """Environment variables that point boto3 at a local endpoint with dummy credentials and no ~/.aws."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": endpoint,
        "PRICING_S3_ENDPOINT_URL": endpoint,
    }


@dataclass(frozen=True)
class SmokeRun:
    """Outputs of one real ``train.py --budget smoke`` run."""

    returncode: int
    output: str
    data_dir: Path
    reports_dir: Path
    bucket: str
    endpoint: str

    @property
    def record(self) -> dict:
        """The run record train.py wrote to metrics.json."""
        return json.loads((self.reports_dir / "metrics.json").read_text())


@pytest.fixture(scope="session")
def smoke_run(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """Train every family on a small synthetic data set into the session's model store, uploading to moto S3."""
    import boto3

    work = tmp_path_factory.mktemp("smoke")
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")}
    env.update(fake_aws_env(moto_server, work))
    bucket = "pricing-smoke-artifacts"
    boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    command = [
        sys.executable, "train.py", "--budget", "smoke", "--data-dir", str(work / "data"),
        "--reports-dir", str(work / "reports"), "--s3-bucket", bucket, "--s3-prefix", "smoke",
        *NO_COMPARISON,
    ]  # fmt: skip
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SMOKE_TRAIN_TIMEOUT_S, check=False
    )
    run = SmokeRun(
        returncode=proc.returncode,
        output=proc.stdout + proc.stderr,
        data_dir=work / "data",
        reports_dir=work / "reports",
        bucket=bucket,
        endpoint=moto_server,
    )
    assert run.returncode == 0, f"train.py --budget smoke failed:\n{run.output[-5000:]}"
    return run


TWIN_RATIOS = (0.85, 1.2)  # the twins' optimum / value price: the first is far more price-sensitive


@pytest.fixture(scope="session")
def twin_run(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """``train.py --budget smoke`` on a user file whose two best sellers are twins but for their price
    sensitivity (``GeneratorConfig.twins``), with its ground truth beside it, into the session's model store."""
    from pricing.synthetic import GeneratorConfig, generate_transactions

    work = tmp_path_factory.mktemp("twins")
    data = generate_transactions(40_000, 150, seed=42, config=GeneratorConfig(twins=TWIN_RATIOS))
    data.transactions.to_csv(work / "twins.csv.gz", index=False)
    data.truth.to_csv(work / "ground_truth.csv", index=False)
    command = [
        sys.executable, "train.py", "--data", str(work / "twins.csv.gz"), "--budget", "smoke",
        "--data-dir", str(work / "data"), "--reports-dir", str(work / "reports"), *NO_COMPARISON,
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SMOKE_TRAIN_TIMEOUT_S, check=False)
    run = SmokeRun(proc.returncode, proc.stdout + proc.stderr, work / "data", work / "reports", "", "")
    assert run.returncode == 0, f"train.py on the twins failed:\n{run.output[-5000:]}"
    return run


@dataclass(frozen=True)
class TinyAssets:
    """A small synthetic data set carried through cleaning, demand cells, split and a fitted pipeline."""

    demand: object  # pricing.demand.DemandData
    split: object  # pricing.features.Split
    pipeline: object  # pricing.features.FeaturePipeline
    context: object  # pricing.sweep.ContextStore
    truth: object  # pd.DataFrame


@pytest.fixture(scope="session")
def tiny() -> TinyAssets:
    """Real pipeline objects built from 20,000 synthetic lines over 60 products (a few seconds)."""
    from pricing.data import clean_transactions
    from pricing.demand import build_demand
    from pricing.features import FeaturePipeline, split_by_time
    from pricing.sweep import ContextStore
    from pricing.synthetic import generate_transactions

    raw = generate_transactions(20_000, 60, seed=7)
    clean, _ = clean_transactions(raw.transactions)
    demand = build_demand(clean)
    split = split_by_time(demand.cells)
    pipeline = FeaturePipeline().fit(split.train)
    return TinyAssets(demand, split, pipeline, ContextStore.build(demand.cells, demand.lists, pipeline), raw.truth)


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[Path]:
    """An empty model store of the test's own (the session's holds the smoke runs), its directory; the
    session's store is active again afterwards."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    session = BentoMLContainer.model_store.get()
    directory = tmp_path / "models"
    directory.mkdir()
    BentoMLContainer.model_store.set(ModelStore(directory))
    try:
        yield directory
    finally:
        BentoMLContainer.model_store.set(session)


@dataclass(frozen=True)
class BuiltBento:
    """What ``make build`` made of the smoke run."""

    tag: str
    archive: Path  # the exported .bento


@pytest.fixture(scope="session")
def built_bento(smoke_run: SmokeRun, tmp_path_factory: pytest.TempPathFactory) -> BuiltBento:
    """Run the real ``make build`` on the smoke run's models, exporting into a temporary folder."""
    bentos = tmp_path_factory.mktemp("bentos")
    env = {**os.environ, "PRICING_RUN_ID": smoke_run.record["run_id"], "BENTOML_DO_NOT_TRACK": "1"}
    proc = subprocess.run(
        ["make", "--no-print-directory", "build", f"BENTOS={bentos}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"make build failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    tag = proc.stdout.strip().splitlines()[-1].split()[1].rstrip(":")
    name, version = tag.split(":")
    return BuiltBento(tag, bentos / f"{name}-{version}.bento")
