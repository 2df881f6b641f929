"""push-image: the ECR repository on moto, the image pushed with skopeo into a real registry on the loopback.

The registry stands in for ECR's registry host (``--registry-endpoint``); the repository, lifecycle policy,
scan configuration and the registry credentials all come from the ECR API on moto, and the registry only
accepts those credentials.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pricing.cloud.aws import Changes, CloudError
from pricing.cloud.cli import bento_identity
from pricing.cloud.ecr import RegistryLogin, remote_config_digest
from tests.cloud.conftest import lines
from tests.cloud.registry import ensure_commands, write_oci_image


@pytest.fixture
def image(tmp_path: Path):
    """A small real image (one layer) as an OCI layout."""
    return write_oci_image(tmp_path / "oci", {"app/hello.txt": b"hello from the pricing test image\n"})


def push(cli, registry, name: str, image, *extra: str):
    return cli(
        "push-image", "--name", name, "--image", image.source, "--tool", "skopeo",
        "--registry-endpoint", registry.url, *extra,
    )  # fmt: skip


def test_first_push_creates_the_repository_and_pushes_every_tag(cli, aws, registry, name, image) -> None:
    run = push(cli, registry, name, image, "--tag", "v1", "--tag", "run-abc", "--keep-images", "7")
    assert run.code == 0, run.err

    ecr = aws.client("ecr")
    repository = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    assert policy["rules"][0]["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 7,
    }
    assert policy["rules"][0]["action"] == {"type": "expire"}
    tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]}
    assert tags["managed-by"] == "pricing.cloud"

    for tag in ("v1", "run-abc"):
        answer = registry.manifest(name, tag)
        assert answer.status_code == 200
        manifest = answer.json()
        assert manifest["config"]["digest"] == image.config_digest
        assert [layer["digest"] for layer in manifest["layers"]] == [image.layer_digest]
        assert f"{repository['repositoryUri']}:{tag}" in run.out
    config = json.loads(registry.blob(name, image.config_digest))
    assert config["config"]["Cmd"] == ["serve"]
    assert "created    ECR repository" in run.out
    assert run.out.count("pushed     image") == 2


def test_second_push_changes_nothing_and_says_so(cli, registry, name, image) -> None:
    assert push(cli, registry, name, image, "--tag", "v1").code == 0

    again = push(cli, registry, name, image, "--tag", "v1")

    assert again.code == 0, again.err
    assert "pushed" not in again.out and "created" not in again.out
    assert "unchanged  image" in again.out
    assert lines(again.out)[-1] == "no changes: everything was already as wanted"


def test_a_new_image_under_the_same_tag_is_pushed_and_settings_are_updated(cli, aws, registry, name, tmp_path) -> None:
    first = write_oci_image(tmp_path / "one", {"a.txt": b"one\n"})
    second = write_oci_image(tmp_path / "two", {"a.txt": b"two\n"})
    assert push(cli, registry, name, first, "--tag", "v1").code == 0

    run = push(cli, registry, name, second, "--tag", "v1", "--keep-images", "3", "--no-scan-on-push")

    assert run.code == 0, run.err
    assert registry.manifest(name, "v1").json()["config"]["digest"] == second.config_digest
    assert "updated    lifecycle policy" in run.out
    assert "updated    ECR repository" in run.out
    repository = aws.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": False}


def test_the_registry_refuses_credentials_that_ecr_did_not_issue(registry, name, image) -> None:
    forged = RegistryLogin(registry.url, registry.username, "not-the-ecr-token")
    with pytest.raises(CloudError, match="refused ECR's credentials"):
        remote_config_digest(forged, name, "v1")


def test_tags_default_to_the_bento_version_and_training_run(cli, registry, name, image, built_bento, smoke_run) -> None:
    version, run_id = bento_identity(built_bento.tag)
    assert version == built_bento.tag.split(":")[1]
    assert run_id == smoke_run.record["run_id"]

    run = push(cli, registry, name, image, "--bento", built_bento.tag, "--extra-tag", "model-7")

    assert run.code == 0, run.err
    for tag in (version, f"run-{run_id}", "model-7"):
        assert registry.manifest(name, tag).json()["config"]["digest"] == image.config_digest


def test_a_missing_local_image_is_one_line(cli, registry, name, tmp_path) -> None:
    run = cli(
        "push-image", "--name", name, "--image", f"oci:{tmp_path}/nothing:latest", "--tag", "v1", "--tool", "skopeo",
        "--registry-endpoint", registry.url,
    )  # fmt: skip
    assert run.code == 1
    assert len(lines(run.err)) == 1 and run.err.startswith("error: cannot inspect the image")


def test_changes_report_counts(capsys) -> None:
    changes = Changes()
    changes.unchanged("x")
    changes.summary()
    changes.record("created", "y")
    changes.summary()
    out = capsys.readouterr().out.splitlines()
    assert out == ["unchanged  x", "no changes: everything was already as wanted", "created    y", "1 change(s)"]


@pytest.fixture
def podman_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """podman (from apt when missing) with its storage and configuration under tmp_path only."""
    ensure_commands({"podman": "podman"})
    root = tmp_path / "podman"
    for folder in ("graph", "run", "tmp"):
        (root / folder).mkdir(parents=True)
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "graph"}"\nrunroot = "{root / "run"}"\n'
    )
    (root / "containers.conf").write_text(f'[engine]\nevents_logger = "file"\ntmp_dir = "{root / "tmp"}"\n')
    env = {
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "TMPDIR": str(root / "tmp"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_podman_pushes_the_image_make_containerize_names(cli, registry, name, image, podman_env) -> None:
    # What `make containerize BACKEND=podman` leaves: localhost/pricing:<bento version> in podman's storage.
    subprocess.run(["podman", "pull", "-q", image.source], check=True, capture_output=True, timeout=120)
    image_id = image.config_digest.removeprefix("sha256:")
    subprocess.run(["podman", "tag", image_id, "localhost/pricing:v7"], check=True, capture_output=True, timeout=60)
    args = ("push-image", "--name", name, "--image", "pricing:v7", "--tag", "v7", "--tool", "podman",
            "--registry-endpoint", registry.url)  # fmt: skip

    first = cli(*args)
    assert first.code == 0, first.err
    assert "with podman" in first.out
    assert registry.manifest(name, "v7").json()["config"]["digest"] == image.config_digest

    again = cli(*args)
    assert again.code == 0 and lines(again.out)[-1] == "no changes: everything was already as wanted"
