"""Fixtures of the release-command tests: moto for every AWS API, a real registry for the image push.

Every test runs against the session's moto server (never a real AWS account) with dummy credentials, and
names its resources uniquely, since the server's state lives as long as the session.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest

from pricing.cloud.aws import Aws, connect
from pricing.cloud.cli import main
from tests.cloud.registry import Registry, run_registry

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "sagemaker.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class Run:
    """One release command's exit status and output."""

    code: int
    out: str
    err: str


@pytest.fixture
def aws(aws_env: str) -> Aws:
    """A session on the moto server, made the way the commands make theirs."""
    return connect()


@pytest.fixture
def name() -> str:
    """A deployment name no other test uses."""
    return f"pricing-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def role_arn(aws: Aws) -> str:
    """An execution role on moto that Lambda and SageMaker may assume (moto's Lambda checks that it exists)."""
    iam = aws.client("iam")
    role_name = f"pricing-exec-{uuid.uuid4().hex[:8]}"
    return iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]


@pytest.fixture
def cli(aws_env: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``python -m pricing.cloud ARGS`` in this process; return its exit status and output."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def registry(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The loopback registry, accepting only the credentials moto's ECR hands out."""
    ecr = boto3.client(
        "ecr", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    username, _, password = base64.b64decode(token).decode().partition(":")
    with run_registry(tmp_path_factory.mktemp("registry"), username, password) as running:
        yield running


def lines(text: str) -> list[str]:
    """The non-empty lines of a command's output."""
    return [line for line in text.splitlines() if line.strip()]
