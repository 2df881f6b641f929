"""Deploy the image as a SageMaker endpoint: a model, an endpoint configuration (serverless or instances) and
the endpoint.

Models and endpoint configurations cannot change in SageMaker, so each is named after a hash of what it holds
(``<endpoint>-<hash>``): the same deploy finds them already there, a different one makes new ones. An update
switches the live endpoint to the new configuration (``UpdateEndpoint``, no downtime), waits until it is
``InService`` again and only then deletes the old configuration and model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from pricing.cloud.aws import (
    MANAGED_BY,
    MANAGED_BY_KEY,
    Aws,
    Changes,
    CloudError,
    ResourceNotFoundError,
    aws_errors,
    is_not_found,
    resource_tags,
    short_hash,
    tag_list,
)

VARIANT = "AllTraffic"
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
NAME_LIMIT = 63
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")


@dataclass(frozen=True)
class EndpointSpec:
    """What the endpoint should run: the image, its role and environment, and serverless or instance capacity."""

    endpoint: str
    image_uri: str
    role_arn: str
    environment: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1024  # serverless
    max_concurrency: int = 5  # serverless
    instance_type: str | None = None  # set: an instance endpoint instead of serverless
    instance_count: int = 1
    deployment: str = "pricing"

    def __post_init__(self) -> None:
        if self.instance_type is None and self.memory_mb not in SERVERLESS_MEMORY_SIZES:
            sizes = ", ".join(map(str, SERVERLESS_MEMORY_SIZES))
            raise CloudError(f"serverless memory must be one of {sizes} MB, not {self.memory_mb}")
        if not 1 <= self.max_concurrency <= 200:
            raise CloudError(f"serverless max concurrency must be 1-200, not {self.max_concurrency}")
        if self.instance_count < 1:
            raise CloudError(f"instance count must be at least 1, not {self.instance_count}")

    def container(self) -> dict[str, Any]:
        """The model's primary container: SageMaker runs ``IMAGE serve`` on port 8080."""
        return {"Image": self.image_uri, "Mode": "SingleModel", "Environment": dict(sorted(self.environment.items()))}

    def variant(self, model_name: str) -> dict[str, Any]:
        """The endpoint configuration's one production variant."""
        variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model_name}
        if self.instance_type:
            variant |= {"InstanceType": self.instance_type, "InitialInstanceCount": self.instance_count}
        else:
            variant["ServerlessConfig"] = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        return variant

    @property
    def model_name(self) -> str:
        """The model's name: the endpoint's and a hash of the container and role."""
        return _versioned(self.endpoint, short_hash(self.container(), self.role_arn))

    @property
    def config_name(self) -> str:
        """The endpoint configuration's name: the endpoint's and a hash of its variant."""
        return _versioned(self.endpoint, short_hash(self.variant(self.model_name)))

    def capacity(self) -> str:
        """Serverless memory and concurrency, or instance type and count, in words."""
        if self.instance_type:
            return f"{self.instance_count} x {self.instance_type}"
        return f"serverless {self.memory_mb} MB, max concurrency {self.max_concurrency}"


def _versioned(endpoint: str, digest: str) -> str:
    return f"{endpoint[: NAME_LIMIT - len(digest) - 1]}-{digest}"


@dataclass
class Waiter:
    """Polls until a state is reached or a deadline passes; the clock and sleep are swappable for tests."""

    timeout_s: float = 1800
    interval_s: float = 15
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


# ---------------------------------------------------------------------------------------------------
# Deploy


def deploy(aws: Aws, spec: EndpointSpec, changes: Changes, waiter: Waiter | None = None) -> dict[str, Any]:
    """Create or update the endpoint so that it serves ``spec``; return its final description."""
    waiter = waiter or Waiter()
    sm = aws.client("sagemaker")
    _ensure_model(sm, spec, changes)
    _ensure_config(sm, spec, changes)

    endpoint = describe_endpoint(aws, spec.endpoint)
    if endpoint is not None and endpoint["EndpointStatus"] in BUSY:
        changes.note(f"waiting: endpoint {spec.endpoint} is {endpoint['EndpointStatus']}")
        endpoint = wait_in_service(aws, spec.endpoint, waiter, config_name=None)
    if endpoint is not None and endpoint["EndpointStatus"] == "Failed":
        # A failed endpoint cannot be updated, only deleted.
        _delete_endpoint(aws, spec.endpoint, waiter, changes, reason=f"failed: {endpoint.get('FailureReason', '?')}")
        endpoint = None

    if endpoint is None:
        with aws_errors(f"create the SageMaker endpoint {spec.endpoint}"):
            sm.create_endpoint(
                EndpointName=spec.endpoint,
                EndpointConfigName=spec.config_name,
                Tags=tag_list(resource_tags(spec.deployment)),
            )
        changes.record("created", f"SageMaker endpoint {spec.endpoint} ({spec.capacity()})")
        return wait_in_service(aws, spec.endpoint, waiter, config_name=spec.config_name)

    old_config = endpoint["EndpointConfigName"]
    if old_config == spec.config_name:
        changes.unchanged(f"SageMaker endpoint {spec.endpoint} on {old_config} ({endpoint['EndpointStatus']})")
        return endpoint

    old_models = _config_models(sm, old_config)
    with aws_errors(f"update the SageMaker endpoint {spec.endpoint}"):
        sm.update_endpoint(EndpointName=spec.endpoint, EndpointConfigName=spec.config_name)
    changes.record("updated", f"SageMaker endpoint {spec.endpoint}: {old_config} -> {spec.config_name}")
    endpoint = wait_in_service(aws, spec.endpoint, waiter, config_name=spec.config_name)
    _delete_config(sm, old_config, changes)
    for model in old_models:
        if model != spec.model_name:
            _delete_model(sm, model, changes)
    return endpoint


def _ensure_model(sm: Any, spec: EndpointSpec, changes: Changes) -> None:
    name = spec.model_name
    if _exists(lambda: sm.describe_model(ModelName=name), f"describe the SageMaker model {name}"):
        changes.unchanged(f"SageMaker model {name}")
        return
    with aws_errors(f"create the SageMaker model {name}"):
        sm.create_model(
            ModelName=name,
            PrimaryContainer=spec.container(),
            ExecutionRoleArn=spec.role_arn,
            Tags=tag_list(resource_tags(spec.deployment)),
        )
    changes.record("created", f"SageMaker model {name} ({spec.image_uri})")


def _ensure_config(sm: Any, spec: EndpointSpec, changes: Changes) -> None:
    name = spec.config_name
    if _exists(lambda: sm.describe_endpoint_config(EndpointConfigName=name), f"describe the endpoint config {name}"):
        changes.unchanged(f"SageMaker endpoint config {name}")
        return
    with aws_errors(f"create the SageMaker endpoint config {name}"):
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[spec.variant(spec.model_name)],
            Tags=tag_list(resource_tags(spec.deployment)),
        )
    changes.record("created", f"SageMaker endpoint config {name} ({spec.capacity()})")


def _exists(describe: Callable[[], Any], action: str) -> bool:
    with aws_errors(action):
        try:
            describe()
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
    return True


def _config_models(sm: Any, config_name: str) -> list[str]:
    with aws_errors(f"describe the endpoint config {config_name}"):
        try:
            variants = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
    return [variant["ModelName"] for variant in variants]


# ---------------------------------------------------------------------------------------------------
# State and waiting


def describe_endpoint(aws: Aws, name: str) -> dict[str, Any] | None:
    """The endpoint's description, or None when there is no such endpoint."""
    sm = aws.client("sagemaker")
    with aws_errors(f"describe the SageMaker endpoint {name}"):
        try:
            return sm.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise


def require_endpoint(aws: Aws, name: str) -> dict[str, Any]:
    """The endpoint's description; ResourceNotFoundError naming the endpoint and region when it does not exist."""
    endpoint = describe_endpoint(aws, name)
    if endpoint is None:
        raise ResourceNotFoundError(f"SageMaker endpoint {name!r} not found in {aws.region}")
    return endpoint


def wait_in_service(aws: Aws, name: str, waiter: Waiter, config_name: str | None) -> dict[str, Any]:
    """Poll the endpoint until it is ``InService`` (on ``config_name`` when given); CloudError with SageMaker's
    failure reason when it fails, and with its last status when the timeout passes."""
    deadline = waiter.clock() + waiter.timeout_s
    while True:
        endpoint = require_endpoint(aws, name)
        status = endpoint["EndpointStatus"]
        if status == "InService" and config_name in (None, endpoint["EndpointConfigName"]):
            return endpoint
        if status == "Failed":
            reason = endpoint.get("FailureReason", "no reason given")
            raise CloudError(f"SageMaker endpoint {name} failed: {reason}")
        if status in ("OutOfService", "Deleting"):
            raise CloudError(f"SageMaker endpoint {name} is {status}")
        if waiter.clock() >= deadline:
            raise CloudError(
                f"SageMaker endpoint {name} still {status} after {waiter.timeout_s:.0f} s; "
                f"see its CloudWatch logs (/aws/sagemaker/Endpoints/{name})"
            )
        waiter.sleep(waiter.interval_s)


# ---------------------------------------------------------------------------------------------------
# Status and teardown


def status(aws: Aws, name: str) -> list[str]:
    """Lines describing the endpoint, its configuration and model; empty when there is no endpoint."""
    endpoint = describe_endpoint(aws, name)
    if endpoint is None:
        return []
    sm = aws.client("sagemaker")
    lines = [f"SageMaker endpoint {name}: {endpoint['EndpointStatus']}, config {endpoint['EndpointConfigName']}"]
    if endpoint.get("FailureReason"):
        lines.append(f"  failure reason: {endpoint['FailureReason']}")
    with aws_errors(f"describe the endpoint config {endpoint['EndpointConfigName']}"):
        try:
            variants = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])[
                "ProductionVariants"
            ]
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            variants = []
    for variant in variants:
        serverless = variant.get("ServerlessConfig")
        capacity = (
            f"serverless {serverless['MemorySizeInMB']} MB, max concurrency {serverless['MaxConcurrency']}"
            if serverless
            else f"{variant.get('InitialInstanceCount')} x {variant.get('InstanceType')}"
        )
        with aws_errors(f"describe the SageMaker model {variant['ModelName']}"):
            image = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Image"]
        lines.append(f"  variant {variant['VariantName']}: model {variant['ModelName']}, {capacity}, image {image}")
    return lines


def teardown(aws: Aws, name: str, changes: Changes, waiter: Waiter | None = None) -> None:
    """Delete the endpoint and every endpoint configuration and model the deploys made for it."""
    waiter = waiter or Waiter()
    sm = aws.client("sagemaker")
    endpoint = describe_endpoint(aws, name)
    if endpoint is not None:
        _delete_endpoint(aws, name, waiter, changes)
    else:
        changes.unchanged(f"SageMaker endpoint {name}: not there")
    prefix = _versioned(name, "x" * 10)[:-10]
    with aws_errors("list the SageMaker endpoint configs"):
        configs = [
            c["EndpointConfigName"]
            for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=prefix)
            for c in page["EndpointConfigs"]
            if c["EndpointConfigName"].startswith(prefix)
        ]
    for config in configs:
        if _managed(sm, _config_arn(sm, config)):
            _delete_config(sm, config, changes)
    with aws_errors("list the SageMaker models"):
        models = [
            m
            for page in sm.get_paginator("list_models").paginate(NameContains=prefix)
            for m in page["Models"]
            if m["ModelName"].startswith(prefix)
        ]
    for model in models:
        if _managed(sm, model["ModelArn"]):
            _delete_model(sm, model["ModelName"], changes)


def _delete_endpoint(aws: Aws, name: str, waiter: Waiter, changes: Changes, reason: str = "") -> None:
    sm = aws.client("sagemaker")
    with aws_errors(f"delete the SageMaker endpoint {name}"):
        sm.delete_endpoint(EndpointName=name)
    deadline = waiter.clock() + waiter.timeout_s
    while describe_endpoint(aws, name) is not None:
        if waiter.clock() >= deadline:
            raise CloudError(f"SageMaker endpoint {name} still deleting after {waiter.timeout_s:.0f} s")
        waiter.sleep(waiter.interval_s)
    changes.record("deleted", f"SageMaker endpoint {name}" + (f" ({reason})" if reason else ""))


def _config_arn(sm: Any, config: str) -> str:
    with aws_errors(f"describe the endpoint config {config}"):
        return sm.describe_endpoint_config(EndpointConfigName=config)["EndpointConfigArn"]


def _managed(sm: Any, arn: str) -> bool:
    with aws_errors(f"list the tags of {arn}"):
        tags = sm.list_tags(ResourceArn=arn).get("Tags", [])
    return any(t["Key"] == MANAGED_BY_KEY and t["Value"] == MANAGED_BY for t in tags)


def _delete_config(sm: Any, name: str, changes: Changes) -> None:
    _delete(f"SageMaker endpoint config {name}", lambda: sm.delete_endpoint_config(EndpointConfigName=name), changes)


def _delete_model(sm: Any, name: str, changes: Changes) -> None:
    _delete(f"SageMaker model {name}", lambda: sm.delete_model(ModelName=name), changes)


def _delete(what: str, delete: Callable[[], object], changes: Changes) -> None:
    """Delete ``what``; one that is already gone is not a change."""
    with aws_errors(f"delete the {what}"):
        try:
            delete()
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            return
    changes.record("deleted", what)
