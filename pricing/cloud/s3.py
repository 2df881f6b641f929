"""Upload training artefacts (feature store, reports, model directories) to S3."""

from __future__ import annotations

import logging
import mimetypes
import os
from pathlib import Path

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

# Explicit so the stored type does not depend on the machine's /etc/mime.types; mimetypes covers the rest.
CONTENT_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
# HEAD responses carry no error body, so botocore reports only the HTTP status as the code.
HEAD_ERROR_CODES = {"404": "NoSuchBucket", "403": "AccessDenied"}


class S3UploadError(RuntimeError):
    """An upload to S3 failed; the message names the bucket and the AWS error code."""


def make_s3_client(endpoint_url: str | None = None, region: str | None = None):
    """Return a boto3 S3 client for `endpoint_url` (else PRICING_S3_ENDPOINT_URL, else boto3's own
    AWS_ENDPOINT_URL handling) in `region` (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1)."""
    endpoint_url = endpoint_url or os.environ.get("PRICING_S3_ENDPOINT_URL") or None
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # S3-compatible endpoints (moto, MinIO) often cannot resolve virtual-host bucket names.
    config = Config(s3={"addressing_style": "path"}) if endpoint_url else None
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def upload_tree(local: Path, bucket: str, prefix: str, client=None) -> list[str]:
    """Upload a file, or every file under a directory (sorted, relative paths kept), to
    s3://bucket/prefix/...; return the keys written. Raises S3UploadError on any AWS failure."""
    local = Path(local)
    files = _list_files(local)
    client = client or make_s3_client()
    _check_bucket(client, bucket)

    keys = []
    for path in files:
        relative = path.name if path == local else path.relative_to(local).as_posix()
        key = _build_key(prefix, relative)
        _upload_file(client, path, bucket, key)
        keys.append(key)
    log.info("uploaded %d file(s) from %s to s3://%s/%s", len(keys), local, bucket, _build_key(prefix, ""))
    return keys


def _list_files(local: Path) -> list[Path]:
    """Return `local` itself if it is a file, else every file under it, sorted by relative path."""
    if local.is_file():
        return [local]
    if not local.is_dir():
        raise FileNotFoundError(f"nothing to upload: {local} does not exist")
    # Sorted as S3 lists keys (code-point order of the POSIX path), so results compare directly.
    return sorted((p for p in local.rglob("*") if p.is_file()), key=lambda p: p.relative_to(local).as_posix())


def _build_key(prefix: str, relative: str) -> str:
    """Join a prefix and a relative POSIX path into an S3 key without empty segments."""
    return "/".join(part for part in [*prefix.split("/"), *relative.split("/")] if part)


def _guess_content_type(path: Path) -> str | None:
    """Return the Content-Type to store for `path`, or None to leave S3's default."""
    suffix = path.suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]


def _check_bucket(client, bucket: str) -> None:
    """Raise S3UploadError unless `bucket` exists and is accessible; never creates it."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        code = HEAD_ERROR_CODES.get(code, code)
        raise S3UploadError(f"S3 bucket {bucket!r} does not exist or is not accessible ({code})") from exc
    except BotoCoreError as exc:
        raise S3UploadError(f"S3 bucket {bucket!r} could not be checked: {exc}") from exc


def _upload_file(client, path: Path, bucket: str, key: str) -> None:
    """Upload one file with boto3's managed (multipart above the threshold) transfer."""
    content_type = _guess_content_type(path)
    extra_args = {"ContentType": content_type} if content_type else None
    try:
        client.upload_file(str(path), bucket, key, ExtraArgs=extra_args)
    except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
        cause = exc if isinstance(exc, ClientError) else exc.__cause__ or exc.__context__
        code = cause.response["Error"].get("Code", "Unknown") if isinstance(cause, ClientError) else "no code"
        raise S3UploadError(f"upload of {path} to s3://{bucket}/{key} failed ({code}): {exc}") from exc
    log.debug("uploaded %s to s3://%s/%s", path, bucket, key)
