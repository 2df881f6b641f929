"""Push the image to Amazon ECR: the repository (scan on push, a lifecycle policy), ECR's registry credentials,
and the push itself with the container tool at hand (docker, podman or skopeo).

Idempotent: a tag whose image in the registry already has the local image's configuration digest (the image
id) is not pushed again. The registry is asked directly over its HTTP API (ECR accepts the same basic
credentials the tools use), so the check does not depend on the tool.

The registry host is the one ECR names (``<account>.dkr.ecr.<region>.amazonaws.com``) unless
``registry_endpoint`` says otherwise: a mirror, a VPC endpoint, or, in the tests, a local registry standing in
for ECR while the repository and credential calls still go to the ECR API (an emulator there).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from botocore.exceptions import ClientError

from pricing.cloud.aws import Aws, Changes, CloudError, aws_errors, error_code, one_line, resource_tags, tag_list

TOOLS = ("docker", "podman", "skopeo")
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
PUSH_TIMEOUT_S = 3600


@dataclass(frozen=True)
class RepositorySpec:
    """The ECR repository the image goes to."""

    name: str
    keep_images: int = 30
    scan_on_push: bool = True
    deployment: str = "pricing"

    def lifecycle_policy(self) -> dict[str, Any]:
        """ECR's lifecycle policy: expire all but the newest ``keep_images`` images."""
        return {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the last {self.keep_images} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": self.keep_images,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }


@dataclass(frozen=True)
class RegistryLogin:
    """Where to push and with what: the registry's base URL and ECR's temporary basic credentials."""

    url: str  # https://<host> or, for a plain-HTTP stand-in, http://<host>
    username: str
    password: str

    @property
    def host(self) -> str:
        """The registry's host[:port], as image references name it."""
        return urlsplit(self.url).netloc

    @property
    def tls(self) -> bool:
        """Whether the registry speaks HTTPS."""
        return urlsplit(self.url).scheme == "https"


# ---------------------------------------------------------------------------------------------------
# The repository


def ensure_repository(aws: Aws, spec: RepositorySpec, changes: Changes) -> dict[str, Any]:
    """Create the repository if missing; make its scan-on-push setting and lifecycle policy what ``spec`` says.
    Return the repository's description (``repositoryUri``, ``registryId`` ...)."""
    ecr = aws.client("ecr")
    repository = find_repository(aws, spec.name)
    if repository is None:
        with aws_errors(f"create the ECR repository {spec.name}"):
            repository = ecr.create_repository(
                repositoryName=spec.name,
                imageScanningConfiguration={"scanOnPush": spec.scan_on_push},
                imageTagMutability="MUTABLE",
                encryptionConfiguration={"encryptionType": "AES256"},
                tags=tag_list(resource_tags(spec.deployment)),
            )["repository"]
        changes.record("created", f"ECR repository {repository['repositoryUri']} (scan on push: {spec.scan_on_push})")
    elif repository.get("imageScanningConfiguration", {}).get("scanOnPush") != spec.scan_on_push:
        with aws_errors(f"set scan on push on the ECR repository {spec.name}"):
            ecr.put_image_scanning_configuration(
                repositoryName=spec.name, imageScanningConfiguration={"scanOnPush": spec.scan_on_push}
            )
        changes.record("updated", f"ECR repository {spec.name}: scan on push {spec.scan_on_push}")
    else:
        changes.unchanged(f"ECR repository {repository['repositoryUri']}")
    _ensure_lifecycle_policy(aws, spec, changes)
    return repository


def find_repository(aws: Aws, name: str) -> dict[str, Any] | None:
    """The repository's description, or None when it does not exist."""
    ecr = aws.client("ecr")
    with aws_errors(f"describe the ECR repository {name}"):
        try:
            return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        except ClientError as exc:
            if error_code(exc) == "RepositoryNotFoundException":
                return None
            raise


def describe(aws: Aws, repository: dict[str, Any]) -> str:
    """One line on the repository: its URI, scan on push, and how many images it holds."""
    with aws_errors(f"list the images of {repository['repositoryName']}"):
        pages = aws.client("ecr").get_paginator("describe_images").paginate(repositoryName=repository["repositoryName"])
        images = [image for page in pages for image in page["imageDetails"]]
    newest = max(images, key=lambda image: image["imagePushedAt"], default=None)
    tags = ", ".join(newest.get("imageTags", [])) if newest else "none"
    scan = repository.get("imageScanningConfiguration", {}).get("scanOnPush")
    return (
        f"ECR repository {repository['repositoryUri']}: {len(images)} image(s), newest tags {tags}, scan on push {scan}"
    )


def _ensure_lifecycle_policy(aws: Aws, spec: RepositorySpec, changes: Changes) -> None:
    ecr, wanted = aws.client("ecr"), spec.lifecycle_policy()
    with aws_errors(f"read the lifecycle policy of {spec.name}"):
        try:
            current = json.loads(ecr.get_lifecycle_policy(repositoryName=spec.name)["lifecyclePolicyText"])
        except ClientError as exc:
            if error_code(exc) != "LifecyclePolicyNotFoundException":
                raise
            current = None
    if current == wanted:
        changes.unchanged(f"lifecycle policy of {spec.name}: keep the last {spec.keep_images} images")
        return
    with aws_errors(f"put the lifecycle policy on {spec.name}"):
        ecr.put_lifecycle_policy(repositoryName=spec.name, lifecyclePolicyText=json.dumps(wanted))
    verb = "created" if current is None else "updated"
    changes.record(verb, f"lifecycle policy of {spec.name}: keep the last {spec.keep_images} images")


def delete_repository(aws: Aws, name: str, force: bool, changes: Changes) -> None:
    """Delete the repository (with its images when ``force``); nothing when it does not exist."""
    repository = find_repository(aws, name)
    if repository is None:
        changes.unchanged(f"ECR repository {name}: not there")
        return
    ecr = aws.client("ecr")
    with aws_errors(f"delete the ECR repository {name}{' and its images' if force else ''}"):
        ecr.delete_repository(repositoryName=name, force=force)
    changes.record("deleted", f"ECR repository {repository['repositoryUri']}")


# ---------------------------------------------------------------------------------------------------
# Credentials and the registry's own API


def registry_login(aws: Aws, registry_id: str, registry_endpoint: str | None = None) -> RegistryLogin:
    """ECR's temporary registry credentials for ``registry_id``, and the registry to use them on (ECR's own host
    unless ``registry_endpoint``, a URL or a host, says otherwise)."""
    with aws_errors("get the ECR registry credentials (ecr get-authorization-token)"):
        data = aws.client("ecr").get_authorization_token(registryIds=[registry_id])["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    url = registry_endpoint or data["proxyEndpoint"]
    if "://" not in url:
        url = f"https://{url}"
    return RegistryLogin(url.rstrip("/"), username, password)


def remote_config_digest(login: RegistryLogin, repository: str, tag: str) -> str | None:
    """The configuration digest (image id) of ``repository:tag`` in the registry, or None when the tag is not
    there. An index (multi-platform image) counts as its own digest."""
    url = f"{login.url}/v2/{repository}/manifests/{tag}"
    try:
        answer = httpx.get(url, auth=(login.username, login.password), headers={"Accept": MANIFEST_TYPES}, timeout=30)
    except httpx.HTTPError as exc:
        raise CloudError(f"cannot reach the registry at {login.url}: {one_line(exc)}") from None
    if answer.status_code == 404:
        return None
    if answer.status_code in (401, 403):
        raise CloudError(f"the registry {login.host} refused ECR's credentials ({answer.status_code})")
    if answer.status_code != 200:
        raise CloudError(f"the registry {login.host} answered {answer.status_code} for {repository}:{tag}")
    manifest = answer.json()
    return manifest.get("config", {}).get("digest") or answer.headers.get("docker-content-digest")


# ---------------------------------------------------------------------------------------------------
# Container tools


def choose_tool(wanted: str = "auto") -> str:
    """The container tool to push with: ``wanted``, or with ``auto`` docker when its daemon answers, else
    podman, else skopeo."""
    if wanted != "auto":
        if shutil.which(wanted) is None:
            raise CloudError(f"{wanted} is not installed (push with one of: {', '.join(TOOLS)})")
        return wanted
    if shutil.which("docker") and _succeeds(["docker", "info", "--format", "{{.ServerVersion}}"]):
        return "docker"
    for tool in ("podman", "skopeo"):
        if shutil.which(tool):
            return tool
    raise CloudError("no container tool to push with: install docker (with its daemon), podman or skopeo")


def _succeeds(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def skopeo_source(image: str) -> str:
    """``image`` as a skopeo source: as given when it names a transport (``oci:``, ``docker-archive:``,
    ``containers-storage:`` ...), else from the local containers storage that podman and buildah build into."""
    transports = ("oci:", "oci-archive:", "docker-archive:", "docker-daemon:", "containers-storage:", "dir:", "docker:")
    return image if image.startswith(transports) else f"containers-storage:{image}"


def local_config_digest(tool: str, image: str) -> str:
    """The configuration digest (image id) of the local ``image``."""
    if tool == "skopeo":
        raw = _run([tool, "inspect", "--raw", skopeo_source(image)], f"inspect the image {image}")
        manifest = json.loads(raw)
        if "config" not in manifest:
            raise CloudError(f"{image} is a multi-platform index: push one platform's image")
        return manifest["config"]["digest"]
    image_id = _run([tool, "image", "inspect", "--format", "{{.Id}}", image], f"inspect the image {image}").strip()
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def push_tag(tool: str, image: str, login: RegistryLogin, target: str) -> None:
    """Push the local ``image`` to ``target`` (``host/repository:tag``) with ``tool`` and ECR's credentials."""
    creds = f"{login.username}:{login.password}"
    tls = str(login.tls).lower()
    if tool == "skopeo":
        command = ["skopeo", "copy", "--retry-times", "3", f"--dest-tls-verify={tls}", "--dest-creds", creds]
        _run([*command, skopeo_source(image), f"docker://{target}"], f"push {target}", secret=creds)
    elif tool == "podman":
        command = ["podman", "push", f"--tls-verify={tls}", "--creds", creds, image, f"docker://{target}"]
        _run(command, f"push {target}", secret=creds)
    else:
        _run(
            ["docker", "login", "--username", login.username, "--password-stdin", login.host],
            f"log in to {login.host}",
            stdin=login.password,
        )
        _run(["docker", "tag", image, target], f"tag {image} as {target}")
        _run(["docker", "push", target], f"push {target}")


def _run(command: list[str], action: str, *, stdin: str | None = None, secret: str | None = None) -> str:
    """Run a container tool; raise CloudError with the last line of its output (credentials masked) if it fails."""
    try:
        proc = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=PUSH_TIMEOUT_S, check=False,
            env={**os.environ, "LC_ALL": "C"},
        )  # fmt: skip
    except FileNotFoundError:
        raise CloudError(f"cannot {action}: {command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CloudError(f"cannot {action}: {command[0]} did not finish in {PUSH_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit status {proc.returncode}"]
        last = output[-1].replace(secret, "***") if secret else output[-1]
        raise CloudError(f"cannot {action}: {command[0]}: {one_line(last)}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------------
# The command


def push_image(
    aws: Aws,
    spec: RepositorySpec,
    image: str,
    tags: list[str],
    changes: Changes,
    *,
    tool: str = "auto",
    registry_endpoint: str | None = None,
) -> list[str]:
    """Make sure the repository exists as ``spec`` says, then push the local ``image`` under each of ``tags``
    that does not already hold it. Return the pushed (or already present) image URIs, ECR's names for them."""
    if not tags:
        raise CloudError("no tag to push: give --tag, or a bento whose version names the image")
    tool = choose_tool(tool)
    repository = ensure_repository(aws, spec, changes)
    login = registry_login(aws, repository["registryId"], registry_endpoint)
    local = local_config_digest(tool, image)
    uris = []
    for tag in tags:
        uri = f"{repository['repositoryUri']}:{tag}"
        target = f"{login.host}/{spec.name}:{tag}"
        if remote_config_digest(login, spec.name, tag) == local:
            changes.unchanged(f"image {uri} ({local[:19]})")
        else:
            push_tag(tool, image, login, target)
            pushed = remote_config_digest(login, spec.name, tag)
            if pushed != local:
                raise CloudError(f"pushed {target} but the registry holds {pushed}, not the local image {local}")
            changes.record("pushed", f"image {uri} ({local[:19]}, with {tool})")
        uris.append(uri)
    return uris
