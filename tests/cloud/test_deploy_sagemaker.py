"""deploy-sagemaker, status and teardown against moto; UpdateEndpoint through botocore's Stubber.

moto 5.2.5 does not implement SageMaker's UpdateEndpoint (HTTP 500). The update test sends that one call to a
Stubber-wrapped client, which checks the request against the real API model, and plays AWS's side of it on
moto (the endpoint now on the new configuration); every other call of the update goes to moto.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pricing.cloud import sagemaker
from pricing.cloud.aws import Aws, Changes, CloudError
from pricing.cloud.sagemaker import EndpointSpec, Waiter
from tests.cloud.conftest import lines

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pricing:{}"


def own(items: list[dict[str, Any]], key: str, name: str) -> list[str]:
    """The names among ``items`` that belong to the deployment ``name`` (moto's NameContains filters nothing)."""
    return [item[key] for item in items if item[key].startswith(f"{name}-")]


def deploy_args(name: str, role_arn: str, tag: str, *extra: str) -> list[str]:
    return ["deploy-sagemaker", "--name", name, "--image-uri", IMAGE.format(tag), "--role-arn", role_arn,
            "--poll-interval", "0", *extra]  # fmt: skip


def test_first_deploy_creates_model_config_and_endpoint(cli, aws, name, role_arn) -> None:
    run = cli(*deploy_args(name, role_arn, "v1", "--env", "PRICING_CACHE_TTL=60"))
    assert run.code == 0, run.err

    sm = aws.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 5}
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == IMAGE.format("v1")
    assert model["PrimaryContainer"]["Environment"] == {"PRICING_CACHE_TTL": "60"}
    assert model["ExecutionRoleArn"] == role_arn
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags == {"managed-by": "pricing.cloud", "pricing-deployment": name}
    assert [line.split()[0] for line in lines(run.out)[:3]] == ["created"] * 3
    assert lines(run.out)[-1] == "3 change(s)"


def test_second_deploy_changes_nothing_and_says_so(cli, name, role_arn) -> None:
    assert cli(*deploy_args(name, role_arn, "v1")).code == 0

    run = cli(*deploy_args(name, role_arn, "v1"))

    assert run.code == 0, run.err
    assert "created" not in run.out and "updated" not in run.out
    assert lines(run.out)[-1] == "no changes: everything was already as wanted"


def test_instance_endpoint_config(cli, aws, name, role_arn) -> None:
    run = cli(*deploy_args(name, role_arn, "v1", "--instance-type", "ml.m5.large", "--instance-count", "2"))
    assert run.code == 0, run.err
    sm = aws.client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    [variant] = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    assert "ServerlessConfig" not in variant


class UpdateEndpointOnStubber:
    """A SageMaker client on moto whose ``update_endpoint`` goes to a Stubber-checked client instead; AWS's part of
    the update (the endpoint now runs the new configuration) is then played on moto."""

    def __init__(self, moto_client: Any) -> None:
        self._moto = moto_client
        self.stubbed = boto3.client(
            "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        self.stubber = Stubber(self.stubbed)
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._moto, attribute)

    def expect(self, name: str, config: str) -> None:
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
        self.stubber.add_response(
            "update_endpoint", {"EndpointArn": arn}, {"EndpointName": name, "EndpointConfigName": config}
        )

    def update_endpoint(self, **params: Any) -> dict[str, Any]:
        with self.stubber:
            answer = self.stubbed.update_endpoint(**params)  # validated against the API model
        self.calls.append(params)
        tags = self._moto.list_tags(ResourceArn=self._moto.describe_endpoint(EndpointName=params["EndpointName"])[
            "EndpointArn"])["Tags"]  # fmt: skip
        self._moto.delete_endpoint(EndpointName=params["EndpointName"])
        self._moto.create_endpoint(
            EndpointName=params["EndpointName"], EndpointConfigName=params["EndpointConfigName"], Tags=tags
        )
        return answer


class AwsWithStubbedUpdate(Aws):
    """The moto session, but its SageMaker client is ``UpdateEndpointOnStubber``."""

    def __init__(self, aws: Aws, client: UpdateEndpointOnStubber) -> None:
        object.__setattr__(self, "session", aws.session)
        object.__setattr__(self, "_clients", {})
        object.__setattr__(self, "_sagemaker", client)

    def client(self, service: str) -> Any:
        return self._sagemaker if service == "sagemaker" else super().client(service)


def test_update_switches_to_a_new_config_then_deletes_the_old(aws, name, role_arn, capsys) -> None:
    spec_v1 = EndpointSpec(name, IMAGE.format("v1"), role_arn, deployment=name)
    spec_v2 = EndpointSpec(name, IMAGE.format("v2"), role_arn, deployment=name, memory_mb=2048)
    sagemaker.deploy(aws, spec_v1, Changes(), Waiter(interval_s=0))
    client = UpdateEndpointOnStubber(aws.client("sagemaker"))
    client.expect(name, spec_v2.config_name)

    endpoint = sagemaker.deploy(AwsWithStubbedUpdate(aws, client), spec_v2, Changes(), Waiter(interval_s=0))

    client.stubber.assert_no_pending_responses()
    assert client.calls == [{"EndpointName": name, "EndpointConfigName": spec_v2.config_name}]
    assert endpoint["EndpointConfigName"] == spec_v2.config_name
    sm = aws.client("sagemaker")
    assert own(sm.list_endpoint_configs()["EndpointConfigs"], "EndpointConfigName", name) == [spec_v2.config_name]
    assert own(sm.list_models()["Models"], "ModelName", name) == [spec_v2.model_name]
    out = capsys.readouterr().out
    assert f"updated    SageMaker endpoint {name}: {spec_v1.config_name} -> {spec_v2.config_name}" in out
    assert f"deleted    SageMaker endpoint config {spec_v1.config_name}" in out
    assert f"deleted    SageMaker model {spec_v1.model_name}" in out


def _endpoint(name: str, status: str, config: str, **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return {
        "EndpointName": name, "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": now, "LastModifiedTime": now,
        **extra,
    }  # fmt: skip


class StubbedAws(Aws):
    """A session whose SageMaker client is Stubber-driven (for states moto never reaches)."""

    def __init__(self) -> None:
        object.__setattr__(self, "session", boto3.Session(region_name="us-east-1", aws_access_key_id="x",
                                                          aws_secret_access_key="y"))  # fmt: skip
        object.__setattr__(self, "_clients", {})
        client = self.session.client("sagemaker")
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "stubber", Stubber(client))

    def client(self, service: str) -> Any:
        return self._client


def test_failed_endpoint_gives_its_failure_reason() -> None:
    aws = StubbedAws()
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    aws.stubber.add_response("describe_endpoint", _endpoint("p", "Creating", "c"), {"EndpointName": "p"})
    aws.stubber.add_response("describe_endpoint", _endpoint("p", "Failed", "c", FailureReason=reason))
    with aws.stubber, pytest.raises(CloudError, match="SageMaker endpoint p failed: The primary container"):
        sagemaker.wait_in_service(aws, "p", Waiter(interval_s=0), config_name="c")


def test_waiting_stops_at_the_timeout_with_the_last_status() -> None:
    aws = StubbedAws()
    clock = iter([0.0, 10.0, 20.0, 31.0])
    for _ in range(3):
        aws.stubber.add_response("describe_endpoint", _endpoint("p", "Updating", "c"))
    waiter = Waiter(timeout_s=30, interval_s=0, clock=lambda: next(clock), sleep=lambda _: None)
    with aws.stubber, pytest.raises(CloudError, match="still Updating after 30 s"):
        sagemaker.wait_in_service(aws, "p", waiter, config_name="c")


def test_a_failed_endpoint_is_replaced_on_the_next_deploy(aws, name, role_arn, capsys) -> None:
    spec = EndpointSpec(name, IMAGE.format("v1"), role_arn, deployment=name)
    sagemaker.deploy(aws, spec, Changes(), Waiter(interval_s=0))
    real = sagemaker.describe_endpoint
    calls = {"n": 0}

    def failed_once(aws_: Aws, endpoint: str):
        calls["n"] += 1
        answer = real(aws_, endpoint)
        if calls["n"] == 1 and answer is not None:
            return {**answer, "EndpointStatus": "Failed", "FailureReason": "image not found"}
        return answer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sagemaker, "describe_endpoint", failed_once)
        sagemaker.deploy(aws, spec, Changes(), Waiter(interval_s=0))
    out = capsys.readouterr().out
    assert f"deleted    SageMaker endpoint {name} (failed: image not found)" in out
    assert f"created    SageMaker endpoint {name}" in out
    assert aws.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"


def test_status_and_teardown_remove_everything_once(cli, aws, name, role_arn) -> None:
    assert cli(*deploy_args(name, role_arn, "v1")).code == 0
    sm = aws.client("sagemaker")
    foreign = f"{name}-{uuid.uuid4().hex[:10]}"  # same prefix, not made by the commands: must survive
    sm.create_model(ModelName=foreign, PrimaryContainer={"Image": IMAGE.format("x")}, ExecutionRoleArn=role_arn)

    status = cli("status", "--name", name)
    assert status.code == 0, status.err
    assert f"SageMaker endpoint {name}: InService" in status.out
    assert IMAGE.format("v1") in status.out

    down = cli("teardown", "--name", name, "--poll-interval", "0")
    assert down.code == 0, down.err
    assert [line.split()[0] for line in lines(down.out)].count("deleted") == 3
    assert sagemaker.describe_endpoint(aws, name) is None
    assert own(sm.list_models()["Models"], "ModelName", name) == [foreign]
    assert own(sm.list_endpoint_configs()["EndpointConfigs"], "EndpointConfigName", name) == []

    again = cli("teardown", "--name", name, "--poll-interval", "0")
    assert again.code == 0
    assert lines(again.out)[-1] == "no changes: everything was already as wanted"
    gone = cli("status", "--name", name)
    assert gone.code == 1 and gone.err.startswith("error: nothing deployed under the name")


def test_serverless_limits_are_checked_before_any_call(cli, name, role_arn) -> None:
    run = cli(*deploy_args(name, role_arn, "v1", "--memory", "1500"))
    assert run.code == 1
    assert run.err == "error: serverless memory must be one of 1024, 2048, 3072, 4096, 5120, 6144 MB, not 1500\n"


def test_a_missing_role_is_one_line(cli, name, monkeypatch) -> None:
    monkeypatch.delenv("PRICING_SAGEMAKER_ROLE_ARN", raising=False)
    run = cli("deploy-sagemaker", "--name", name, "--image-uri", IMAGE.format("v1"))
    assert run.code == 1
    assert run.err == "error: --role-arn is required (or set PRICING_SAGEMAKER_ROLE_ARN)\n"


def test_the_image_defaults_to_the_repository_with_the_tag_asked_for(cli, aws, name, role_arn) -> None:
    missing = cli("deploy-sagemaker", "--name", name, "--image-tag", "v9", "--role-arn", role_arn)
    assert (missing.code, missing.err) == (
        1,
        f"error: ECR repository '{name}' not found in us-east-1: run push-image\n",
    )

    uri = aws.client("ecr").create_repository(repositoryName=name)["repository"]["repositoryUri"]
    run = cli("deploy-sagemaker", "--name", name, "--image-tag", "v9", "--role-arn", role_arn, "--poll-interval", "0")
    assert run.code == 0, run.err
    sm = aws.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    )
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Image"] == f"{uri}:v9"
