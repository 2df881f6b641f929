"""Web page benchmark: the bytes /ui loads and its first render, measured in a real headless Chromium.

Usage:
    make bench                                        # the other benchmarks, then this
    .venv/bin/python bench/ui_page.py [--runs 10] [--url http://localhost:3000]

Without ``--url`` it serves the stored models with ``bentoml serve`` on a free port (``make bench`` trains
the smoke budget when the store is empty) and stops it afterwards. Each run opens a fresh browser context
(empty cache) on ``/ui?stockcode=<best seller>&bins=<100 + run>`` (a distinct, uncached sweep each time)
and reads the browser's own clocks (Performance API): first contentful paint of the page, and the page's
``pricing:curve-drawn`` mark, set when the chart of the API's answer is on the page (so it includes the
sweep). Bytes are the Resource Timing sizes of what /ui loads: the HTML, its scripts and style sheet
(bodies as sent, and with headers), and separately the API answers it fetched. Writes
reports/ui/performance.json and prints a summary. Target: the curve drawn within 1 s on localhost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

from pricing.local_server import ROOT, serve
from pricing.ui.browser import headless_chromium

TARGET_CURVE_MS = 1_000.0
OUT = ROOT / "reports" / "ui"

MEASURE_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const page = [nav, ...resources.filter((r) => ["script", "link", "css", "other"].includes(r.initiatorType)
                                          && r.name.includes("/ui"))];
  const api = resources.filter((r) => r.initiatorType === "fetch");
  const sum = (list, key) => list.reduce((total, r) => total + r[key], 0);
  return {
    fcp_ms: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    curve_drawn_ms: performance.getEntriesByName("pricing:curve-drawn")[0]?.startTime ?? null,
    page_files: page.map((r) => r.name.replace(location.origin, "")),
    page_body_bytes: sum(page, "encodedBodySize"),
    page_transfer_bytes: sum(page, "transferSize"),
    api_calls: api.map((r) => r.name.replace(location.origin, "")),
    api_body_bytes: sum(api, "encodedBodySize"),
  };
}"""


def best_seller(url: str) -> str:
    """The product with the most units per period on its main list."""
    products = httpx.get(f"{url}/products", params={"limit": 500}, timeout=30).json()["products"]
    main = [next(lst for lst in p["lists"] if lst["segment"] == p["main_segment"]) | p for p in products]
    return max(main, key=lambda p: p["units_per_period"])["stockcode"]


def measure(url: str, runs: int) -> dict[str, object]:
    """Load the page ``runs`` times in fresh contexts and return every run's figures and a summary."""
    stockcode = best_seller(url)
    results = []
    with headless_chromium() as browser:
        version = browser.version
        for run in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{url}/ui?stockcode={stockcode}&bins={100 + run}")
            # Functions, not expressions: the page's CSP forbids evaluating strings.
            for entry in ("pricing:curve-drawn", "first-contentful-paint"):
                page.wait_for_function(f"() => performance.getEntriesByName('{entry}').length > 0", timeout=60_000)
            results.append(page.evaluate(MEASURE_JS))
            context.close()
    curve = [r["curve_drawn_ms"] for r in results]
    fcp = [r["fcp_ms"] for r in results]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "browser": f"Chromium {version} (headless, Debian package)",
        "url": f"{url}/ui?stockcode={stockcode}&bins=100+run",
        "runs": runs,
        "page_files": results[0]["page_files"],
        "page_body_bytes": results[0]["page_body_bytes"],
        "page_transfer_bytes": results[0]["page_transfer_bytes"],
        "api_calls": results[0]["api_calls"],
        "api_body_bytes": results[0]["api_body_bytes"],
        "fcp_ms": {"median": statistics.median(fcp), "max": max(fcp)},
        "curve_drawn_ms": {"median": statistics.median(curve), "max": max(curve)},
        "target_curve_drawn_ms": TARGET_CURVE_MS,
        "within_target": max(curve) <= TARGET_CURVE_MS,
        "per_run": results,
    }


def main() -> int:
    """Measure, write reports/ui/performance.json, print a summary; non-zero when a run missed the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--url", help="measure a running service instead of starting one")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.url
        if url is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "serve.log"
            url = stack.enter_context(serve(log, ready_path="/readyz", timeout_s=120)).url
        report = measure(url.rstrip("/"), args.runs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "performance.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"page: {report['page_body_bytes']:,} bytes in {len(report['page_files'])} files "
        f"({report['page_transfer_bytes']:,} with headers); API answers {report['api_body_bytes']:,} bytes\n"
        f"first contentful paint: median {report['fcp_ms']['median']:.0f} ms, max {report['fcp_ms']['max']:.0f} ms\n"
        f"curve drawn (incl. the uncached sweep): median {report['curve_drawn_ms']['median']:.0f} ms, "
        f"max {report['curve_drawn_ms']['max']:.0f} ms (target {TARGET_CURVE_MS:.0f} ms) over {args.runs} runs\n"
        f"{report['browser']}; {report['machine']}\nwritten: {OUT / 'performance.json'}"
    )
    return 0 if report["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
