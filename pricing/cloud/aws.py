"""What every release command shares: the boto3 session, one-line errors and the report of what changed.

Region, profile and endpoint come from the command line first, then from the environment as boto3 reads it
(``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` and the per-service
``AWS_ENDPOINT_URL_<SERVICE>``), so the same commands run against AWS or a local emulator.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    WaiterError,
)

# Every resource the commands create carries these tags; status and teardown only touch what carries them.
MANAGED_BY_KEY, MANAGED_BY = "managed-by", "pricing.cloud"
DEPLOYMENT_KEY = "pricing-deployment"
DEFAULT_NAME = "pricing"

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "403"}
_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}
_NOT_FOUND = {"ResourceNotFoundException", "NotFoundException", "RepositoryNotFoundException", "NoSuchEntity"}


class CloudError(RuntimeError):
    """An expected failure (credentials, region, permission, missing resource): the message is one line."""


class ResourceNotFoundError(CloudError):
    """A resource the command needs does not exist."""


@dataclass(frozen=True)
class Aws:
    """A boto3 session with a region and credentials, and clients made from it."""

    session: boto3.Session
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def region(self) -> str:
        """The session's region."""
        return self.session.region_name

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` with standard retries (one per service and session)."""
        if service not in self._clients:
            config = Config(retries={"mode": "standard", "max_attempts": 5})
            self._clients[service] = self.session.client(service, config=config)
        return self._clients[service]

    def account_id(self) -> str:
        """The caller's account id (STS)."""
        with aws_errors("look up the AWS account (sts get-caller-identity)"):
            return self.client("sts").get_caller_identity()["Account"]


def connect(region: str | None = None, profile: str | None = None) -> Aws:
    """A session for ``profile`` in ``region`` (each else boto3's own lookup); raise CloudError when either, or
    the credentials, cannot be found."""
    # boto3 reads AWS_DEFAULT_REGION; AWS_REGION is what the AWS CLI v2, the SDKs of other languages and
    # GitHub's configure-aws-credentials action set.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.Session(profile_name=profile or None, region_name=region)
    except ProfileNotFound as exc:
        raise CloudError(f"AWS profile {profile!r} not found in the AWS config files ({exc})") from None
    if not session.region_name:
        raise CloudError("no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise CloudError(f"AWS credentials could not be loaded: {exc}") from None
    if credentials is None:
        raise CloudError(
            "no AWS credentials: set AWS_PROFILE (after `aws configure` or `aws sso login`) or AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached"
        )
    return Aws(session)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def is_not_found(exc: ClientError) -> bool:
    """Whether ``exc`` says the resource does not exist (services spell that differently)."""
    code = error_code(exc)
    if code in _NOT_FOUND or code.endswith("NotFoundException") or code.startswith("NoSuch"):
        return True
    message = str(exc.response.get("Error", {}).get("Message", ""))
    # SageMaker answers a missing model, config or endpoint with a ValidationException.
    return code == "ValidationException" and ("Could not find" in message or "does not exist" in message)


def one_line(text: str) -> str:
    """``text`` with its whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn boto3's exceptions while doing ``action`` into a CloudError with one line that says what to do."""
    try:
        yield
    except CloudError:
        raise
    except ClientError as exc:
        code, message = error_code(exc), one_line(exc.response.get("Error", {}).get("Message", "") or exc)
        if code in _DENIED or "not authorized" in message.lower():
            raise CloudError(f"permission denied: cannot {action}: {message or code}") from None
        if code in _BAD_CREDENTIALS:
            raise CloudError(f"AWS rejected the credentials ({code}): {message}") from None
        if is_not_found(exc):
            raise ResourceNotFoundError(f"cannot {action}: not found ({code}): {message}") from None
        raise CloudError(f"cannot {action}: {code}: {message}") from None
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CloudError(f"no usable AWS credentials: {exc}") from None
    except NoRegionError:
        raise CloudError("no AWS region: pass --region or set AWS_REGION") from None
    except EndpointConnectionError as exc:
        raise CloudError(f"cannot {action}: no answer from {exc.kwargs.get('endpoint_url', 'AWS')}") from None
    except WaiterError as exc:
        raise CloudError(f"cannot {action}: {one_line(exc)}") from None
    except BotoCoreError as exc:
        raise CloudError(f"cannot {action}: {one_line(exc)}") from None


def short_hash(*parts: Any, length: int = 10) -> str:
    """A stable short hash of JSON-serialisable ``parts``: names immutable resources after their content."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def resource_tags(name: str) -> dict[str, str]:
    """The tags of every resource a command creates for the deployment ``name``."""
    return {MANAGED_BY_KEY: MANAGED_BY, DEPLOYMENT_KEY: name}


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """Tags as the list of ``{"Key": k, "Value": v}`` most AWS APIs take."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]


@dataclass
class Changes:
    """What a command changed, printed as it happens: one line per resource created, updated, deleted or
    found as wanted."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    changed: list[str] = field(default_factory=list)

    def record(self, verb: str, what: str) -> None:
        """Report a change (``created``, ``updated``, ``deleted``, ``pushed`` ...)."""
        self.changed.append(f"{verb} {what}")
        print(f"{verb:<10} {what}", file=self.out, flush=True)

    def unchanged(self, what: str) -> None:
        """Report a resource that was already as wanted."""
        print(f"{'unchanged':<10} {what}", file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Report a fact (a URL, a status) that is not a change."""
        print(text, file=self.out, flush=True)

    def summary(self) -> None:
        """The closing line: how many changes, or that nothing changed."""
        if self.changed:
            self.note(f"{len(self.changed)} change(s)")
        else:
            self.note("no changes: everything was already as wanted")
