"""Audit the project's pinned dependencies for known vulnerabilities with pip-audit (``make audit``).

The audited set is the project's own dependency closure, pinned at the versions installed in this
environment (``pyproject.toml`` pins the direct dependencies, and the installed ones must match those pins;
every transitive one is taken at the version ``make install`` resolved; a local version label such as
torch's ``+cpu`` is dropped, as advisories name public releases): with the ``dev`` extra by default, the
runtime dependencies alone with ``--runtime``. It is written to ``reports/audit/requirements.txt`` and
audited with ``pip-audit --no-deps --disable-pip --strict``, so nothing is resolved again and a dependency
the vulnerability service cannot look up fails the audit instead of being skipped.

A vulnerability service must answer first. pip-audit's default (``pypi``) reads each release's JSON
(``/pypi/NAME/VERSION/json``); a package index that serves only the simple API or the project JSON answers
404 there, which pip-audit (without ``--strict``) reports as "No known vulnerabilities found" after
skipping every package: a pass that audited nothing. ``osv`` needs api.osv.dev. The script probes the
services in order (``--service auto``: pypi, then osv) and audits with the first that answers.

Accepted findings are listed with their reasons in ``security/accepted-vulnerabilities.toml`` and passed to
pip-audit as ``--ignore-vuln``.

Exit status: 0 audited, no finding beyond the accepted ones; 1 findings (listed); 2 the audit could not run
(no vulnerability service reachable, or pip-audit failed), with the reason.

    python security/audit.py [--service auto|pypi|osv] [--osv-url URL] [--runtime] [--out reports/audit]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
ACCEPTED = Path(__file__).resolve().parent / "accepted-vulnerabilities.toml"
PYPI_URL = "https://pypi.org/pypi"
OSV_URL = "https://api.osv.dev/v1/query"
SERVICES = ("pypi", "osv")
PROBE_TIMEOUT_S = 15
EXIT_CLEAN, EXIT_FINDINGS, EXIT_NOT_RUN = 0, 1, 2


class AuditError(RuntimeError):
    """The audit could not run; the message says why."""


@dataclass(frozen=True)
class Accepted:
    """A vulnerability reviewed and accepted, with the reason."""

    id: str
    package: str
    reason: str


def project_requirements(pyproject: Path = PYPROJECT, extras: Iterable[str] = ("dev",)) -> list[Requirement]:
    """The requirements ``pyproject.toml`` declares, with those of ``extras`` (and the extras they name)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    name, optional = canonicalize_name(project["name"]), project.get("optional-dependencies", {})
    requirements, pending, seen = [], list(extras), set()
    for line in project["dependencies"]:
        requirements.append(Requirement(line))
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in map(Requirement, optional.get(extra, [])):
            if canonicalize_name(requirement.name) == name:  # "pricing[infra]": another extra of the project
                pending.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


def pinned_closure(pyproject: Path = PYPROJECT, extras: Iterable[str] = ("dev",)) -> dict[str, str]:
    """Every distribution the project (with ``extras``) needs, directly or not, at its installed version
    (canonical name -> public version); AuditError when a pin of ``pyproject.toml`` is not what is installed."""
    pinned: dict[str, str] = {}
    pending = [(r.name, frozenset(r.extras), r) for r in project_requirements(pyproject, extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, wanted, declared = pending.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        try:
            version = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            raise AuditError(f"{name} is required but not installed: run `make install` first") from None
        if declared is not None and not declared.specifier.contains(version, prereleases=True):
            raise AuditError(f"pyproject.toml pins {declared} but {name} {version} is installed: run `make install`")
        pinned[canonicalize_name(name)] = version.public
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                pending.append((requirement.name, frozenset(requirement.extras), None))
    return dict(sorted(pinned.items()))


def load_accepted(path: Path = ACCEPTED) -> list[Accepted]:
    """The accepted findings; each needs an ``id``, a ``package`` and a ``reason``."""
    entries = tomllib.loads(path.read_text()).get("accepted", [])
    accepted = []
    for index, entry in enumerate(entries):
        missing = [key for key in ("id", "package", "reason") if not str(entry.get(key, "")).strip()]
        if missing:
            raise AuditError(f"{path.name}: accepted entry {index + 1} lacks {', '.join(missing)}")
        accepted.append(Accepted(entry["id"], entry["package"], entry["reason"]))
    return accepted


def probe(service: str, pinned: dict[str, str], osv_url: str = OSV_URL) -> str | None:
    """None when ``service`` answers a vulnerability query for one pinned release; else why it cannot."""
    name, version = next(iter(pinned.items()))
    if service == "pypi":
        url, body = f"{PYPI_URL}/{name}/{version}/json", None
    else:
        url = osv_url
        body = json.dumps({"package": {"name": name, "ecosystem": "PyPI"}, "version": version}).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            json.load(response)
    except urllib.error.HTTPError as exc:
        if service == "pypi" and exc.code == 404 and version in _listed_releases(name):
            return (
                f"{url} answered 404 although {PYPI_URL}/{name}/json lists {version}: the index reached from here "
                "does not serve PyPI's per-release JSON, which carries the vulnerability data"
            )
        return f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url} is unreachable ({getattr(exc, 'reason', exc)})"
    return None


def _listed_releases(name: str) -> set[str]:
    try:
        with urllib.request.urlopen(f"{PYPI_URL}/{name}/json", timeout=PROBE_TIMEOUT_S) as response:
            return set(json.load(response).get("releases", {}))
    except (urllib.error.URLError, OSError, ValueError):
        return set()


def choose_service(requested: str, pinned: dict[str, str], osv_url: str = OSV_URL) -> str:
    """The first service of ``requested`` (``auto``: pypi, then osv) that answers; AuditError if none does."""
    reasons = []
    for service in SERVICES if requested == "auto" else (requested,):
        problem = probe(service, pinned, osv_url)
        if problem is None:
            return service
        reasons.append(f"{service}: {problem}")
    raise AuditError(
        "no vulnerability service is reachable from here, so nothing was audited:\n  " + "\n  ".join(reasons)
    )


def run_pip_audit(service: str, requirements: Path, accepted: list[Accepted], report: Path, osv_url: str) -> list[dict]:
    """Run pip-audit on ``requirements``; return the findings that are not accepted."""
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--no-deps", "--disable-pip",
        "--strict", "--vulnerability-service", service, "--format", "json", "--output", str(report),
        "--progress-spinner", "off", "--desc", "off",
    ]  # fmt: skip
    if service == "osv":
        command += ["--osv-url", osv_url]
    for entry in accepted:
        command += ["--ignore-vuln", entry.id]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1) or not report.exists():
        raise AuditError(f"pip-audit failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    found = json.loads(report.read_text())
    return [
        {"package": dep["name"], "version": dep["version"], "id": vuln["id"], "fixed in": vuln.get("fix_versions", [])}
        for dep in found.get("dependencies", [])
        for vuln in dep.get("vulns", [])
    ]


def audit(service: str, runtime_only: bool, out: Path, osv_url: str = OSV_URL, accepted_file: Path = ACCEPTED) -> int:
    """Audit the pinned closure; print the outcome and return the exit status."""
    accepted = load_accepted(accepted_file)
    pinned = pinned_closure(PYPROJECT, extras=() if runtime_only else ("dev",))
    out.mkdir(parents=True, exist_ok=True)
    requirements = out / "requirements.txt"
    requirements.write_text("".join(f"{name}=={version}\n" for name, version in pinned.items()))
    chosen = choose_service(service, pinned, osv_url)
    print(f"auditing {len(pinned)} pinned packages ({requirements}) against {chosen} ...", flush=True)
    findings = run_pip_audit(chosen, requirements, accepted, out / "pip-audit.json", osv_url)
    if accepted:
        print(f"accepted ({accepted_file.name}): " + ", ".join(f"{a.id} in {a.package}" for a in accepted))
    if not findings:
        print(f"audit passed: no known vulnerability in {len(pinned)} packages ({chosen})")
        return EXIT_CLEAN
    print(f"audit FAILED: {len(findings)} known vulnerabilities not accepted:", file=sys.stderr)
    for finding in findings:
        fixed = ", ".join(finding["fixed in"]) or "no fixed release"
        print(f"  {finding['package']}=={finding['version']}: {finding['id']} (fixed in {fixed})", file=sys.stderr)
    print(f"upgrade the pins, or accept each one with a reason in {accepted_file}", file=sys.stderr)
    return EXIT_FINDINGS


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", choices=("auto", *SERVICES), default="auto", help="vulnerability service")
    parser.add_argument("--runtime", action="store_true", help="audit the runtime dependencies only (no dev extra)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "audit", help="requirements and report")
    parser.add_argument("--osv-url", default=OSV_URL, help="OSV query endpoint (a mirror of api.osv.dev)")
    parser.add_argument("--accepted", type=Path, default=ACCEPTED, help="accepted findings, with reasons (TOML)")
    args = parser.parse_args(argv)
    try:
        return audit(args.service, args.runtime, args.out, args.osv_url, args.accepted)
    except AuditError as exc:
        print(f"audit NOT RUN: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
