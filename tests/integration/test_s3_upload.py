"""Uploading training artefacts to S3, against a real moto server process."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from botocore.stub import Stubber

from pricing.cloud.s3 import S3UploadError, make_s3_client, upload_tree

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def s3(aws_env: str):
    """An S3 client on the moto server, built the way production code builds it."""
    return make_s3_client()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket (the moto server is shared by the whole session)."""
    name = f"pricing-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def artefacts(tmp_path: Path) -> dict[str, bytes]:
    """A nested artefact tree under tmp_path/'run'; returns relative POSIX path -> contents."""
    files = {
        "features/train/part-0000.parquet": b"PAR1" + os.urandom(2048) + b"PAR1",
        "features/test/part-0000.parquet": b"PAR1" + os.urandom(512) + b"PAR1",
        "reports/metrics.json": b'{"xgboost": {"rmse": 0.42}}',
        "reports/plots/price_curve.png": PNG_MAGIC + os.urandom(256),
        "models/xgboost/model.ubj": os.urandom(64),
    }
    for relative, data in files.items():
        path = tmp_path / "run" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def list_keys(s3, bucket: str) -> list[str]:
    """Return every key in `bucket`, in S3's listing order."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_client_is_built_for_the_moto_endpoint(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # PRICING_S3_ENDPOINT_URL alone must be enough
    client = make_s3_client()

    assert client.meta.endpoint_url == aws_env
    assert client.meta.region_name == "us-east-1"
    assert make_s3_client(endpoint_url="http://127.0.0.1:9").meta.endpoint_url == "http://127.0.0.1:9"


def test_client_really_talks_to_moto(s3, bucket: str) -> None:
    response = s3.list_buckets()

    assert bucket in [b["Name"] for b in response["Buckets"]]
    assert response["ResponseMetadata"]["HTTPHeaders"]["server"].startswith("Werkzeug")


def test_directory_tree_keys_and_bytes_round_trip(s3, bucket: str, artefacts: dict[str, bytes], tmp_path: Path) -> None:
    keys = upload_tree(tmp_path / "run", bucket, "runs/2024-06-01", client=s3)

    expected = sorted(f"runs/2024-06-01/{relative}" for relative in artefacts)
    assert keys == expected
    assert list_keys(s3, bucket) == expected
    for relative, data in artefacts.items():
        assert s3.get_object(Bucket=bucket, Key=f"runs/2024-06-01/{relative}")["Body"].read() == data


def test_content_types_are_set(s3, bucket: str, artefacts: dict[str, bytes], tmp_path: Path) -> None:
    upload_tree(tmp_path / "run", bucket, "run", client=s3)

    def content_type(relative: str) -> str:
        return s3.head_object(Bucket=bucket, Key=f"run/{relative}")["ContentType"]

    assert content_type("reports/metrics.json") == "application/json"
    assert content_type("reports/plots/price_curve.png") == "image/png"
    assert content_type("features/train/part-0000.parquet") == "application/vnd.apache.parquet"


def test_single_file_is_uploaded_under_prefix(s3, bucket: str, artefacts: dict[str, bytes], tmp_path: Path) -> None:
    keys = upload_tree(tmp_path / "run" / "reports" / "metrics.json", bucket, "reports", client=s3)

    assert keys == ["reports/metrics.json"]
    assert list_keys(s3, bucket) == ["reports/metrics.json"]
    assert s3.get_object(Bucket=bucket, Key="reports/metrics.json")["Body"].read() == artefacts["reports/metrics.json"]


@pytest.mark.parametrize("prefix", ["runs/7", "runs/7/", "/runs/7/", "runs//7"])
def test_prefix_slashes_do_not_change_keys(
    s3, bucket: str, artefacts: dict[str, bytes], tmp_path: Path, prefix: str
) -> None:
    keys = upload_tree(tmp_path / "run", bucket, prefix, client=s3)

    assert keys == sorted(f"runs/7/{relative}" for relative in artefacts)
    assert list_keys(s3, bucket) == keys
    assert not any("//" in key or key.startswith("/") for key in keys)


def test_empty_prefix_keeps_relative_paths(s3, bucket: str, artefacts: dict[str, bytes], tmp_path: Path) -> None:
    assert upload_tree(tmp_path / "run", bucket, "", client=s3) == sorted(artefacts)


def test_big_file_goes_up_in_multiple_parts(s3, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above boto3's 8 MiB multipart threshold
    (tmp_path / "big.parquet").write_bytes(data)

    [key] = upload_tree(tmp_path / "big.parquet", bucket, "features", client=s3)

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-2")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_missing_bucket_raises_and_is_not_created(s3, artefacts: dict[str, bytes], tmp_path: Path) -> None:
    missing = f"pricing-missing-{uuid.uuid4().hex[:12]}"

    with pytest.raises(S3UploadError, match=missing) as excinfo:
        upload_tree(tmp_path / "run", missing, "runs/1")

    assert "NoSuchBucket" in str(excinfo.value)
    assert "does not exist" in str(excinfo.value)
    assert missing not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_access_denied_is_reported_with_its_code(s3, artefacts: dict[str, bytes], tmp_path: Path) -> None:
    # moto does not enforce IAM by default, so the denial is stubbed on the real client.
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(S3UploadError, match=r"'locked-bucket'.*AccessDenied"):
            upload_tree(tmp_path / "run", "locked-bucket", "runs/1", client=s3)


def test_missing_local_path_raises(s3, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        upload_tree(tmp_path / "nope", bucket, "runs/1", client=s3)
