"""Upload the feature store and the bento archive to S3, skipping files already there unchanged.

Each object carries the SHA-256 of its content in its metadata (``x-amz-meta-sha256``); a file whose object has
the same digest is not uploaded again, so a second run changes nothing. Keys:
``<prefix>/features/<relative path>`` and ``<prefix>/bentos/<archive name>``.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pricing.cloud.aws import Aws, Changes, CloudError, aws_errors, error_code, resource_tags, tag_list
from pricing.cloud.s3 import _build_key, _guess_content_type, _list_files

DIGEST_KEY = "sha256"


@dataclass(frozen=True)
class Synced:
    """What one tree's upload did."""

    uploaded: list[str]
    unchanged: list[str]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_bucket(aws: Aws, bucket: str, create: bool, changes: Changes, deployment: str = "pricing") -> None:
    """Check that the bucket exists; with ``create``, make it (encrypted, public access blocked) when missing."""
    s3 = aws.client("s3")
    with aws_errors(f"check the S3 bucket {bucket}"):
        try:
            s3.head_bucket(Bucket=bucket)
            changes.unchanged(f"S3 bucket {bucket}")
            return
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
    if not create:
        raise CloudError(
            f"S3 bucket {bucket!r} does not exist in {aws.region}: create it (cdk deploy, or --create-bucket)"
        )
    with aws_errors(f"create the S3 bucket {bucket}"):
        location = (
            {} if aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}}
        )
        s3.create_bucket(Bucket=bucket, **location)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(resource_tags(deployment))})
    changes.record("created", f"S3 bucket {bucket} (encrypted, public access blocked)")


def sync_tree(aws: Aws, local: Path, bucket: str, prefix: str) -> Synced:
    """Upload a file, or every file under a directory, to ``s3://bucket/prefix/...`` unless the object there
    already has the same content."""
    try:
        files = _list_files(local)
    except FileNotFoundError:
        raise CloudError(f"nothing to upload: {local} does not exist") from None
    s3 = aws.client("s3")
    uploaded, unchanged = [], []
    for path in files:
        key = _build_key(prefix, path.name if path == local else path.relative_to(local).as_posix())
        digest = file_digest(path)
        if _remote_digest(s3, bucket, key) == digest:
            unchanged.append(key)
            continue
        extra: dict[str, Any] = {"Metadata": {DIGEST_KEY: digest}}
        content_type = _guess_content_type(path)
        if content_type:
            extra["ContentType"] = content_type
        with aws_errors(f"upload {path} to s3://{bucket}/{key}"):
            s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
        uploaded.append(key)
    return Synced(uploaded, unchanged)


def _remote_digest(s3: Any, bucket: str, key: str) -> str | None:
    with aws_errors(f"check s3://{bucket}/{key}"):
        try:
            return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(DIGEST_KEY)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise


def export_bento(tag: str, directory: Path) -> Path:
    """Export the bento ``tag`` from the local store (models included) into ``directory``; return the archive."""
    import bentoml

    try:
        bento = bentoml.get(tag)
    except bentoml.exceptions.NotFound:
        raise CloudError(f"bento {tag!r} is not in the BentoML store (BENTOML_HOME): run make build") from None
    archive = directory / f"{bento.tag.name}-{bento.tag.version}.bento"
    bentoml.export_bento(bento.tag, str(archive))
    return archive


def upload_artifacts(
    aws: Aws,
    bucket: str,
    prefix: str,
    changes: Changes,
    *,
    features: Path | None,
    bento: str | None,
    create_bucket: bool = False,
) -> None:
    """Upload the feature store directory and the bento archive (a path to a ``.bento`` file, or a tag in the
    local store) under ``prefix``."""
    if features is None and bento is None:
        raise CloudError("nothing to upload: give --features and/or --bento")
    ensure_bucket(aws, bucket, create_bucket, changes)
    with tempfile.TemporaryDirectory(prefix="pricing-bento-") as scratch:
        trees: list[tuple[Path, str, str]] = []
        if features is not None:
            trees.append((features, _build_key(prefix, "features"), "feature store"))
        if bento is not None:
            archive = Path(bento) if bento.endswith(".bento") else export_bento(bento, Path(scratch))
            trees.append((archive, _build_key(prefix, "bentos"), "bento archive"))
        for local, key_prefix, what in trees:
            synced = sync_tree(aws, local, bucket, key_prefix)
            where = f"s3://{bucket}/{key_prefix}"
            if synced.uploaded:
                changes.record(
                    "uploaded", f"{what}: {len(synced.uploaded)} file(s) to {where} ({len(synced.unchanged)} unchanged)"
                )
            else:
                changes.unchanged(f"{what}: {len(synced.unchanged)} file(s) at {where}")
