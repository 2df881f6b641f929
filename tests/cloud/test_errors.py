"""Expected failures print one line and exit 1, with no traceback: as a real ``python -m pricing.cloud`` process.

Credentials and region are looked up the way boto3 does (environment, config files, instance metadata), so
each case runs with an environment that has exactly what it needs and nothing from the machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pricing.cloud.aws import CloudError, ResourceNotFoundError, aws_errors
from tests.support import ROOT


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": env.pop("HOME"), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-m", "pricing.cloud", *args], cwd=ROOT, env={**base, **env}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


def isolated(tmp_path: Path, **env: str) -> dict[str, str]:
    """No credentials or config but what ``env`` gives."""
    return {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        **env,
    }


def assert_one_line_error(proc: subprocess.CompletedProcess[str], starts: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {starts}"), proc.stderr


def test_missing_credentials(tmp_path, moto_server) -> None:
    env = isolated(tmp_path, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=moto_server)
    proc = run_cli(env, "status")
    assert_one_line_error(proc, "no AWS credentials: set AWS_PROFILE")


def test_missing_region(tmp_path, moto_server) -> None:
    env = isolated(tmp_path, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=moto_server)
    proc = run_cli(env, "deploy-sagemaker", "--image-uri", "x", "--role-arn", "y")
    assert_one_line_error(proc, "no AWS region: pass --region or set AWS_REGION")


def test_unknown_profile(tmp_path) -> None:
    proc = run_cli(isolated(tmp_path), "status", "--profile", "nobody", "--region", "eu-west-1")
    assert_one_line_error(proc, "AWS profile 'nobody' not found")


def test_unknown_endpoint(tmp_path, moto_server) -> None:
    env = isolated(tmp_path, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=moto_server)
    proc = run_cli(env, "invoke", "--sagemaker", "no-such-endpoint", "--stockcode", "85123A", "--region", "eu-west-1")
    assert_one_line_error(proc, "SageMaker endpoint 'no-such-endpoint' not found in eu-west-1")


def test_profile_and_region_options_reach_the_session(tmp_path, moto_server) -> None:
    (tmp_path / "credentials").write_text("[deployer]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = isolated(tmp_path, AWS_ENDPOINT_URL=moto_server)
    proc = run_cli(env, "status", "--profile", "deployer", "--region", "ap-southeast-2", "--name", "nothing-here")
    assert_one_line_error(proc, "nothing deployed under the name 'nothing-here' in ap-southeast-2")


def test_no_answer_from_the_endpoint(tmp_path) -> None:
    env = isolated(tmp_path, AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    proc = run_cli(env, "status", "--region", "us-east-1")
    assert_one_line_error(proc, "cannot describe the ECR repository pricing: no answer from http://127.0.0.1:9")


def _client_error(code: str, message: str, status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "CreateEndpoint")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            _client_error("AccessDeniedException", "User: arn:aws:iam::1:user/ci is not authorized\nto perform"),
            "permission denied: cannot create the endpoint: User: arn:aws:iam::1:user/ci is not authorized to perform",
        ),
        (_client_error("ExpiredTokenException", "The security token included in the request is expired"),
         "AWS rejected the credentials (ExpiredTokenException): The security token included in the request is expired"),
        (_client_error("ThrottlingException", "Rate exceeded"),
         "cannot create the endpoint: ThrottlingException: Rate exceeded"),
        (EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"),
         "cannot create the endpoint: no answer from https://api.sagemaker.us-east-1.amazonaws.com"),
    ],
)  # fmt: skip
def test_aws_errors_become_one_line(error: Exception, expected: str) -> None:
    with pytest.raises(CloudError) as excinfo, aws_errors("create the endpoint"):
        raise error
    assert str(excinfo.value) == expected


def test_not_found_errors_are_their_own_kind() -> None:
    error = _client_error("ValidationException", 'Could not find endpoint "x".')
    with pytest.raises(ResourceNotFoundError), aws_errors("describe the endpoint"):
        raise error
