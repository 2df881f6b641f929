"""Schemathesis over the served OpenAPI document: a real `bentoml serve` of the smoke-trained models, every phase
Schemathesis supports for it (examples, coverage, fuzzing; the stateful phase needs links, which the document
has none of), every check, a fixed seed. No 5xx, every status and body as the document says.

``make test`` runs a short pass (test_schemathesis_finds_nothing, about half a minute); ``make fuzz`` the same
with more examples, against the current model store, reports under reports/fuzz/:

    python -m tests.integration.test_fuzz --max-examples 500 --reports-dir reports/fuzz
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.support import ROOT, bentoml_serve

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261203
TEST_EXAMPLES = 25  # per operation and phase: about 600 requests, 30 s on a quiet 2-core machine
FUZZ_EXAMPLES = 500
RUN_TIMEOUT_S = 3600


def run_schemathesis(url: str, reports: Path, *, max_examples: int, seed: int) -> subprocess.CompletedProcess[str]:
    """`schemathesis run URL/docs.json` with every check; JUnit and NDJSON reports into ``reports``."""
    command = [
        SCHEMATHESIS, "--config-file", str(CONFIG), "run", f"{url}/docs.json", "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(max_examples), "--seed", str(seed),
        "--report", "junit,ndjson", "--report-dir", str(reports), "--no-color", "--request-timeout", "60",
    ]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def tally(output: str) -> tuple[int, int]:
    """(test cases generated, of which passed) from Schemathesis' summary."""
    found = re.search(r"(\d+) generated, (?:(\d+) passed)?", output)
    return (int(found[1]), int(found[2] or 0)) if found else (0, 0)


def test_schemathesis_finds_nothing(smoke_run, tmp_path) -> None:
    env = {"BENTOML_HOME": os.environ["BENTOML_HOME"], "PRICING_RUN_ID": smoke_run.record["run_id"]}
    with bentoml_serve(env, tmp_path / "serve.log") as url:
        proc = run_schemathesis(url, tmp_path / "reports", max_examples=TEST_EXAMPLES, seed=SEED)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    generated, passed = tally(output)
    assert generated >= 300 and passed == generated, output[-3000:]
    assert list((tmp_path / "reports").glob("junit-*.xml")), "a JUnit report"
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def main(argv: list[str] | None = None) -> int:
    """``make fuzz``: serve the current model store, fuzz it, keep the reports and the server's log."""
    parser = argparse.ArgumentParser(description="Schemathesis over the served /docs.json (make fuzz).")
    parser.add_argument("--max-examples", type=int, default=FUZZ_EXAMPLES, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--reports-dir", type=Path, default=ROOT / "reports" / "fuzz")
    parser.add_argument("--url", help="fuzz a running service instead of starting one")
    args = parser.parse_args(argv)
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.url:
        proc = run_schemathesis(args.url.rstrip("/"), args.reports_dir, max_examples=args.max_examples, seed=args.seed)
    else:
        with bentoml_serve({}, args.reports_dir / "serve.log") as url:
            proc = run_schemathesis(url, args.reports_dir, max_examples=args.max_examples, seed=args.seed)
    (args.reports_dir / "schemathesis.txt").write_text(proc.stdout + proc.stderr)
    generated, passed = tally(proc.stdout)
    print(proc.stdout[-3000:])
    print(f"make fuzz: {generated} test cases, {passed} passed, {time.monotonic() - started:.0f} s, seed {args.seed};"
          f" reports in {args.reports_dir}")  # fmt: skip
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
