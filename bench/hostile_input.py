"""Hostile input against a real `bentoml serve`: how fast each is refused, and the server's memory meanwhile.

Usage:
    .venv/bin/python bench/hostile_input.py [--out reports/bench]

Models must already be in the store (``make bench`` trains the smoke budget when it is empty). Starts the
service on a free port, then sends, one at a time: bodies over the size limit (with a Content-Length, chunked,
a million-row CSV), a CSV just under the limit with too many rows, 4 MB of nested JSON to every POST route,
a 4 MB stock code, huge numbers, and for comparison the largest legitimate request (10,000 /predict rows).
While each runs, the resident memory of the whole service tree (server and worker) is sampled every 10 ms.
Writes reports/bench/hostile_input.json and .md and prints the table. A figure, not a test: the suite asserts
the statuses and error bodies (tests/integration/test_contract.py), never the timings.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from pricing.limits import DEFAULT_MAX_BODY_BYTES
from pricing.local_server import ROOT, serve

JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}
CSV_ROW = b"85123A,2.55,2011-12-01 10:00\n"
CSV_HEADER = b"StockCode,UnitPrice,InvoiceDate\n"


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def measured(pid: int, send: Callable[[], httpx.Response | str]) -> dict[str, object]:
    """Send one request while sampling the tree's RSS; its status, seconds and peak RSS."""
    peak, done = [tree_rss(pid)], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        answer = send()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    if isinstance(answer, str):
        return {"status": answer, "seconds": seconds, "peak_rss_mb": peak[0] / 2**20, "field": None}
    error = answer.json().get("error", {}) if answer.status_code >= 400 else {}
    return {"status": answer.status_code, "seconds": seconds, "peak_rss_mb": peak[0] / 2**20,
            "field": error.get("field"), "message": error.get("message", "")[:120]}  # fmt: skip


def chunked(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


def cases(url: str) -> dict[str, Callable[[], httpx.Response | str]]:
    """The hostile requests by name."""
    client = httpx.Client(base_url=url, timeout=120)

    def post(
        path: str, content: bytes | Iterator[bytes], headers: dict[str, str]
    ) -> Callable[[], httpx.Response | str]:
        def send() -> httpx.Response | str:
            try:
                return client.post(path, content=content, headers=headers)
            except httpx.HTTPError as exc:  # the server may close the connection on a refused upload
                return f"connection closed ({type(exc).__name__})"

        return send

    nested = b'{"rows": ' * 400_000 + b"1" + b"}" * 400_000  # 4 MB
    rows = [{"StockCode": "85123A", "UnitPrice": 2.55 + i % 7, "InvoiceDate": "2011-12-01T10:00:00"}
            for i in range(10_000)]  # fmt: skip
    return {
        "body of limit + 1 byte (Content-Length)": post("/price_sweep", b" " * (DEFAULT_MAX_BODY_BYTES + 1), JSON),
        "100 MB chunked body": post("/invocations", chunked(100 << 20), JSON),
        "CSV of 10^6 rows (30 MB)": post("/invocations", CSV_HEADER + CSV_ROW * 1_000_000, CSV),
        "CSV of 140,000 rows (4 MB, under the limit)": post("/invocations", CSV_HEADER + CSV_ROW * 140_000, CSV),
        "4 MB nested JSON to /price_sweep": post("/price_sweep", nested, JSON),
        "4 MB nested JSON to /predict": post("/predict", nested, JSON),
        "4 MB nested JSON to /invocations": post("/invocations", nested, JSON),
        "4 MB stock code": post("/price_sweep", b'{"stockcode": "' + b"8" * ((4 << 20) - 20) + b'"}', JSON),
        "bins = 10^30": post("/price_sweep", b'{"stockcode": "85123A", "bins": 1000000000000000000000000000000}', JSON),
        "context = 1e300": post("/price_sweep", b'{"stockcode": "85123A", "context": 1e300}', JSON),
        "500,000 numbers in an unknown field (3 MB)": post(
            "/price_sweep", b'{"stockcode": "85123A", "x": [' + b"1," * 500_000 + b"1]}", JSON
        ),
        "10,000 /predict rows (2 MB, legitimate)": post("/predict", json.dumps({"rows": rows}).encode(), JSON),
    }


def run(out: Path) -> dict[str, object]:
    """Serve, send every case, write the figures."""
    out.mkdir(parents=True, exist_ok=True)
    with serve(out / "hostile_input_serve.log", {}, "/readyz", 120) as server:
        time.sleep(2)  # fallbacks finish loading in the background
        idle_mb = tree_rss(server.pid) / 2**20
        results = {name: measured(server.pid, send) for name, send in cases(server.url).items()}
        settled_mb = tree_rss(server.pid) / 2**20
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {psutil.cpu_count()} cores",
        "command": "python bench/hostile_input.py",
        "max_body_bytes": DEFAULT_MAX_BODY_BYTES,
        "idle_rss_mb": idle_mb,
        "after_rss_mb": settled_mb,
        "cases": results,
    }
    (out / "hostile_input.json").write_text(json.dumps(record, indent=2))
    lines = [f"Service tree RSS idle {idle_mb:.0f} MB, after every case {settled_mb:.0f} MB "
             f"({record['date']}, {record['machine']})", "",
             "| request | status | field | seconds | peak tree RSS (MB) |", "|---|---|---|---|---|"]  # fmt: skip
    for name, result in results.items():
        lines.append(f"| {name} | {result['status']} | {result['field'] or ''} | {result['seconds']:.2f} "
                     f"| {result['peak_rss_mb']:.0f} |")  # fmt: skip
    (out / "hostile_input.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    run(parser.parse_args().out)


if __name__ == "__main__":
    main()
