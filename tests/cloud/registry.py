"""A real OCI registry on the loopback standing in for ECR's registry host, and a small real image to push.

The registry is Debian's ``docker-registry`` (the CNCF distribution registry), installed with apt when missing
(as root; otherwise the tests fail with the reason, never skip). It requires basic auth with the password
moto's ECR hands out (``GetAuthorizationToken``), so a push only succeeds with the credentials the release
command got from the ECR API. skopeo, which the push uses here, comes from apt the same way.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.support import free_port

APT_TIMEOUT_S = 600
START_DEADLINE_S = 20.0
PACKAGES = {"docker-registry": "docker-registry", "skopeo": "skopeo"}  # command: Debian package


def ensure_commands(commands: dict[str, str] = PACKAGES) -> None:
    """Install the Debian packages of any missing command with apt (as root); fail the test when impossible."""
    missing = sorted({package for command, package in commands.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.fail(
            f"{', '.join(missing)} missing and only root can install them: apt-get install -y {' '.join(missing)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False)
        if proc.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` exited with {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}")
    still = [command for command in commands if shutil.which(command) is None]
    if still:
        pytest.fail(f"apt installed {missing} but {still} is still not on PATH")


@dataclass
class Registry:
    """A running distribution registry with basic auth on 127.0.0.1."""

    url: str
    username: str
    password: str
    proc: subprocess.Popen
    log_path: Path

    def manifest(self, repository: str, tag: str) -> httpx.Response:
        """GET the manifest of ``repository:tag`` with the registry's credentials."""
        accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
        return httpx.get(
            f"{self.url}/v2/{repository}/manifests/{tag}",
            auth=(self.username, self.password),
            headers={"Accept": accept},
            timeout=10,
        )

    def blob(self, repository: str, digest: str) -> bytes:
        """The blob ``digest`` of ``repository``."""
        answer = httpx.get(
            f"{self.url}/v2/{repository}/blobs/{digest}", auth=(self.username, self.password), timeout=10,
            follow_redirects=True,
        )  # fmt: skip
        answer.raise_for_status()
        return answer.content


@contextlib.contextmanager
def run_registry(workdir: Path, username: str, password: str):
    """Start ``docker-registry serve`` on a free loopback port with one htpasswd user; yield a Registry."""
    ensure_commands()
    port = free_port()
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    config = workdir / "config.yml"
    config.write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "info"},
                "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}, "delete": {"enabled": True}},
                "http": {"addr": f"127.0.0.1:{port}"},
                "auth": {"htpasswd": {"realm": "pricing-test", "path": str(htpasswd)}},
            }
        )  # YAML is a superset of JSON
    )
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while not _answers(f"{url}/v2/"):
            if proc.poll() is not None or time.monotonic() - started > START_DEADLINE_S:
                pytest.fail(f"docker-registry did not start on {url}:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.05)
        yield Registry(url, username, password, proc, log_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code in (200, 401)
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class OciImage:
    """A small image written as an OCI layout directory (skopeo source ``oci:<path>:<ref>``)."""

    path: Path
    ref: str
    config_digest: str
    layer_digest: str

    @property
    def source(self) -> str:
        """The image as a skopeo source reference."""
        return f"oci:{self.path}:{self.ref}"


def write_oci_image(path: Path, files: dict[str, bytes], ref: str = "latest") -> OciImage:
    """Write a one-layer linux/amd64 image holding ``files`` as an OCI image layout at ``path``."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    layer_digest, layer_size = put(gzip.compress(layer_tar.getvalue(), mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["serve"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_size = put(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}
        ],
    }
    manifest_digest, manifest_size = put(json.dumps(manifest).encode())
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    return OciImage(path, ref, config_digest, layer_digest)
