"""The long-lived AWS resources of the pricing service, as two CDK stacks.

``PricingBase`` (deploy once): the ECR repository (scan on push, keep the last N images), the artefact bucket
(encrypted, public access blocked, TLS only), the execution roles SageMaker and Lambda run the image with,
and, with ``github_repo``, GitHub's OIDC provider and the role the workflows assume (no stored keys).

``PricingServing`` (per image tag): the SageMaker serverless endpoint; the Lambda function from the image behind
an HTTP API; the source system's front door (REST API with CORS -> a small proxy Lambda -> the SageMaker
endpoint); and, with ``redis=true``, an ElastiCache Redis (cluster mode) for the shared cache, in a VPC the
Lambda function joins.

The release commands (``python -m pricing.cloud``) create their own SageMaker endpoint and Lambda function
(named after ``name``) with the base stack's repository and roles; the serving stack's resources have names
of CloudFormation's making, so the two never manage the same endpoint or function.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Aws,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

PROXY_CODE = Path(__file__).parent / "proxy"
GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"


@dataclass(frozen=True)
class Settings:
    """The app's context values (``cdk deploy -c key=value``, defaults in cdk.json)."""

    name: str = "pricing"
    image_tag: str = "latest"
    keep_images: int = 30
    github_repo: str | None = None  # OWNER/REPO: adds the OIDC provider and the deploy role
    github_oidc_provider_arn: str | None = None  # an account has one provider per URL: reuse it when it exists
    github_branch: str = "main"
    sagemaker_memory: int = 1024
    sagemaker_max_concurrency: int = 5
    lambda_memory: int = 2048
    cors_origins: tuple[str, ...] = ()
    redis: bool = False


class BaseStack(Stack):
    """Repository, bucket, execution roles and the GitHub deploy role."""

    def __init__(self, scope: Construct, construct_id: str, settings: Settings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        name = settings.name

        self.repository = ecr.Repository(
            self, "Repository",
            repository_name=name,
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
            # The same rule push-image writes, so the two never disagree.
            lifecycle_rules=[ecr.LifecycleRule(
                rule_priority=1, description=f"keep the last {settings.keep_images} images",
                tag_status=ecr.TagStatus.ANY, max_image_count=settings.keep_images,
            )],
        )  # fmt: skip
        self.bucket = s3.Bucket(
            self, "Artifacts",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip

        # SageMaker pulls the image and writes its logs with this role; it reads nothing else.
        self.sagemaker_role = iam.Role(
            self, "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{name}: SageMaker runs the pricing image",
        )  # fmt: skip
        self.repository.grant_pull(self.sagemaker_role)
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
            )
        )
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}})
        )  # fmt: skip

        # The Lambda function only writes its logs.
        self.lambda_role = iam.Role(
            self, "LambdaExecutionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{name}: Lambda runs the pricing image",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")],
        )  # fmt: skip

        CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "SageMakerRoleArn", value=self.sagemaker_role.role_arn)
        CfnOutput(self, "LambdaRoleArn", value=self.lambda_role.role_arn)
        if settings.github_repo:
            self._github_deploy_role(settings)

    def _github_deploy_role(self, settings: Settings) -> None:
        """GitHub's OIDC provider and the role the workflows assume, with what a release needs and no more."""
        if settings.github_oidc_provider_arn:
            provider_arn = settings.github_oidc_provider_arn
        else:
            provider = iam.CfnOIDCProvider(
                self, "GitHubOidcProvider", url=GITHUB_OIDC_URL, client_id_list=["sts.amazonaws.com"],
            )  # fmt: skip
            provider_arn = provider.attr_arn
        repo, name = settings.github_repo, settings.name
        role = iam.Role(
            self, "GitHubDeployRole",
            description=f"{name}: GitHub Actions of {repo} push and deploy",
            max_session_duration=Duration.hours(1),
            assumed_by=iam.FederatedPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com"},
                    "StringLike": {f"{GITHUB_OIDC_HOST}:sub": [
                        f"repo:{repo}:ref:refs/heads/{settings.github_branch}",
                        f"repo:{repo}:environment:production",
                    ]},
                },
                assume_role_action="sts:AssumeRoleWithWebIdentity",
            ),
        )  # fmt: skip
        self.repository.grant_pull_push(role)
        self.bucket.grant_read_write(role)

        def arn(service: str, resource: str) -> str:
            return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

        sagemaker_resources = [arn("sagemaker", f"{kind}/{name}*") for kind in ("model", "endpoint-config", "endpoint")]
        role.add_to_policy(iam.PolicyStatement(
            sid="SageMakerDeploy",
            actions=["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel",
                     "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
                     "sagemaker:DeleteEndpointConfig", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint",
                     "sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:InvokeEndpoint",
                     "sagemaker:AddTags", "sagemaker:ListTags"],
            resources=sagemaker_resources,
        ))  # fmt: skip
        role.add_to_policy(iam.PolicyStatement(
            sid="SageMakerList", actions=["sagemaker:ListModels", "sagemaker:ListEndpointConfigs"], resources=["*"],
        ))  # fmt: skip
        function_arn = arn("lambda", f"function:{name}")
        role.add_to_policy(iam.PolicyStatement(
            sid="LambdaDeploy",
            actions=["lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:CreateFunction",
                     "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion",
                     "lambda:GetAlias", "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:GetFunctionUrlConfig",
                     "lambda:CreateFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig",
                     "lambda:DeleteFunctionUrlConfig", "lambda:GetPolicy", "lambda:AddPermission",
                     "lambda:RemovePermission", "lambda:TagResource", "lambda:ListVersionsByFunction",
                     "lambda:InvokeFunctionUrl"],
            resources=[function_arn, f"{function_arn}:*"],
        ))  # fmt: skip
        role.add_to_policy(iam.PolicyStatement(
            sid="HttpApiDeploy",
            actions=["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
            resources=[f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/apis", f"arn:{Aws.PARTITION}:apigateway:"
                       f"{Aws.REGION}::/apis/*", f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/tags/*"],
        ))  # fmt: skip
        role.add_to_policy(iam.PolicyStatement(
            sid="PassExecutionRoles",
            actions=["iam:PassRole"],
            resources=[self.sagemaker_role.role_arn, self.lambda_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": ["sagemaker.amazonaws.com", "lambda.amazonaws.com"]}},
        ))  # fmt: skip
        CfnOutput(self, "GitHubDeployRoleArn", value=role.role_arn)


class ServingStack(Stack):
    """SageMaker serverless endpoint, Lambda + HTTP API, REST API -> proxy Lambda -> SageMaker, optional Redis."""

    def __init__(self, scope: Construct, construct_id: str, settings: Settings, base: BaseStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        image_uri = base.repository.repository_uri_for_tag(settings.image_tag)
        environment: dict[str, str] = {}
        if settings.cors_origins:
            environment["PRICING_CORS_ORIGINS"] = ",".join(settings.cors_origins)
        vpc_options = self._redis(settings, environment) if settings.redis else {}

        # SageMaker: `IMAGE serve` on port 8080, serverless.
        model = sagemaker.CfnModel(
            self, "Model",
            execution_role_arn=base.sagemaker_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri, mode="SingleModel", environment=environment or None,
            ),
        )  # fmt: skip
        config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name="AllTraffic", model_name=model.attr_model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=settings.sagemaker_memory, max_concurrency=settings.sagemaker_max_concurrency,
                ),
            )],
        )  # fmt: skip
        endpoint = sagemaker.CfnEndpoint(self, "Endpoint", endpoint_config_name=config.attr_endpoint_config_name)

        # Lambda from the same image (command `lambda`), an alias, and an HTTP API in front of the alias.
        function = lambda_.DockerImageFunction(
            self, "Function",
            code=lambda_.DockerImageCode.from_ecr(base.repository, tag_or_digest=settings.image_tag, cmd=["lambda"]),
            role=base.lambda_role,
            memory_size=settings.lambda_memory,
            timeout=Duration.seconds(60),
            architecture=lambda_.Architecture.X86_64,
            environment=environment,
            log_group=logs.LogGroup(self, "FunctionLogs", retention=logs.RetentionDays.ONE_MONTH),
            **vpc_options,
        )  # fmt: skip
        alias = lambda_.Alias(self, "Live", alias_name="live", version=function.current_version)
        cors = apigwv2.CorsPreflightOptions(
            allow_origins=list(settings.cors_origins), allow_methods=[apigwv2.CorsHttpMethod.GET,
            apigwv2.CorsHttpMethod.POST], allow_headers=["content-type", "x-api-key"], max_age=Duration.minutes(10),
        ) if settings.cors_origins else None  # fmt: skip
        http_api = apigwv2.HttpApi(
            self, "HttpApi",
            default_integration=integrations.HttpLambdaIntegration("Lambda", alias),
            cors_preflight=cors,
        )  # fmt: skip
        http_api.add_routes(
            path="/{proxy+}", methods=[apigwv2.HttpMethod.ANY],
            integration=integrations.HttpLambdaIntegration("LambdaProxy", alias),
        )  # fmt: skip

        # The source system's front door: REST API (CORS) -> proxy Lambda -> the SageMaker endpoint.
        proxy = lambda_.Function(
            self, "SageMakerProxy",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(PROXY_CODE)),
            memory_size=256,
            timeout=Duration.seconds(29),
            environment={"ENDPOINT_NAME": endpoint.attr_endpoint_name, "CORS_ORIGINS": ",".join(settings.cors_origins)},
            log_group=logs.LogGroup(self, "ProxyLogs", retention=logs.RetentionDays.ONE_MONTH),
        )  # fmt: skip
        # An endpoint's Ref is its ARN.
        proxy.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
                                resources=[endpoint.ref])
        )  # fmt: skip
        rest_cors = apigateway.CorsOptions(
            allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "X-Api-Key"],
        ) if settings.cors_origins else None  # fmt: skip
        rest_api = apigateway.LambdaRestApi(
            self, "RestApi",
            handler=proxy,
            proxy=True,
            default_cors_preflight_options=rest_cors,
            deploy_options=apigateway.StageOptions(stage_name="prod", throttling_rate_limit=50,
                                                   throttling_burst_limit=100),
        )  # fmt: skip

        CfnOutput(self, "SageMakerEndpointName", value=endpoint.attr_endpoint_name)
        CfnOutput(self, "HttpApiUrl", value=http_api.api_endpoint)
        CfnOutput(self, "RestApiUrl", value=rest_api.url)
        CfnOutput(self, "FunctionName", value=function.function_name)

    def _redis(self, settings: Settings, environment: dict[str, str]) -> dict[str, object]:
        """An ElastiCache Redis replication group in cluster mode (TLS) in a VPC of private subnets; the cache URL
        goes into ``environment``; return the Lambda function's VPC options."""
        vpc = ec2.Vpc(
            self, "Vpc", max_azs=2, nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
        )  # fmt: skip
        lambda_sg = ec2.SecurityGroup(self, "FunctionSecurityGroup", vpc=vpc, description="pricing Lambda")
        redis_sg = ec2.SecurityGroup(self, "RedisSecurityGroup", vpc=vpc, description="pricing Redis",
                                     allow_all_outbound=False)  # fmt: skip
        redis_sg.add_ingress_rule(lambda_sg, ec2.Port.tcp(6379), "the pricing Lambda function")
        subnets = elasticache.CfnSubnetGroup(
            self, "RedisSubnets", description="pricing Redis", subnet_ids=vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )  # fmt: skip
        redis = elasticache.CfnReplicationGroup(
            self, "Redis",
            replication_group_description=f"{settings.name} shared sweep cache",
            engine="redis",
            cache_node_type="cache.t4g.micro",
            num_node_groups=1,
            replicas_per_node_group=1,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            cache_parameter_group_name="default.redis7.cluster.on",
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[redis_sg.security_group_id],
        )  # fmt: skip
        environment["PRICING_REDIS_URL"] = (
            f"rediss://{redis.attr_configuration_end_point_address}:{redis.attr_configuration_end_point_port}/0"
        )
        environment["PRICING_REDIS_CLUSTER"] = "true"
        CfnOutput(self, "RedisEndpoint", value=redis.attr_configuration_end_point_address)
        return {
            "vpc": vpc,
            "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            "security_groups": [lambda_sg],
        }
