"""upload-artifacts: the feature store and the bento archive to S3 on moto, skipped when already there."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.cloud.conftest import lines


@pytest.fixture
def bucket(aws) -> str:
    name = f"pricing-artifacts-{uuid.uuid4().hex[:10]}"
    aws.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def features(tmp_path: Path) -> Path:
    root = tmp_path / "features"
    for split in ("train", "val", "test"):
        (root / f"{split}.parquet").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.parquet").write_bytes(b"PAR1" + split.encode() * 100 + b"PAR1")
    return root


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "pricing-abc123.bento"
    path.write_bytes(b"\xfd7zXZ\x00" + bytes(range(256)) * 40)
    return path


def keys(aws, bucket: str) -> list[str]:
    return [obj["Key"] for obj in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_upload_then_nothing_then_only_what_changed(cli, aws, bucket, features, archive) -> None:
    args = ("upload-artifacts", "--bucket", bucket, "--prefix", "runs/1", "--features", str(features),
            "--bento", str(archive))  # fmt: skip
    first = cli(*args)
    assert first.code == 0, first.err
    assert sorted(keys(aws, bucket)) == [
        "runs/1/bentos/pricing-abc123.bento",
        "runs/1/features/test.parquet",
        "runs/1/features/train.parquet",
        "runs/1/features/val.parquet",
    ]
    body = aws.client("s3").get_object(Bucket=bucket, Key="runs/1/bentos/pricing-abc123.bento")["Body"].read()
    assert body == archive.read_bytes()
    assert "uploaded   feature store: 3 file(s)" in first.out

    second = cli(*args)
    assert second.code == 0, second.err
    assert lines(second.out)[-1] == "no changes: everything was already as wanted"

    (features / "val.parquet").write_bytes(b"PAR1 new PAR1")
    third = cli(*args)
    assert "uploaded   feature store: 1 file(s) to s3://" in third.out and "(2 unchanged)" in third.out
    assert lines(third.out)[-1] == "1 change(s)"


def test_a_missing_bucket_is_one_line_unless_asked_to_create_it(cli, aws, features) -> None:
    missing = f"pricing-missing-{uuid.uuid4().hex[:10]}"
    run = cli("upload-artifacts", "--bucket", missing, "--features", str(features))
    assert run.code == 1
    assert (
        run.err
        == f"error: S3 bucket '{missing}' does not exist in us-east-1: create it (cdk deploy, or --create-bucket)\n"
    )

    created = cli("upload-artifacts", "--bucket", missing, "--features", str(features), "--create-bucket")
    assert created.code == 0, created.err
    s3 = aws.client("s3")
    block = s3.get_public_access_block(Bucket=missing)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rule = s3.get_bucket_encryption(Bucket=missing)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_the_bento_is_exported_from_the_store_by_tag(cli, aws, bucket, built_bento) -> None:
    run = cli("upload-artifacts", "--bucket", bucket, "--bento", built_bento.tag)
    assert run.code == 0, run.err
    name = built_bento.tag.replace(":", "-") + ".bento"
    assert keys(aws, bucket) == [f"pricing/bentos/{name}"]


def test_nothing_to_upload_is_one_line(cli, bucket) -> None:
    run = cli("upload-artifacts", "--bucket", bucket)
    assert (run.code, run.err) == (1, "error: nothing to upload: give --features and/or --bento\n")
