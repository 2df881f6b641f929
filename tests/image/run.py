"""Build the real image of the bento here (no Docker daemon, no registry) and run it the three ways it ships.

Usage:

    make image-test                       # build, run, check, clean up; figures in reports/image/
    .venv/bin/python tests/image/run.py --load-duration 90s

Steps, each timed:
  1. ``make build`` (training the smoke budget first when the model store is empty), then ``bentoml import`` of
     the archive into an empty BentoML home: the image is built from what a user would be handed.
  2. The base image (tests/image/harness.py: debootstrap, cached as an OCI archive under build/image/), then
     ``make containerize BACKEND=podman`` with what only this machine needs passed as options.
  3. The image itself: its user, no compiler or git, no test, data or secret files, no CUDA packages.
  4. SageMaker: ``podman run --memory 1g IMAGE serve`` on the host network bound to 127.0.0.1 only; /ping,
     sweeps, a CSV batch on /invocations, error statuses; then the project's Locust ramp against it, judged
     on failed requests and out-of-memory kills, with the worker's memory at ready and after the load.
     Then ``podman run IMAGE`` with no arguments: bentoml serve on port 3000.
  5. Lambda: ``podman run --read-only --user <not the image's> IMAGE lambda`` with the runtime API served
     here (tests/image/lambda_runtime.py): API Gateway v1/v2 and function URL events, the cold start.
  6. Clean-up: containers and the image removed (the base image stays cached), network rules compared.

Exit status: 0 when every check passed, 1 when one failed, 2 when the image could not be built or started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.image import harness
from tests.image.harness import ROOT, WORK, HarnessError, Podman, log, run
from tests.image.lambda_runtime import LambdaRuntimeApi, RuntimeApiError
from tests.lambda_events import EVENT_KINDS, answer_body, answer_header, http_api_event

SAGEMAKER_PORT = 8080
DEFAULT_PORT = 3000
MEMORY_LIMIT = "1g"  # SageMaker serverless's 1024 MB tier
MB = 1024 * 1024
READY_TIMEOUT_S = 120
LAMBDA_USER = "10001:10001"  # Lambda runs the image as a user of its own, not the image's USER
PROBE = Path(__file__).with_name("probe.py")
CSV_BATCH = (
    "StockCode,UnitPrice,InvoiceDate,CustomerID,Country\n"
    "{code},{price},2011-12-01 10:00:00,17850,United Kingdom\n"
    "{code},{price2},2011-12-02 11:30:00,,France\n"
)


@dataclass
class Report:
    """Checks and figures of one run."""

    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    checks: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: str = "") -> None:
        """Record one check; log failures as they happen."""
        self.checks.append({"check": name, "passed": bool(passed), "detail": detail})
        if not passed:
            log(f"FAILED: {name}: {detail}")

    @property
    def passed(self) -> bool:
        """Whether every check passed (and there was at least one)."""
        return bool(self.checks) and all(c["passed"] for c in self.checks)


# ---------------------------------------------------------------------------------------------------
# Bento and image


def make(*targets: str, env: dict[str, str], timeout: float = 1200) -> str:
    """Run make in the repository; return its stdout."""
    return run(["make", "--no-print-directory", *targets], env=env, cwd=ROOT, timeout=timeout)


def build_bento(report: Report) -> tuple[str, Path]:
    """``make build`` with the developer's model store (trained first if empty); return the tag and archive."""
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "1"}
    python = str(harness.BIN / "python")
    if subprocess.run([python, "-m", "pricing.registry"], cwd=ROOT, env=env, capture_output=True).returncode:
        log("no trained models in the store: training the smoke budget first (about a minute)")
        run([python, "train.py", "--budget", "smoke"], cwd=ROOT, env=env, timeout=900)
    started = time.monotonic()
    out = make("build", env=env)
    report.figures["make_build_s"] = round(time.monotonic() - started, 1)
    tag, archive = out.strip().splitlines()[-1].removeprefix("built ").split(": ")
    archive_path = ROOT / archive
    report.figures["bento"] = {"tag": tag, "archive": archive, "archive_mb": round(archive_path.stat().st_size / MB, 2)}
    return tag, archive_path


def import_archive(archive: Path) -> dict[str, str]:
    """``bentoml import`` the archive into an empty BentoML home; return the environment that uses that home."""
    home = WORK / "bentoml-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "1"}
    run([str(harness.BIN / "bentoml"), "import", str(archive)], env=env)
    return env


def containerize(podman: Podman, tag: str, image: str, bento_env: dict[str, str], report: Report) -> None:
    """``make containerize BACKEND=podman`` with this machine's needs as options; time it and size the image."""
    ca_bundle = harness.host_ca_bundle()
    with harness.cpu_index() as index_url:
        options = [
            f"--image-tag={image}",
            "--opt=network=host",
            "--opt=pull-never",
            f"--opt=volume={ca_bundle}:{harness.HOST_CA_BUNDLE}:ro",
            f"--opt=build-arg=UV_EXTRA_INDEX_URL={index_url}",
        ]
        started = time.monotonic()
        make("containerize", "BACKEND=podman", f"BENTO={tag}", f"CONTAINERIZE_ARGS={' '.join(options)}",
             env={**podman.env, **bento_env}, timeout=1800)  # fmt: skip
    report.figures["containerize_s"] = round(time.monotonic() - started, 1)
    report.figures["image_mb"] = round(podman.image_size(image) / 1e6)
    report.figures["base_image_mb"] = round(podman.image_size(harness.BASE_IMAGE) / 1e6)


def inspect_image(podman: Podman, image: str, report: Report) -> None:
    """Check the image: its user, no compiler or git, no test, data or secret files, no CUDA packages."""
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    report.check("image runs as a non-root user", user not in ("", "root", "0"), f"USER {user or '(none)'}")
    extra_cas = [p.read_text().strip() for p in sorted(harness.HOST_EXTRA_CAS.glob("*.crt"))]
    out = podman("run", "--rm", "--network", "host", "--volume", f"{PROBE}:/tmp/probe.py:ro",
                 "--entrypoint", "python", image, "/tmp/probe.py", json.dumps(extra_cas))  # fmt: skip
    facts = json.loads(out.strip().splitlines()[-1])
    report.figures["image_contents"] = facts
    report.check("the service user is not root", facts["uid"] != 0, f"uid {facts['uid']}")
    report.check("no compiler, make or git in the image", not facts["tools"], ", ".join(facts["tools"]))
    report.check("no CUDA, nvidia or triton package", not facts["cuda_packages"] and facts["torch_cuda"] is None,
                 f"{facts['cuda_packages']}, torch.version.cuda={facts['torch_cuda']}")  # fmt: skip
    report.check("no test, data or report files", not facts["unwanted_files"], ", ".join(facts["unwanted_files"][:10]))
    report.check("no secrets or credentials", not facts["secrets"], ", ".join(facts["secrets"][:10]))
    report.check("the build machine's extra CA certificates are not in the image", not facts["build_cas"],
                 f"{facts['build_cas']} found")  # fmt: skip
    models = facts["models"]
    complete = bool(models) and not any("MISSING" in m for m in models)
    report.check("every model bento.yaml lists is in the image", complete, ", ".join(models))


# ---------------------------------------------------------------------------------------------------
# Containers


@contextlib.contextmanager
def container(podman: Podman, name: str, image: str, *args: str, options: list[str]) -> Iterator[int]:
    """Run a detached container on the host network; yield its main process id; stop and remove it after."""
    podman.remove_container(name)
    podman("run", "--detach", "--name", name, "--network", "host", "--memory", MEMORY_LIMIT,
           "--memory-swap", MEMORY_LIMIT, *options, image, *args)  # fmt: skip
    try:
        yield int(podman("inspect", "--format", "{{.State.Pid}}", name).strip())
    finally:
        (WORK / f"{name}.log").write_text(podman.logs(name))
        podman.remove_container(name)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants (as seen from the host)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def worker_rss_mb(pid: int) -> float:
    """RSS of the BentoML worker process under ``pid`` (the largest child: it holds the models)."""
    sizes = []
    for proc in process_tree(pid)[1:]:
        with contextlib.suppress(psutil.NoSuchProcess):
            sizes.append(proc.memory_info().rss)
    return round(max(sizes, default=0) / MB, 1)


def tree_rss_mb(pid: int) -> float:
    """RSS summed over the container's processes (pages shared between them counted in each)."""
    total = 0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return round(total / MB, 1)


def cgroup_memory(podman: Podman, name: str) -> dict[str, float]:
    """The container's memory cgroup: usage, peak usage and out-of-memory kills."""
    cid = podman("inspect", "--format", "{{.Id}}", name).strip()
    memory_root = Path("/sys/fs/cgroup/memory")
    folders = [p for p in memory_root.rglob(f"*{cid}*") if p.joinpath("memory.usage_in_bytes").exists()]
    if not folders:
        raise HarnessError(f"no memory cgroup found for container {name}")
    folder = min(folders, key=lambda p: len(p.parts))
    oom = dict(line.split() for line in folder.joinpath("memory.oom_control").read_text().splitlines())
    return {
        "usage_mb": round(int(folder.joinpath("memory.usage_in_bytes").read_text()) / MB, 1),
        "peak_mb": round(int(folder.joinpath("memory.max_usage_in_bytes").read_text()) / MB, 1),
        "limit_mb": round(int(folder.joinpath("memory.limit_in_bytes").read_text()) / MB, 1),
        "oom_kills": int(oom.get("oom_kill", 0)),
    }


def listening(pids: set[int]) -> list[str]:
    """TCP addresses these processes listen on."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            found.append(f"{conn.laddr.ip}:{conn.laddr.port}")
    return sorted(set(found))


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool], log: Path) -> None:
    """Poll ``check`` until true; raise HarnessError if ``alive`` turns false or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if not alive():
            raise HarnessError(f"{what}: the container stopped (its output goes to {log})")
        if time.monotonic() > deadline:
            raise HarnessError(f"{what}: not within {timeout_s:.0f} s (its output goes to {log})")
        time.sleep(0.1)


def port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` of 127.0.0.1 (nor on all addresses)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


# ---------------------------------------------------------------------------------------------------
# Default mode and SageMaker mode


def default_mode(podman: Podman, image: str, report: Report) -> None:
    """``IMAGE`` with no arguments: bentoml serve on port 3000."""
    url = f"http://127.0.0.1:{DEFAULT_PORT}"
    if not port_free(DEFAULT_PORT):
        raise HarnessError(f"port {DEFAULT_PORT} is already in use on this machine: the default mode needs it")
    name = f"pricing-image-test-default-{os.getpid()}"
    started = time.monotonic()
    with container(podman, name, image, options=["--env", "BENTOML_HOST=127.0.0.1"]):
        wait_until(lambda: _answers(f"{url}/readyz"), READY_TIMEOUT_S, "default mode: GET /readyz 200",
                   alive=lambda: podman.running(name), log=WORK / f"{name}.log")  # fmt: skip
        report.figures["default_run_to_readyz_s"] = round(time.monotonic() - started, 2)
        sweep = httpx.get(f"{url}/v1/predict-price/{report.figures['stockcode']}", timeout=30)
        report.check("docker run IMAGE: bentoml serve answers on port 3000", sweep.status_code == 200, sweep.text[:200])


def sagemaker_mode(podman: Podman, image: str, report: Report, load_duration: str) -> None:
    """``IMAGE serve`` in 1 GiB: the contract, then the Locust ramp."""
    url = f"http://127.0.0.1:{SAGEMAKER_PORT}"
    if not port_free(SAGEMAKER_PORT):
        raise HarnessError(f"port {SAGEMAKER_PORT} is already in use on this machine: SageMaker mode needs it")
    name = f"pricing-image-test-sagemaker-{os.getpid()}"
    started = time.monotonic()
    with container(podman, name, image, "serve", options=["--env", "BENTOML_HOST=127.0.0.1"]) as pid:
        wait_until(lambda: _answers(f"{url}/ping"), READY_TIMEOUT_S, "SageMaker mode: GET /ping 200",
                   alive=lambda: podman.running(name), log=WORK / f"{name}.log")  # fmt: skip
        report.figures["sagemaker_run_to_ping_s"] = round(time.monotonic() - started, 2)
        report.figures["sagemaker_worker_rss_at_ready_mb"] = worker_rss_mb(pid)
        report.figures["sagemaker_cgroup_at_ready"] = cgroup_memory(podman, name)
        addresses = listening({p.pid for p in process_tree(pid)})
        loopback = all(a.startswith(("127.", "[::1]", "::1")) for a in addresses)
        report.check("SageMaker mode serves on 127.0.0.1:8080 and listens on the loopback only",
                     loopback and f"127.0.0.1:{SAGEMAKER_PORT}" in addresses, ", ".join(addresses))  # fmt: skip
        check_http_contract(url, report)
        report.figures["sagemaker_worker_rss_all_models_loaded_mb"] = worker_rss_mb(pid)
        load_test(url, report, load_duration)
        report.figures["sagemaker_worker_rss_after_load_mb"] = worker_rss_mb(pid)
        report.figures["sagemaker_all_processes_rss_after_load_mb"] = tree_rss_mb(pid)
        memory = report.figures["sagemaker_cgroup_after_load"] = cgroup_memory(podman, name)
        report.check("no out-of-memory kill in the 1 GiB container", memory["oom_kills"] == 0,
                     f"{memory['oom_kills']} kills, peak {memory['peak_mb']} of {memory['limit_mb']} MB")  # fmt: skip
        report.check("the container is still running after the load", podman.running(name))


def check_http_contract(url: str, report: Report) -> None:
    """SageMaker's routes and the native ones, with their error statuses."""
    client = httpx.Client(base_url=url, timeout=30)
    product = client.get("/products", params={"limit": 1}).json()["products"][0]
    main = next(lst for lst in product["lists"] if lst["segment"] == product["main_segment"])
    code, lo, hi = product["stockcode"], main["price_min"], main["price_max"]
    report.figures["stockcode"] = code
    report.check("GET /ping 200", client.get("/ping").status_code == 200)
    check_models_loaded(lambda: client.get("/model").json(), "SageMaker mode", report)
    sweep = client.post("/invocations", json={"stockcode": code, "bins": 20})
    body = sweep.json() if sweep.status_code == 200 else {}
    report.check("POST /invocations (JSON sweep) 200 with a 20-price curve",
                 len(body.get("curve", [])) == 20 and body.get("model", {}).get("role") == "primary",
                 sweep.text[:300])  # fmt: skip
    native = client.post("/price_sweep", json={"stockcode": code, "bins": 20})
    report.check("POST /price_sweep gives the same curve", native.status_code == 200 and
                 native.json().get("curve") == body.get("curve"), native.text[:300])  # fmt: skip
    csv = CSV_BATCH.format(code=code, price=lo, price2=hi)
    batch = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    predictions = batch.json().get("predictions", []) if batch.status_code == 200 else []
    report.check("POST /invocations (text/csv, 2 rows) 200 with 2 predictions", len(predictions) == 2, batch.text[:300])
    legacy = client.get(f"/v1/predict-price/{code}", params={"num_price_bins": 10})
    report.check("GET /v1/predict-price 200 with 10 rows", legacy.status_code == 200 and len(legacy.json()) == 10,
                 legacy.text[:200])  # fmt: skip
    unknown = client.post("/invocations", json={"stockcode": "NO-SUCH-PRODUCT"})
    report.check("unknown product: 404", unknown.status_code == 404, unknown.text[:200])
    bad = client.post("/invocations", json={"stockcode": code, "bins": 1})
    report.check("bins out of bounds: 400 naming the field", bad.status_code == 400 and "bins" in bad.text,
                 bad.text[:200])  # fmt: skip


def check_models_loaded(fetch: Callable[[], dict[str, Any]], mode: str, report: Report) -> None:
    """Wait for the fallbacks' background loading; check every model of the bento loaded (GET /model)."""
    expected = len(report.figures["image_contents"]["models"])
    deadline = time.monotonic() + READY_TIMEOUT_S
    state = fetch()
    while state["loading"] and time.monotonic() < deadline:
        time.sleep(0.5)
        state = fetch()
    loaded = [f"{m['name']}:{m['version']}" for m in state["models"]]
    complete = len(loaded) == expected and not state["not_loaded"]
    report.check(f"{mode}: every model of the serving order loaded", complete,
                 f"loaded {loaded}; not loaded {state['not_loaded']}; still loading {state['loading']}")  # fmt: skip


def load_test(url: str, report: Report, duration: str) -> None:
    """The project's Locust ramp against the container; judged on failed requests (latency is reported)."""
    reports_dir = ROOT / "reports" / "image" / "loadtest"
    command = [str(harness.BIN / "python"), "loadtests/run.py", "--host", url, "--users", "30", "--spawn-rate", "2",
               "--duration", duration, "--reports-dir", str(reports_dir)]  # fmt: skip
    log(" ".join(command))
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    (WORK / "loadtest.log").write_text(proc.stdout + proc.stderr)
    summary_path = reports_dir / "summary.json"
    if proc.returncode == 2 or not summary_path.exists():
        report.check("the load test ran", False, f"exit {proc.returncode}; see {WORK / 'loadtest.log'}")
        return
    summary = json.loads(summary_path.read_text())
    whole, hold = summary["whole_run"], summary["hold_phase"] or {}
    report.figures["load"] = {
        "command": " ".join(command[1:]),
        "requests": whole["requests"],
        "failures": whole["failures"],
        "rps": whole["rps"],
        "p50_ms": whole["p50_ms"],
        "p95_ms": whole["p95_ms"],
        "hold_p95_ms": hold.get("p95_ms"),
        "slos": {s["name"]: s["passed"] for s in summary["slos"]},
    }
    report.check("Locust ramp: requests answered, none failed", whole["requests"] > 0 and whole["failures"] == 0,
                 f"{whole['failures']} of {whole['requests']} failed")  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Lambda mode


def lambda_mode(podman: Podman, image: str, report: Report) -> None:
    """``IMAGE lambda`` read-only, as another user, driven through the runtime API with API Gateway events."""
    name = f"pricing-image-test-lambda-{os.getpid()}"
    with LambdaRuntimeApi() as api:
        options = ["--read-only", "--user", LAMBDA_USER, "--env", f"AWS_LAMBDA_RUNTIME_API={api.address}",
                   "--env", "AWS_LAMBDA_FUNCTION_NAME=pricing", "--env", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024",
                   "--env", "AWS_REGION=eu-west-1"]  # fmt: skip
        started = time.monotonic()
        with container(podman, name, image, "lambda", options=options) as pid:
            init_done = api.wait_for_first_poll(READY_TIMEOUT_S, alive=lambda: podman.running(name))
            product, first_event_s = _lambda_product(api)
            report.figures["lambda_cold_start"] = {
                "run_to_init_done_s": round(init_done - started, 2),
                "run_to_first_answer_s": round(time.monotonic() - started, 2),
                "first_event_s": round(first_event_s, 3),
            }
            report.check("Lambda mode: no process listens on a port (no background server)",
                         not listening({p.pid for p in process_tree(pid)}))  # fmt: skip
            model_event = http_api_event("GET", "/model")
            check_models_loaded(lambda: json.loads(answer_body(api.invoke(model_event, 60).payload)), "Lambda mode",
                                report)  # fmt: skip
            for kind, build in EVENT_KINDS.items():
                lambda_contract(api, kind, build, product, report)
            report.figures["lambda_all_processes_rss_mb"] = tree_rss_mb(pid)


def _lambda_product(api: LambdaRuntimeApi) -> tuple[str, float]:
    """The first event (a product listing): a stock code to price, and how long the event took."""
    outcome = api.invoke(http_api_event("GET", "/products", query={"limit": "1"}), timeout_s=READY_TIMEOUT_S)
    if outcome.kind != "response" or outcome.payload.get("statusCode") != 200:
        raise HarnessError(f"Lambda mode: GET /products failed: {json.dumps(outcome.payload)[:2000]}")
    return json.loads(answer_body(outcome.payload))["products"][0]["stockcode"], outcome.seconds


def lambda_contract(api: LambdaRuntimeApi, kind: str, build: Callable[..., dict], code: str, report: Report) -> None:
    """A sweep, a 404, a 400, /ping, and a base64 CSV batch through one kind of event."""

    def send(*args: Any, **kwargs: Any) -> dict[str, Any]:
        outcome = api.invoke(build(*args, **kwargs), timeout_s=60)
        if outcome.kind != "response":
            raise RuntimeApiError(f"{kind}: the handler raised: {json.dumps(outcome.payload)[:2000]}")
        return outcome.payload

    json_type = {"Content-Type": "application/json"}
    sweep = send("POST", "/price_sweep", body=json.dumps({"stockcode": code, "bins": 12}).encode(), headers=json_type)
    curve = json.loads(answer_body(sweep)).get("curve", []) if sweep["statusCode"] == 200 else []
    report.check(f"Lambda {kind}: sweep 200, JSON, 12 prices, not base64",
                 len(curve) == 12 and not sweep["isBase64Encoded"]
                 and (answer_header(sweep, "content-type") or "").startswith("application/json"),
                 json.dumps(sweep)[:300])  # fmt: skip
    missing = send("GET", "/v1/predict-price/NO-SUCH-PRODUCT")
    report.check(f"Lambda {kind}: unknown product 404", missing["statusCode"] == 404
                 and b"NO-SUCH-PRODUCT" in answer_body(missing), json.dumps(missing)[:300])  # fmt: skip
    bad = send("GET", f"/v1/predict-price/{code}", query={"num_price_bins": "1"})
    report.check(f"Lambda {kind}: bad bins 400 naming the field", bad["statusCode"] == 400
                 and b"num_price_bins" in answer_body(bad), json.dumps(bad)[:300])  # fmt: skip
    ping = send("GET", "/ping")
    report.check(f"Lambda {kind}: /ping 200", ping["statusCode"] == 200, json.dumps(ping)[:200])
    csv = CSV_BATCH.format(code=code, price=1.0, price2=2.0).encode()
    batch = send("POST", "/invocations", body=csv, headers={"Content-Type": "text/csv"}, binary=True)
    rows = json.loads(answer_body(batch)).get("predictions", []) if batch["statusCode"] == 200 else []
    report.check(f"Lambda {kind}: base64 CSV batch 200 with 2 predictions", len(rows) == 2, json.dumps(batch)[:300])


# ---------------------------------------------------------------------------------------------------
# The run


def network_rules() -> str:
    """The machine's iptables rules (empty when iptables is not installed)."""
    if shutil.which("iptables-save") is None:
        return ""
    return "\n".join(line for line in run(["iptables-save"]).splitlines() if not line.startswith(("#", ":")))


def render(report: Report) -> str:
    """The run as Markdown."""
    lines = [f"# Image test: {'PASS' if report.passed else 'FAIL'}", "",
             f"Started {report.started:%Y-%m-%d %H:%M} UTC; figures:", "", "```", json.dumps(report.figures, indent=2),
             "```", "", "| check | result | detail |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {c['check']} | {'ok' if c['passed'] else 'FAILED'} | {c['detail'][:160]} |" for c in report.checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every step; print and write the report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-duration", default="60s", help="whole Locust run, ramp included (default 60s)")
    parser.add_argument("--keep-image", action="store_true", help="keep the image afterwards, to inspect it")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    report, started = Report(), time.monotonic()
    report.figures["date"] = f"{report.started:%Y-%m-%d %H:%M} UTC"
    gib = psutil.virtual_memory().total / 2**30
    report.figures["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, {gib:.0f} GiB, {platform.system()}"
    out = ROOT / "reports" / "image"
    out.mkdir(parents=True, exist_ok=True)
    podman = Podman()
    image = ""
    rules_before = ""
    status = 2
    try:
        harness.ensure_tools()
        rules_before = network_rules()
        tag, archive = build_bento(report)
        bento_env = import_archive(archive)
        step = time.monotonic()
        report.figures["base_image"] = harness.ensure_base_image(podman)
        report.figures["base_image_s"] = round(time.monotonic() - step, 1)
        image = f"localhost/pricing-image-test:{tag.split(':')[1]}"
        containerize(podman, tag, image, bento_env, report)
        inspect_image(podman, image, report)
        sagemaker_mode(podman, image, report, args.load_duration)
        default_mode(podman, image, report)
        lambda_mode(podman, image, report)
        status = 0 if report.passed else 1
    except (HarnessError, RuntimeApiError, subprocess.TimeoutExpired) as exc:
        log(f"cannot complete the image test: {exc}")
        report.check("the image test ran to the end", False, str(exc)[:2000])
    finally:
        if image and podman.has_image(image) and not args.keep_image:
            podman("rmi", "--force", image)
            with contextlib.suppress(HarnessError):
                podman("image", "prune", "--force")
        report.check("network rules unchanged", network_rules() == rules_before)
        report.figures["wall_s"] = round(time.monotonic() - started, 1)
        (out / "summary.json").write_text(json.dumps({"checks": report.checks, "figures": report.figures}, indent=2))
        (out / "summary.md").write_text(render(report))
        print(render(report))
    return 0 if report.passed else (2 if status == 2 else 1)


if __name__ == "__main__":
    sys.exit(main())
