"""deploy-lambda, status and teardown against moto: the function from the image, versions, the alias, and the
front doors (function URL or HTTP API) with their invoke permissions.

moto runs no image: what is checked is the control plane (what exists, with which settings and permissions).
"""

from __future__ import annotations

import json

from tests.cloud.conftest import lines

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pricing:{}"


def deploy_args(name: str, role_arn: str, tag: str, *extra: str) -> list[str]:
    return ["deploy-lambda", "--name", name, "--image-uri", IMAGE.format(tag), "--role-arn", role_arn,
            "--poll-interval", "0", *extra]  # fmt: skip


def policy(aws, name: str) -> dict[str, dict]:
    raw = aws.client("lambda").get_policy(FunctionName=name, Qualifier="live")["Policy"]
    return {statement["Sid"]: statement for statement in json.loads(raw)["Statement"]}


def test_first_deploy_creates_function_version_alias_and_url(cli, aws, name, role_arn) -> None:
    run = cli(*deploy_args(name, role_arn, "v1", "--memory", "3008", "--timeout", "30", "--env", "PRICING_CACHE_TTL=9",
                           "--cors-origin", "https://shop.example"))  # fmt: skip
    assert run.code == 0, run.err

    lam = aws.client("lambda")
    function = lam.get_function(FunctionName=name)
    config = function["Configuration"]
    assert function["Code"]["ImageUri"] == IMAGE.format("v1")
    assert config["PackageType"] == "Image"
    assert (config["MemorySize"], config["Timeout"], config["Architectures"]) == (3008, 30, ["x86_64"])
    assert config["Environment"]["Variables"] == {"PRICING_CACHE_TTL": "9"}
    assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == ["lambda"]
    assert function["Tags"]["managed-by"] == "pricing.cloud"
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"
    url = lam.get_function_url_config(FunctionName=name, Qualifier="live")
    assert url["AuthType"] == "NONE"
    assert url["Cors"]["AllowOrigins"] == ["https://shop.example"]
    statements = policy(aws, name)
    assert statements["pricing-function-url"]["Action"] == "lambda:InvokeFunctionUrl"
    assert statements["pricing-function-url"]["Principal"] == "*"
    assert statements["pricing-function-url-invoke"]["Action"] == "lambda:InvokeFunction"
    assert f"url: {url['FunctionUrl']}" in run.out
    assert lines(run.out)[-1] == "6 change(s)"


def test_second_deploy_changes_nothing_and_says_so(cli, aws, name, role_arn) -> None:
    assert cli(*deploy_args(name, role_arn, "v1")).code == 0

    run = cli(*deploy_args(name, role_arn, "v1"))

    assert run.code == 0, run.err
    assert lines(run.out)[-1] == "no changes: everything was already as wanted"
    versions = aws.client("lambda").list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]


def test_new_image_publishes_a_version_and_moves_the_alias(cli, aws, name, role_arn) -> None:
    assert cli(*deploy_args(name, role_arn, "v1")).code == 0

    run = cli(*deploy_args(name, role_arn, "v2", "--env", "A=1"))

    assert run.code == 0, run.err
    lam = aws.client("lambda")
    alias = lam.get_alias(FunctionName=name, Name="live")
    assert alias["FunctionVersion"] == "2"
    assert lam.get_function(FunctionName=name, Qualifier="2")["Code"]["ImageUri"] == IMAGE.format("v2")
    # Not checked: version 1 still on v1. moto's versions share $LATEST's code (a shallow copy), AWS's do not.
    assert f"updated    Lambda function {name}: image {IMAGE.format('v2')}" in run.out
    assert f"updated    Lambda function {name}: Environment" in run.out
    assert f"updated    Lambda alias {name}:live: 1 -> 2" in run.out


def test_http_api_front_door_with_proxy_routes_and_permission(cli, aws, name, role_arn) -> None:
    assert cli(*deploy_args(name, role_arn, "v1")).code == 0

    run = cli(*deploy_args(name, role_arn, "v1", "--front-door", "http-api"))
    assert run.code == 0, run.err

    apigw = aws.client("apigatewayv2")
    [api] = [api for api in apigw.get_apis()["Items"] if api["Name"] == name]
    assert api["ProtocolType"] == "HTTP"
    [integration] = apigw.get_integrations(ApiId=api["ApiId"])["Items"]
    alias_arn = aws.client("lambda").get_alias(FunctionName=name, Name="live")["AliasArn"]
    assert (integration["IntegrationType"], integration["IntegrationUri"]) == ("AWS_PROXY", alias_arn)
    assert integration["PayloadFormatVersion"] == "2.0"
    routes = {route["RouteKey"]: route["Target"] for route in apigw.get_routes(ApiId=api["ApiId"])["Items"]}
    assert routes == {key: f"integrations/{integration['IntegrationId']}" for key in ("ANY /{proxy+}", "$default")}
    assert [stage["StageName"] for stage in apigw.get_stages(ApiId=api["ApiId"])["Items"]] == ["$default"]
    statement = policy(aws, name)["pricing-http-api"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{api['ApiId']}/*")
    assert "deleted    function URL" in run.out  # one front door at a time
    assert f"url: {api['ApiEndpoint']}" in run.out

    again = cli(*deploy_args(name, role_arn, "v1", "--front-door", "http-api"))
    assert lines(again.out)[-1] == "no changes: everything was already as wanted"


def test_status_then_teardown_removes_function_and_api_once(cli, aws, name, role_arn) -> None:
    assert cli(*deploy_args(name, role_arn, "v1", "--front-door", "http-api")).code == 0

    status = cli("status", "--name", name)
    assert status.code == 0, status.err
    assert f"Lambda function {name}: Active, 2048 MB" in status.out
    assert "alias live: version 1" in status.out and "HTTP API: https://" in status.out

    down = cli("teardown", "--name", name, "--lambda")
    assert down.code == 0, down.err
    assert f"deleted    Lambda function {name}" in down.out and f"deleted    HTTP API {name}" in down.out
    assert name not in [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]
    assert name not in [api["Name"] for api in aws.client("apigatewayv2").get_apis()["Items"]]

    again = cli("teardown", "--name", name, "--lambda")
    assert lines(again.out)[-1] == "no changes: everything was already as wanted"


def test_teardown_leaves_a_function_it_did_not_make(cli, aws, name, role_arn) -> None:
    aws.client("lambda").create_function(
        FunctionName=name, PackageType="Image", Code={"ImageUri": IMAGE.format("x")}, Role=role_arn
    )
    run = cli("teardown", "--name", name, "--lambda")
    assert run.code == 1
    assert run.err == f"error: Lambda function {name} was not made by these commands (no managed-by tag)\n"
    assert aws.client("lambda").get_function(FunctionName=name)


def test_invalid_settings_are_one_line(cli, name, role_arn) -> None:
    run = cli(*deploy_args(name, role_arn, "v1", "--memory", "64"))
    assert (run.code, run.err) == (1, "error: Lambda memory must be 128-10240 MB, not 64\n")


def test_teardown_with_ecr_removes_the_deployments_and_the_repository(cli, aws, name, role_arn) -> None:
    aws.client("ecr").create_repository(repositoryName=name)
    assert cli(*deploy_args(name, role_arn, "v1")).code == 0
    assert cli("deploy-sagemaker", "--name", name, "--image-uri", IMAGE.format("v1"), "--role-arn", role_arn,
               "--poll-interval", "0").code == 0  # fmt: skip

    run = cli("teardown", "--name", name, "--ecr", "--force", "--poll-interval", "0")

    assert run.code == 0, run.err
    for what in (f"SageMaker endpoint {name}", f"Lambda function {name}", "ECR repository"):
        assert f"deleted    {what}" in run.out
    assert name not in [r["repositoryName"] for r in aws.client("ecr").describe_repositories()["repositories"]]
