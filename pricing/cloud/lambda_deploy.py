"""Deploy the image as an AWS Lambda function with an HTTP front door.

The function runs the image with the command ``lambda`` (the image's Lambda entry point). A deploy updates
``$LATEST`` (code, then configuration) when it differs from what is asked, publishes a version when the alias
does not already point at one that matches, and moves the alias (default ``live``) to it. The front door
invokes the alias: a function URL, or an API Gateway HTTP API whose ``ANY /{proxy+}`` and ``$default`` routes
proxy every request (payload 2.0), each with the resource-based permission that lets it invoke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

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
)
from pricing.cloud.sagemaker import Waiter

FrontDoor = Literal["url", "http-api", "none"]
URL_STATEMENT = "pricing-function-url"
URL_INVOKE_STATEMENT = "pricing-function-url-invoke"
API_STATEMENT = "pricing-http-api"
PROXY_ROUTES = ("ANY /{proxy+}", "$default")


@dataclass(frozen=True)
class FunctionSpec:
    """What the function should be: image, role, size, environment, alias and front door."""

    function: str
    image_uri: str
    role_arn: str
    memory_mb: int = 2048
    timeout_s: int = 60
    architecture: str = "x86_64"
    environment: dict[str, str] = field(default_factory=dict)
    alias: str = "live"
    front_door: FrontDoor = "url"
    url_auth: str = "NONE"
    cors_origins: tuple[str, ...] = ()
    deployment: str = "pricing"

    def __post_init__(self) -> None:
        if not 128 <= self.memory_mb <= 10240:
            raise CloudError(f"Lambda memory must be 128-10240 MB, not {self.memory_mb}")
        if not 1 <= self.timeout_s <= 900:
            raise CloudError(f"Lambda timeout must be 1-900 s, not {self.timeout_s}")
        if self.architecture not in ("x86_64", "arm64"):
            raise CloudError(f"Lambda architecture must be x86_64 or arm64, not {self.architecture}")
        if self.url_auth not in ("NONE", "AWS_IAM"):
            raise CloudError(f"function URL auth must be NONE or AWS_IAM, not {self.url_auth}")

    def configuration(self) -> dict[str, Any]:
        """The function configuration fields a deploy sets (and compares)."""
        return {
            "Role": self.role_arn,
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_s,
            "Environment": {"Variables": dict(sorted(self.environment.items()))},
            "ImageConfig": {"Command": ["lambda"]},
        }

    def cors(self) -> dict[str, Any]:
        """The front door's CORS settings: only the configured origins."""
        return {
            "AllowOrigins": list(self.cors_origins),
            "AllowMethods": ["GET", "POST"] if self.front_door == "url" else ["GET", "POST", "OPTIONS"],
            "AllowHeaders": ["content-type", "x-api-key"],
            "MaxAge": 600,
        }


# ---------------------------------------------------------------------------------------------------
# The function, its version and alias


def deploy(aws: Aws, spec: FunctionSpec, changes: Changes, waiter: Waiter | None = None) -> str | None:
    """Create or update the function, its alias and front door so that they serve ``spec``; return the front
    door's URL (None without one)."""
    waiter = waiter or Waiter(timeout_s=600, interval_s=2)
    lam = aws.client("lambda")
    changed = _ensure_function(lam, spec, changes, waiter)
    alias_arn = _ensure_alias(lam, spec, changes, must_publish=changed)
    # One front door: the one asked for is made, the other (from an earlier deploy) removed.
    if spec.front_door != "url":
        _delete_function_url(lam, spec.function, spec.alias, changes)
    if spec.front_door != "http-api":
        _delete_http_api(aws, spec.function, changes)
    if spec.front_door == "url":
        return _ensure_function_url(lam, spec, changes)
    if spec.front_door == "http-api":
        return _ensure_http_api(aws, spec, alias_arn, changes)
    return None


def get_function(lam: Any, name: str, qualifier: str | None = None) -> dict[str, Any] | None:
    """``GetFunction``'s answer (configuration and code), or None when there is no such function (version)."""
    with aws_errors(f"describe the Lambda function {name}"):
        try:
            return lam.get_function(FunctionName=name, **({"Qualifier": qualifier} if qualifier else {}))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise


def _ensure_function(lam: Any, spec: FunctionSpec, changes: Changes, waiter: Waiter) -> bool:
    """Make ``$LATEST`` match ``spec``; return whether anything changed."""
    current = get_function(lam, spec.function)
    if current is None:
        with aws_errors(f"create the Lambda function {spec.function}"):
            lam.create_function(
                FunctionName=spec.function,
                PackageType="Image",
                Code={"ImageUri": spec.image_uri},
                Architectures=[spec.architecture],
                Publish=False,
                Tags=resource_tags(spec.deployment),
                **spec.configuration(),
            )
        changes.record("created", f"Lambda function {spec.function} ({spec.image_uri}, {spec.memory_mb} MB)")
        _wait_ready(lam, spec.function, waiter)
        return True

    changed = False
    config = current["Configuration"]
    if current["Code"].get("ImageUri") != spec.image_uri or config.get("Architectures") != [spec.architecture]:
        with aws_errors(f"update the code of the Lambda function {spec.function}"):
            lam.update_function_code(
                FunctionName=spec.function, ImageUri=spec.image_uri, Architectures=[spec.architecture]
            )
        changes.record("updated", f"Lambda function {spec.function}: image {spec.image_uri}")
        _wait_ready(lam, spec.function, waiter)
        changed = True
    differences = _config_differences(config, spec)
    if differences:
        with aws_errors(f"update the configuration of the Lambda function {spec.function}"):
            lam.update_function_configuration(FunctionName=spec.function, **spec.configuration())
        changes.record("updated", f"Lambda function {spec.function}: {', '.join(differences)}")
        _wait_ready(lam, spec.function, waiter)
        changed = True
    if not changed:
        changes.unchanged(f"Lambda function {spec.function} ({spec.image_uri})")
    return changed


def _config_differences(config: dict[str, Any], spec: FunctionSpec) -> list[str]:
    """Names of the configuration fields that differ from ``spec``."""
    current = {
        "Role": config.get("Role"),
        "MemorySize": config.get("MemorySize"),
        "Timeout": config.get("Timeout"),
        "Environment": {"Variables": dict(sorted((config.get("Environment") or {}).get("Variables", {}).items()))},
        "ImageConfig": {"Command": (config.get("ImageConfigResponse") or {}).get("ImageConfig", {}).get("Command")},
    }
    return [name for name, value in spec.configuration().items() if current[name] != value]


def _wait_ready(lam: Any, name: str, waiter: Waiter) -> None:
    """Wait until the function is Active and its last update succeeded; CloudError with Lambda's reason if not."""
    deadline = waiter.clock() + waiter.timeout_s
    while True:
        with aws_errors(f"describe the Lambda function {name}"):
            config = lam.get_function_configuration(FunctionName=name)
        state, update = config.get("State", "Active"), config.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = config.get("StateReason") or config.get("LastUpdateStatusReason") or "no reason given"
            raise CloudError(f"Lambda function {name} failed: {reason}")
        if state == "Active" and update == "Successful":
            return
        if waiter.clock() >= deadline:
            raise CloudError(f"Lambda function {name} still {state}/{update} after {waiter.timeout_s:.0f} s")
        waiter.sleep(waiter.interval_s)


def _ensure_alias(lam: Any, spec: FunctionSpec, changes: Changes, must_publish: bool) -> str:
    """Point the alias at a published version that matches ``spec``, publishing one when needed; return the
    alias ARN."""
    alias = _get_alias(lam, spec)
    if alias is not None and not must_publish:
        version = get_function(lam, spec.function, alias["FunctionVersion"])
        if version is not None and _matches(version, spec):
            changes.unchanged(f"Lambda alias {spec.function}:{spec.alias} -> version {alias['FunctionVersion']}")
            return alias["AliasArn"]
    with aws_errors(f"publish a version of the Lambda function {spec.function}"):
        published = lam.publish_version(FunctionName=spec.function, Description=spec.image_uri)["Version"]
    changes.record("published", f"Lambda function {spec.function} version {published}")
    if alias is None:
        with aws_errors(f"create the Lambda alias {spec.alias}"):
            arn = lam.create_alias(FunctionName=spec.function, Name=spec.alias, FunctionVersion=published)["AliasArn"]
        changes.record("created", f"Lambda alias {spec.function}:{spec.alias} -> version {published}")
        return arn
    with aws_errors(f"move the Lambda alias {spec.alias}"):
        arn = lam.update_alias(FunctionName=spec.function, Name=spec.alias, FunctionVersion=published)["AliasArn"]
    changes.record("updated", f"Lambda alias {spec.function}:{spec.alias}: {alias['FunctionVersion']} -> {published}")
    return arn


def _get_alias(lam: Any, spec: FunctionSpec) -> dict[str, Any] | None:
    with aws_errors(f"describe the Lambda alias {spec.function}:{spec.alias}"):
        try:
            return lam.get_alias(FunctionName=spec.function, Name=spec.alias)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise


def _matches(function: dict[str, Any], spec: FunctionSpec) -> bool:
    config = function["Configuration"]
    return (
        function["Code"].get("ImageUri") == spec.image_uri
        and config.get("Architectures") == [spec.architecture]
        and not _config_differences(config, spec)
    )


# ---------------------------------------------------------------------------------------------------
# Front doors


def _ensure_function_url(lam: Any, spec: FunctionSpec, changes: Changes) -> str:
    wanted = {"AuthType": spec.url_auth, "Cors": spec.cors()}
    current = _get_url_config(lam, spec)
    if current is None:
        with aws_errors(f"create the function URL of {spec.function}:{spec.alias}"):
            current = lam.create_function_url_config(FunctionName=spec.function, Qualifier=spec.alias, **wanted)
        changes.record("created", f"function URL {current['FunctionUrl']} (auth {spec.url_auth})")
    elif current.get("AuthType") != spec.url_auth or _cors(current.get("Cors")) != _cors(spec.cors()):
        with aws_errors(f"update the function URL of {spec.function}:{spec.alias}"):
            current = lam.update_function_url_config(FunctionName=spec.function, Qualifier=spec.alias, **wanted)
        changes.record("updated", f"function URL {current['FunctionUrl']} (auth {spec.url_auth})")
    else:
        changes.unchanged(f"function URL {current['FunctionUrl']}")
    if spec.url_auth == "NONE":
        # Public URLs need both: invoking the URL and, through it, the function.
        _ensure_permission(
            lam, spec, changes, URL_STATEMENT, "lambda:InvokeFunctionUrl", "*", FunctionUrlAuthType="NONE"
        )
        _ensure_permission(
            lam, spec, changes, URL_INVOKE_STATEMENT, "lambda:InvokeFunction", "*", InvokedViaFunctionUrl=True
        )
    return current["FunctionUrl"]


def _cors(cors: dict[str, Any] | None) -> dict[str, Any]:
    cors = cors or {}
    return {key: sorted(v) if isinstance(v, list) else v for key, v in cors.items() if v not in (None, [], 0)}


def _get_url_config(lam: Any, spec: FunctionSpec) -> dict[str, Any] | None:
    with aws_errors(f"describe the function URL of {spec.function}:{spec.alias}"):
        try:
            return lam.get_function_url_config(FunctionName=spec.function, Qualifier=spec.alias)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise


def _policy_statements(lam: Any, spec: FunctionSpec) -> dict[str, dict[str, Any]]:
    with aws_errors(f"read the resource policy of {spec.function}:{spec.alias}"):
        try:
            policy = json.loads(lam.get_policy(FunctionName=spec.function, Qualifier=spec.alias)["Policy"])
        except ClientError as exc:
            if is_not_found(exc):
                return {}
            raise
    return {statement.get("Sid"): statement for statement in policy.get("Statement", [])}


def _ensure_permission(
    lam: Any, spec: FunctionSpec, changes: Changes, sid: str, action: str, principal: str, **extra: Any
) -> None:
    statement = _policy_statements(lam, spec).get(sid)
    wanted_source = extra.get("SourceArn")
    if statement is not None:
        source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
        if wanted_source in (None, source):
            changes.unchanged(f"permission {sid} on {spec.function}:{spec.alias}")
            return
        with aws_errors(f"remove the outdated permission {sid}"):
            lam.remove_permission(FunctionName=spec.function, StatementId=sid, Qualifier=spec.alias)
    with aws_errors(f"add the permission {sid} ({action}) to {spec.function}:{spec.alias}"):
        lam.add_permission(
            FunctionName=spec.function, Qualifier=spec.alias, StatementId=sid, Action=action, Principal=principal,
            **extra,
        )  # fmt: skip
    changes.record("added", f"permission {sid}: {principal} may {action} {spec.function}:{spec.alias}")


def find_http_api(aws: Aws, name: str) -> dict[str, Any] | None:
    """The HTTP API named ``name`` that a deploy made, or None."""
    apigw = aws.client("apigatewayv2")
    with aws_errors("list the API Gateway HTTP APIs"):
        apis = [api for page in apigw.get_paginator("get_apis").paginate() for api in page["Items"]]
    for api in apis:
        if api["Name"] == name and api.get("Tags", {}).get(MANAGED_BY_KEY) == MANAGED_BY:
            return api
    return None


def _ensure_http_api(aws: Aws, spec: FunctionSpec, alias_arn: str, changes: Changes) -> str:
    apigw = aws.client("apigatewayv2")
    api = find_http_api(aws, spec.function)
    if api is None:
        with aws_errors(f"create the HTTP API {spec.function}"):
            api = apigw.create_api(
                Name=spec.function, ProtocolType="HTTP", CorsConfiguration=spec.cors(),
                Tags=resource_tags(spec.deployment),
            )  # fmt: skip
        changes.record("created", f"HTTP API {spec.function} ({api['ApiId']})")
    else:
        changes.unchanged(f"HTTP API {spec.function} ({api['ApiId']})")
    api_id = api["ApiId"]

    with aws_errors(f"list the integrations of the HTTP API {api_id}"):
        integrations = apigw.get_integrations(ApiId=api_id)["Items"]
    proxy = next((i for i in integrations if i.get("IntegrationType") == "AWS_PROXY"), None)
    if proxy is None:
        with aws_errors(f"create the Lambda integration of the HTTP API {api_id}"):
            proxy = apigw.create_integration(
                ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=alias_arn, PayloadFormatVersion="2.0",
                TimeoutInMillis=30000,
            )  # fmt: skip
        changes.record("created", f"HTTP API integration -> {alias_arn}")
    elif proxy.get("IntegrationUri") != alias_arn:
        with aws_errors(f"update the Lambda integration of the HTTP API {api_id}"):
            apigw.update_integration(ApiId=api_id, IntegrationId=proxy["IntegrationId"], IntegrationUri=alias_arn)
        changes.record("updated", f"HTTP API integration -> {alias_arn}")
    else:
        changes.unchanged(f"HTTP API integration -> {alias_arn}")

    with aws_errors(f"list the routes of the HTTP API {api_id}"):
        routes = {route["RouteKey"] for route in apigw.get_routes(ApiId=api_id)["Items"]}
    for key in PROXY_ROUTES:
        if key in routes:
            changes.unchanged(f"HTTP API route {key}")
            continue
        with aws_errors(f"create the route {key}"):
            apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{proxy['IntegrationId']}")
        changes.record("created", f"HTTP API route {key}")

    with aws_errors(f"list the stages of the HTTP API {api_id}"):
        stages = {stage["StageName"] for stage in apigw.get_stages(ApiId=api_id)["Items"]}
    if "$default" in stages:
        changes.unchanged("HTTP API stage $default")
    else:
        with aws_errors("create the $default stage"):
            apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        changes.record("created", "HTTP API stage $default (auto-deploy)")

    account = alias_arn.split(":")[4]
    source = f"arn:{alias_arn.split(':')[1]}:execute-api:{aws.region}:{account}:{api_id}/*"
    lam = aws.client("lambda")
    _ensure_permission(lam, spec, changes, API_STATEMENT, "lambda:InvokeFunction", "apigateway.amazonaws.com",
                       SourceArn=source)  # fmt: skip
    return api["ApiEndpoint"]


# ---------------------------------------------------------------------------------------------------
# Status, URL and teardown


def front_door_url(aws: Aws, function: str, alias: str = "live") -> str:
    """The URL that serves the function: its function URL, else its HTTP API's endpoint."""
    lam = aws.client("lambda")
    if get_function(lam, function) is None:
        raise ResourceNotFoundError(f"Lambda function {function!r} not found in {aws.region}")
    spec_like = FunctionSpec(function, "", "", alias=alias)
    url = _get_url_config(lam, spec_like)
    if url is not None:
        return url["FunctionUrl"]
    api = find_http_api(aws, function)
    if api is not None:
        return api["ApiEndpoint"]
    raise ResourceNotFoundError(f"Lambda function {function!r} has no function URL or HTTP API")


def function_url_auth(aws: Aws, function: str, alias: str = "live") -> str | None:
    """The auth type of the function URL of ``function:alias`` (NONE or AWS_IAM), None without one."""
    url = _get_url_config(aws.client("lambda"), FunctionSpec(function, "", "", alias=alias))
    return url.get("AuthType") if url else None


def status(aws: Aws, function: str, alias: str = "live") -> list[str]:
    """Lines describing the function, its alias and front door; empty when there is no function."""
    lam = aws.client("lambda")
    current = get_function(lam, function)
    if current is None:
        return []
    config = current["Configuration"]
    lines = [
        f"Lambda function {function}: {config.get('State', '?')}, {config.get('MemorySize')} MB, "
        f"timeout {config.get('Timeout')} s, image {current['Code'].get('ImageUri')}"
    ]
    spec_like = FunctionSpec(function, "", "", alias=alias)
    found = _get_alias(lam, spec_like)
    lines.append(f"  alias {alias}: " + (f"version {found['FunctionVersion']}" if found else "none"))
    url = _get_url_config(lam, spec_like)
    if url is not None:
        lines.append(f"  function URL: {url['FunctionUrl']} (auth {url.get('AuthType')})")
    api = find_http_api(aws, function)
    if api is not None:
        lines.append(f"  HTTP API: {api['ApiEndpoint']} ({api['ApiId']})")
    return lines


def teardown(aws: Aws, function: str, changes: Changes, alias: str = "live") -> None:
    """Delete the function (its versions, alias and function URL go with it) and its HTTP API."""
    _delete_http_api(aws, function, changes)
    lam = aws.client("lambda")
    current = get_function(lam, function)
    if current is None:
        changes.unchanged(f"Lambda function {function}: not there")
        return
    tags = current.get("Tags", {})
    if tags.get(MANAGED_BY_KEY) != MANAGED_BY:
        raise CloudError(f"Lambda function {function} was not made by these commands (no {MANAGED_BY_KEY} tag)")
    _delete_function_url(lam, function, alias, changes)
    with aws_errors(f"delete the Lambda function {function}"):
        lam.delete_function(FunctionName=function)
    changes.record("deleted", f"Lambda function {function} (with its versions and aliases)")


def _delete_http_api(aws: Aws, function: str, changes: Changes) -> None:
    api = find_http_api(aws, function)
    if api is not None:
        with aws_errors(f"delete the HTTP API {api['ApiId']}"):
            aws.client("apigatewayv2").delete_api(ApiId=api["ApiId"])
        changes.record("deleted", f"HTTP API {function} ({api['ApiId']})")


def _delete_function_url(lam: Any, function: str, alias: str, changes: Changes) -> None:
    spec_like = FunctionSpec(function, "", "", alias=alias)
    if _get_url_config(lam, spec_like) is None:
        return
    with aws_errors(f"delete the function URL of {function}:{alias}"):
        lam.delete_function_url_config(FunctionName=function, Qualifier=alias)
    for sid in (URL_STATEMENT, URL_INVOKE_STATEMENT):
        if sid in _policy_statements(lam, spec_like):
            with aws_errors(f"remove the permission {sid}"):
                lam.remove_permission(FunctionName=function, StatementId=sid, Qualifier=alias)
    changes.record("deleted", f"function URL of {function}:{alias}")
