"""The CDK app (infra/): synthesised by the CDK library itself (``app.synth()``, which runs jsii on Node.js),
then validated with cfn-lint, and the templates checked for what the issue asks of each resource.

Synthesised once, with every option on (GitHub OIDC role, Redis, CORS origins), the way ``cdk synth`` runs the
app: ``python app.py`` with CDK_OUTDIR and CDK_CONTEXT_JSON set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pricing.cloud.ecr import RepositorySpec
from tests.support import ROOT

CONTEXT = {"github_repo": "example-org/pricing", "redis": "true", "cors_origins": "https://shop.example"}
SYNTH_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed to synthesise the CDK app (jsii): apt-get install -y nodejs")
    out = tmp_path_factory.mktemp("cdk.out")
    env = {**os.environ, "CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps(CONTEXT),
           "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT / "infra", env=env, capture_output=True, text=True,
        timeout=SYNTH_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"CDK synth failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    return out


def template(cdk_out: Path, stack: str) -> dict[str, Any]:
    return json.loads((cdk_out / f"{stack}.template.json").read_text())


def resources(tpl: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in tpl["Resources"].values() if r["Type"] == kind]


def test_cfn_lint_finds_no_error(cdk_out) -> None:
    templates = sorted(str(path) for path in cdk_out.glob("*.template.json"))
    assert [Path(t).name for t in templates] == ["PricingBase.template.json", "PricingServing.template.json"]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", *templates],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # cfn-lint's exit status is a bit field: 2 errors, 4 warnings, 8 informational.
    assert proc.returncode & 2 == 0 and proc.returncode & 1 == 0, proc.stdout + proc.stderr
    errors = [line for line in proc.stdout.splitlines() if ":E" in line]
    assert errors == []


def test_repository_scans_on_push_and_keeps_what_push_image_keeps(cdk_out) -> None:
    [repository] = resources(template(cdk_out, "PricingBase"), "AWS::ECR::Repository")
    assert repository["RepositoryName"] == "pricing"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    policy = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])
    assert policy == RepositorySpec("pricing").lifecycle_policy()  # the CLI finds nothing to change


def test_bucket_is_encrypted_private_and_tls_only(cdk_out) -> None:
    tpl = template(cdk_out, "PricingBase")
    [bucket] = resources(tpl, "AWS::S3::Bucket")
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    [policy] = resources(tpl, "AWS::S3::BucketPolicy")
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_github_deploy_role_trusts_only_the_repository_through_oidc(cdk_out) -> None:
    tpl = template(cdk_out, "PricingBase")
    [provider] = resources(tpl, "AWS::IAM::OIDCProvider")
    assert provider["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]
    [deploy] = [r for r in resources(tpl, "AWS::IAM::Role") if "GitHub" in r.get("Description", "")]
    [trust] = deploy["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"] == {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    assert trust["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"] == [
        "repo:example-org/pricing:ref:refs/heads/main",
        "repo:example-org/pricing:environment:production",
    ]
    statements = [s for p in resources(tpl, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
    [pass_role] = [s for s in statements if s.get("Action") == "iam:PassRole"]
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == [
        "sagemaker.amazonaws.com", "lambda.amazonaws.com",
    ]  # fmt: skip
    assert not any(s.get("Resource") == "*" and s.get("Action") == "iam:PassRole" for s in statements)


def test_serverless_endpoint_runs_the_image_with_the_source_systems_capacity(cdk_out) -> None:
    tpl = template(cdk_out, "PricingServing")
    [config] = resources(tpl, "AWS::SageMaker::EndpointConfig")
    [variant] = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 5}
    [model] = resources(tpl, "AWS::SageMaker::Model")
    assert ":latest" in json.dumps(model["PrimaryContainer"]["Image"])


def test_lambda_from_the_image_behind_an_http_api_proxy(cdk_out) -> None:
    tpl = template(cdk_out, "PricingServing")
    functions = resources(tpl, "AWS::Lambda::Function")
    [image_fn] = [f for f in functions if f.get("PackageType") == "Image"]
    assert image_fn["ImageConfig"] == {"Command": ["lambda"]}
    assert image_fn["MemorySize"] == 2048 and image_fn["VpcConfig"]  # Redis is on: the function joins the VPC
    env = image_fn["Environment"]["Variables"]
    assert env["PRICING_REDIS_CLUSTER"] == "true" and "rediss://" in json.dumps(env["PRICING_REDIS_URL"])
    routes = {r["RouteKey"] for r in resources(tpl, "AWS::ApiGatewayV2::Route")}
    assert routes == {"$default", "ANY /{proxy+}"}
    [api] = resources(tpl, "AWS::ApiGatewayV2::Api")
    assert api["ProtocolType"] == "HTTP" and api["CorsConfiguration"]["AllowOrigins"] == ["https://shop.example"]
    principals = {p["Principal"] for p in resources(tpl, "AWS::Lambda::Permission")}
    assert "apigateway.amazonaws.com" in principals


def test_rest_api_proxy_lambda_may_only_invoke_the_endpoint(cdk_out) -> None:
    tpl = template(cdk_out, "PricingServing")
    [proxy] = [f for f in resources(tpl, "AWS::Lambda::Function") if f.get("Handler") == "handler.handler"]
    assert proxy["Runtime"].startswith("python3")
    assert "ENDPOINT_NAME" in proxy["Environment"]["Variables"]
    paths = {r["PathPart"] for r in resources(tpl, "AWS::ApiGateway::Resource")}
    assert paths == {"{proxy+}"}
    methods = {m["HttpMethod"] for m in resources(tpl, "AWS::ApiGateway::Method")}
    assert {"ANY", "OPTIONS"} <= methods  # the proxy, and CORS preflight
    proxy_policies = [p for p in resources(tpl, "AWS::IAM::Policy") if "SageMakerProxy" in json.dumps(p["Roles"])]
    [statement] = [s for p in proxy_policies for s in p["PolicyDocument"]["Statement"]]
    assert sorted(statement["Action"]) == ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == {"Ref": next(k for k, r in tpl["Resources"].items()
                                                 if r["Type"] == "AWS::SageMaker::Endpoint")}  # fmt: skip
    asset = next(cdk_out.glob("asset.*/handler.py"))
    assert asset.read_text() == (ROOT / "infra" / "proxy" / "handler.py").read_text()


def test_redis_is_encrypted_cluster_mode_reachable_only_from_the_function(cdk_out) -> None:
    tpl = template(cdk_out, "PricingServing")
    [redis] = resources(tpl, "AWS::ElastiCache::ReplicationGroup")
    assert redis["TransitEncryptionEnabled"] and redis["AtRestEncryptionEnabled"]
    assert redis["CacheParameterGroupName"] == "default.redis7.cluster.on"
    [ingress] = resources(tpl, "AWS::EC2::SecurityGroupIngress")
    assert (ingress["FromPort"], ingress["ToPort"]) == (6379, 6379) and "SourceSecurityGroupId" in ingress
