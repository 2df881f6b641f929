"""The bento ``make build`` leaves: its archive, models, Python requirements, source and Dockerfile.

No image is built here (``make image-test`` does that): these checks read the real archive and serve it
with a real ``bentoml serve`` after ``bentoml import`` into an empty BentoML home, as a user holding only
the file would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from pricing.local_server import free_port, stop_group, wait_ready
from tests.support import ROOT

BENTOML = str(Path(sys.executable).parent / "bentoml")
CUDA = re.compile(r"^(nvidia-|triton|cuda|cupy)", re.I)


@pytest.fixture(scope="module")
def archive(built_bento) -> dict[str, bytes | None]:
    """Every member of the exported archive: its bytes (None for folders)."""
    with tarfile.open(built_bento.archive, "r:xz") as tar:
        return {
            m.name.removeprefix("./"): tar.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def test_make_build_exports_the_archive_named_after_the_tag(built_bento) -> None:
    name, version = built_bento.tag.split(":")
    assert name == "pricing"
    assert built_bento.archive.name == f"pricing-{version}.bento" and built_bento.archive.stat().st_size > 0


def test_archive_holds_every_model_of_the_serving_order(archive, smoke_run) -> None:
    info = yaml.safe_load(archive["bento.yaml"])
    declared = sorted(m["tag"] for service in info["services"] for m in service["models"])
    assert declared == sorted(smoke_run.record["serving_order"])
    for tag in declared:
        name, version = tag.split(":")
        folder = f"models/{name}/{version}/"
        files = [path for path, data in archive.items() if path.startswith(folder) and data is not None]
        assert f"{folder}model.yaml" in files, tag
        assert len(files) > 1, f"{tag}: the archive has its model.yaml but none of the model's own files"


def test_requirements_pin_cpu_torch_and_no_cuda_package(archive) -> None:
    lines = [ln.strip() for ln in archive["env/python/requirements.txt"].decode().splitlines() if ln.strip()]
    names = [re.split(r"[=<>~!@\[ ]", ln, maxsplit=1)[0] for ln in lines]
    assert "torch==2.13.0+cpu" in lines
    assert "xgboost-cpu==3.2.0" in lines and "xgboost" not in names
    assert not [name for name in names if CUDA.match(name)]
    assert all("==" in ln for ln in lines), "every requirement is pinned"
    assert f"bentoml=={_installed('bentoml')}" in lines


def test_requirements_cover_every_project_dependency_the_service_imports(archive, smoke_run) -> None:
    probe = (
        "import json, sys, service\n"
        "from importlib.metadata import packages_distributions\n"
        "from pricing.registry import load_model\n"
        "for model in service.serving_order(service.SETTINGS.run_id): load_model(model)\n"
        "dists = packages_distributions()\n"
        "print(json.dumps(sorted({d for m in list(sys.modules) for d in dists.get(m.split('.')[0], [])})))\n"
    )
    env = {**os.environ, "PRICING_RUN_ID": smoke_run.record["run_id"]}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    imported = {name.lower() for name in json.loads(out.stdout.strip().splitlines()[-1])}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {re.split(r"[=<>~!\[ ]", dep, maxsplit=1)[0].lower() for dep in project}
    required = archive["env/python/requirements.txt"].decode()
    shipped = {re.split(r"[=<>~!\[ ]", ln, maxsplit=1)[0].lower() for ln in required.split()}
    assert imported & declared, "the probe found no project dependency"
    assert (imported & declared) - shipped == set(), "the service imports these, the image would lack them"


def test_image_build_reads_the_cpu_index(archive) -> None:
    info = yaml.safe_load(archive["bento.yaml"])
    envs = {e["name"]: e["value"] for e in info["envs"]}
    assert envs["UV_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    dockerfile = archive["env/docker/Dockerfile"].decode()
    assert "ARG UV_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile


def test_source_is_the_service_and_the_pricing_package_only(archive) -> None:
    files = [path for path, data in archive.items() if data is not None]
    shipped = {path.removeprefix("src/") for path in files if path.startswith("src/")}
    package = {str(p.relative_to(ROOT)) for p in (ROOT / "pricing").rglob("*") if p.is_file()}
    assert shipped == {"service.py", "bentofile.yaml"} | {p for p in package if "__pycache__" not in p}
    assert not [p for p in archive if re.search(r"(^|/)(tests|data|reports|\.venv|bentos)/|\.env|\.pem$|\.key$", p)]


def test_dockerfile_runs_a_slim_stage_as_the_bento_user(archive) -> None:
    dockerfile = archive["env/docker/Dockerfile"].decode()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    firsts = [stage.split("\n", 1)[0] for stage in stages]
    assert firsts == ["python:3.11-slim as base-container", "python:3.11-slim AS runtime"]
    runtime = stages[-1]
    installs = re.findall(r"apt-get install [^\n]*--no-install-recommends ([^\n\\]*)", runtime)
    assert [i.split() for i in installs] == [["libgomp1"]], "only bentofile.yaml's system packages"
    assert "build-essential" not in runtime and "git" not in runtime.split()
    assert "COPY --from=base-container /app/.venv /app/.venv" in runtime
    assert "\nUSER bentoml\n" in runtime
    assert 'ENTRYPOINT ["python", "-m", "pricing.cloud.container"]' in runtime


def test_imported_archive_serves_in_an_empty_bentoml_home(built_bento, smoke_run, tmp_path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "1"}
    env.pop("PRICING_RUN_ID", None)
    subprocess.run([BENTOML, "import", str(built_bento.archive)], env=env, check=True, capture_output=True)
    port, log_path = free_port(), tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [BENTOML, "serve", built_bento.tag, "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log_path, timeout_s=90, path="/ping")
        answer = httpx.post(f"{url}/price_sweep", json={"stockcode": "85123A", "bins": 5}, timeout=30)
        assert answer.status_code == 200, answer.text
        name, version = smoke_run.record["serving_order"][0].split(":")
        assert answer.json()["model"] == {"name": name, "version": version, "role": "primary"}
        page = httpx.get(f"{url}/ui", timeout=10)  # the web page's files travel in the bento
        assert page.status_code == 200 and "<title>Price curve" in page.text
        assert httpx.get(f"{url}/ui/chart.js", timeout=10).status_code == 200
    finally:
        stop_group(proc)


def _installed(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)
