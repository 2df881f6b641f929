"""The dependency audit (``make audit``, security/audit.py): the pinned set it audits, the accepted findings, and
the audit itself.

``test_the_pinned_dependencies_have_no_unaccepted_vulnerability`` is the audit: it needs a vulnerability
service, and where none answers (this project's machines reach only the package registries, whose index does
not serve PyPI's per-release vulnerability JSON) it is reported as SKIPPED with the reason, never as passed.
The other tests check the script's own handling of findings against a local server speaking OSV's query
protocol, which stands in for api.osv.dev the way moto stands in for AWS: real pip-audit, canned advisories.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from security.audit import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_NOT_RUN,
    AuditError,
    load_accepted,
    pinned_closure,
    project_requirements,
)
from tests.support import ROOT

ADVISORY = {
    "id": "TEST-2026-0001",
    "summary": "a canned advisory for the test",
    "affected": [
        {
            "package": {"name": "pytest", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}],
        }
    ],
}


def run_audit(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "security/audit.py", "--out", str(out), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def osv_stand_in() -> Iterator[dict]:
    """A local OSV query endpoint: an advisory for pytest, none for anything else (``state["status"]`` can
    make it fail)."""
    state: dict = {"status": 200, "queries": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state["queries"] += 1
            body = json.dumps({"vulns": [ADVISORY]} if query["package"]["name"] == "pytest" else {}).encode()
            self.send_response(state["status"])
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_the_pinned_set_is_the_projects_dependency_closure() -> None:
    pinned = pinned_closure()
    declared = project_requirements()
    for requirement in declared:  # every pin of pyproject.toml, the dev and infra extras' too, at its version
        (version,) = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        assert pinned[canonicalize_name(requirement.name)] == Version(version).public, requirement
    assert {"cfn-lint", "pytest", "pip-audit"} <= {canonicalize_name(r.name) for r in declared}
    assert "starlette" in pinned and "pricing" not in pinned  # transitive ones in, the project itself out
    runtime = pinned_closure(extras=())
    assert "bentoml" in runtime and "pytest" not in runtime


def test_an_installed_version_that_differs_from_its_pin_stops_the_audit(tmp_path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["pytest==0.0.1"]\n')
    with pytest.raises(AuditError, match=re.escape("pins pytest==0.0.1 but pytest 9.2.0 is installed")):
        pinned_closure(pyproject)


def test_the_accepted_findings_file_is_valid_and_every_entry_has_a_reason(tmp_path) -> None:
    assert all(entry.reason.strip() for entry in load_accepted())
    bad = tmp_path / "accepted.toml"
    bad.write_text('[[accepted]]\nid = "GHSA-1"\npackage = "x"\n')
    with pytest.raises(AuditError, match="entry 1 lacks reason"):
        load_accepted(bad)


def test_the_pinned_dependencies_have_no_unaccepted_vulnerability(tmp_path) -> None:
    proc = run_audit(out=tmp_path)
    if proc.returncode == EXIT_NOT_RUN:
        pytest.skip("dependency audit could not run here: " + " ".join(proc.stderr.split()))
    assert proc.returncode == EXIT_CLEAN, proc.stdout + proc.stderr


def test_a_finding_fails_the_audit_until_it_is_accepted(osv_stand_in, tmp_path) -> None:
    failed = run_audit("--service", "osv", "--osv-url", osv_stand_in["url"], out=tmp_path / "a")
    assert failed.returncode == EXIT_FINDINGS, failed.stdout + failed.stderr
    assert "pytest==9.2.0: TEST-2026-0001 (fixed in 99.0)" in failed.stderr
    assert osv_stand_in["queries"] > 100  # every pinned package was asked about, not just the probe's

    accepted = tmp_path / "accepted.toml"
    accepted.write_text('[[accepted]]\nid = "TEST-2026-0001"\npackage = "pytest"\nreason = "test tool only"\n')
    passed = run_audit("--service", "osv", "--osv-url", osv_stand_in["url"], "--accepted", str(accepted), out=tmp_path)
    assert passed.returncode == EXIT_CLEAN, passed.stdout + passed.stderr
    assert "accepted (accepted.toml): TEST-2026-0001 in pytest" in passed.stdout


def test_an_unreachable_or_failing_service_is_not_a_pass(osv_stand_in, tmp_path) -> None:
    closed = run_audit("--service", "osv", "--osv-url", "http://127.0.0.1:9/v1/query", out=tmp_path)
    assert closed.returncode == EXIT_NOT_RUN and "audit NOT RUN" in closed.stderr and "unreachable" in closed.stderr
    osv_stand_in["status"] = 503
    failing = run_audit("--service", "osv", "--osv-url", osv_stand_in["url"], out=tmp_path)
    assert failing.returncode == EXIT_NOT_RUN and "answered HTTP 503" in failing.stderr
