"""Release commands: push the image to ECR, deploy it to SageMaker or Lambda, invoke, status, teardown, and
upload the artefacts to S3.

Usage:
    python -m pricing.cloud push-image                   # ECR repository + push of pricing:<bento version>
    python -m pricing.cloud deploy-sagemaker --role-arn ARN         # serverless 1024 MB, max concurrency 5
    python -m pricing.cloud deploy-sagemaker --instance-type ml.m5.large --role-arn ARN
    python -m pricing.cloud deploy-lambda --role-arn ARN [--front-door http-api]
    python -m pricing.cloud invoke --sagemaker --stockcode 85123A
    python -m pricing.cloud invoke --lambda --stockcode 85123A
    python -m pricing.cloud status
    python -m pricing.cloud teardown [--ecr --force]
    python -m pricing.cloud upload-artifacts --bucket BUCKET --features data/features --bento pricing:latest
    python -m pricing.cloud gate --metrics reports/metrics.json     # the release gate (no AWS call)

Every command takes --region and --profile (else AWS_REGION and AWS_PROFILE) and honours AWS_ENDPOINT_URL.
Each prints what it changed; run twice, the second run changes nothing and says so. An expected failure
(credentials, region, permissions, a missing resource) prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pricing.cloud import artifacts, ecr, gate, invoke, lambda_deploy, sagemaker
from pricing.cloud.aws import DEFAULT_NAME, Aws, Changes, CloudError, connect

DEFAULT_BENTO = "pricing:latest"


# ---------------------------------------------------------------------------------------------------
# What the local bento store says


def bento_identity(tag: str) -> tuple[str, str | None]:
    """The version of the bento ``tag`` and the training run id of its models."""
    import bentoml

    try:
        bento = bentoml.get(tag)
    except bentoml.exceptions.NotFound:
        raise CloudError(
            f"bento {tag!r} is not in the BentoML store ({os.environ.get('BENTOML_HOME', '~/bentoml')}): run make "
            "build, or name the image and tag yourself (--image, --tag / --image-tag)"
        ) from None
    run_ids = set()
    for model in bento.info.all_models:
        metadata = model.metadata or bentoml.models.get(model.tag).info.metadata
        if metadata.get("run_id"):
            run_ids.add(metadata["run_id"])
    return bento.tag.version, (run_ids.pop() if len(run_ids) == 1 else None)


def image_uri(aws: Aws, args: argparse.Namespace) -> str:
    """The image to deploy: --image-uri, else the ECR repository's URI with --image-tag (default: the version of
    the local bento)."""
    if args.image_uri:
        return args.image_uri
    repository = ecr.find_repository(aws, args.repository or args.name)
    if repository is None:
        raise CloudError(f"ECR repository {args.repository or args.name!r} not found in {aws.region}: run push-image")
    tag = args.image_tag or bento_identity(args.bento)[0]
    return f"{repository['repositoryUri']}:{tag}"


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CloudError(f"--env wants KEY=VALUE, not {pair!r}")
        env[key] = value
    return env


def required(value: str | None, option: str, variable: str) -> str:
    """``value``, or CloudError naming the option and the environment variable that would give it."""
    if not value:
        raise CloudError(f"{option} is required (or set {variable})")
    return value


# ---------------------------------------------------------------------------------------------------
# Commands


def cmd_push_image(aws: Aws, args: argparse.Namespace, changes: Changes) -> None:
    tags = list(args.tag)
    image = args.image
    if not tags or not image:
        version, run_id = bento_identity(args.bento)
        tags = tags or [version] + ([f"run-{run_id}"] if run_id else [])
        image = image or f"pricing:{version}"
    tags += [tag for tag in args.extra_tag if tag not in tags]
    spec = ecr.RepositorySpec(
        args.repository or args.name, keep_images=args.keep_images, scan_on_push=args.scan_on_push,
        deployment=args.name,
    )  # fmt: skip
    uris = ecr.push_image(aws, spec, image, tags, changes, tool=args.tool, registry_endpoint=args.registry_endpoint)
    for uri in uris:
        changes.note(f"image: {uri}")


def cmd_deploy_sagemaker(aws: Aws, args: argparse.Namespace, changes: Changes) -> None:
    spec = sagemaker.EndpointSpec(
        endpoint=args.endpoint or args.name,
        image_uri=image_uri(aws, args),
        role_arn=required(args.role_arn, "--role-arn", "PRICING_SAGEMAKER_ROLE_ARN"),
        environment=parse_env(args.env),
        memory_mb=args.memory,
        max_concurrency=args.max_concurrency,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        deployment=args.name,
    )
    waiter = sagemaker.Waiter(timeout_s=args.wait_timeout, interval_s=args.poll_interval)
    endpoint = sagemaker.deploy(aws, spec, changes, waiter)
    changes.note(f"endpoint {endpoint['EndpointName']}: {endpoint['EndpointStatus']} ({spec.capacity()})")


def cmd_deploy_lambda(aws: Aws, args: argparse.Namespace, changes: Changes) -> None:
    spec = lambda_deploy.FunctionSpec(
        function=args.function or args.name,
        image_uri=image_uri(aws, args),
        role_arn=required(args.role_arn, "--role-arn", "PRICING_LAMBDA_ROLE_ARN"),
        memory_mb=args.memory,
        timeout_s=args.timeout,
        architecture=args.architecture,
        environment=parse_env(args.env),
        alias=args.alias,
        front_door=args.front_door,
        url_auth=args.url_auth,
        cors_origins=tuple(args.cors_origin),
        deployment=args.name,
    )
    waiter = sagemaker.Waiter(timeout_s=args.wait_timeout, interval_s=args.poll_interval)
    url = lambda_deploy.deploy(aws, spec, changes, waiter)
    if url:
        changes.note(f"url: {url}")


def cmd_invoke(aws: Aws | None, args: argparse.Namespace, changes: Changes) -> None:
    request = invoke.sweep_request(
        args.stockcode, price_min=args.price_min, price_max=args.price_max, bins=args.bins, segment=args.segment
    )
    if args.url:
        body = invoke.invoke_url(args.url, request)
    elif args.sagemaker is not None:
        body = invoke.invoke_sagemaker(aws, args.sagemaker or args.name, request)
    else:
        function = args.lambda_ or args.name
        url = lambda_deploy.front_door_url(aws, function, args.alias)
        signed = lambda_deploy.function_url_auth(aws, function, args.alias) == "AWS_IAM"
        body = invoke.invoke_url(url, request, aws if signed else None)
    changes.note(json.dumps(body, indent=2) if args.json else invoke.format_sweep(body))


def cmd_status(aws: Aws, args: argparse.Namespace, changes: Changes) -> None:
    found = False
    repository = ecr.find_repository(aws, args.repository or args.name)
    if repository is not None:
        found = True
        changes.note(ecr.describe(aws, repository))
    else:
        changes.note(f"ECR repository {args.repository or args.name}: not found")
    endpoint, function = args.endpoint or args.name, args.function or args.name
    for lines, missing in (
        (sagemaker.status(aws, endpoint), f"SageMaker endpoint {endpoint}: not found"),
        (lambda_deploy.status(aws, function, args.alias), f"Lambda function {function}: not found"),
    ):
        found = found or bool(lines)
        for line in lines or [missing]:
            changes.note(line)
    if not found:
        raise CloudError(f"nothing deployed under the name {args.name!r} in {aws.region}")


def cmd_teardown(aws: Aws, args: argparse.Namespace, changes: Changes) -> None:
    everything = not (args.sagemaker or args.lambda_)  # --ecr adds the repository to either
    waiter = sagemaker.Waiter(timeout_s=args.wait_timeout, interval_s=args.poll_interval)
    if everything or args.sagemaker:
        sagemaker.teardown(aws, args.endpoint or args.name, changes, waiter)
    if everything or args.lambda_:
        lambda_deploy.teardown(aws, args.function or args.name, changes, args.alias)
    if args.ecr:
        ecr.delete_repository(aws, args.repository or args.name, args.force, changes)


def cmd_upload_artifacts(aws: Aws, args: argparse.Namespace, changes: Changes) -> None:
    artifacts.upload_artifacts(
        aws,
        required(args.bucket, "--bucket", "PRICING_S3_BUCKET"),
        args.prefix,
        changes,
        features=args.features,
        bento=args.bento,
        create_bucket=args.create_bucket,
    )


def cmd_gate(aws: Aws | None, args: argparse.Namespace, changes: Changes) -> None:
    for line in gate.check_release(args.metrics, args.max_vs_baseline, args.max_rel_error):
        changes.note(line)
    changes.note("gate passed")


# ---------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m pricing.cloud`` parser with one sub-command per release step."""
    parser = argparse.ArgumentParser(
        prog="python -m pricing.cloud",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
    common.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    common.add_argument("--name", default=DEFAULT_NAME, help="the deployment's name: repository, endpoint, function")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help_text, description=help_text)

    def waits(p: argparse.ArgumentParser, timeout: float, interval: float) -> None:
        p.add_argument("--wait-timeout", type=float, default=timeout, help=f"seconds to wait (default {timeout:.0f})")
        p.add_argument("--poll-interval", type=float, default=interval, help=f"seconds between polls ({interval:g})")

    def image_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--image-uri", help="the image to run (default: the ECR repository's URI with --image-tag)")
        p.add_argument("--image-tag", help="tag in the ECR repository (default: the version of --bento)")
        p.add_argument("--repository", help="ECR repository (default: --name)")
        p.add_argument("--bento", default=DEFAULT_BENTO, help=f"local bento for the default tag ({DEFAULT_BENTO})")
        p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment (repeatable)")

    p = command("push-image", "create the ECR repository if missing and push the image to it")
    p.add_argument("--image", help="local image (default: pricing:<bento version>; skopeo also takes oci:DIR etc.)")
    p.add_argument("--tag", action="append", default=[], help="tag to push (repeatable; default: bento version and "
                   "run-<training run id>)")  # fmt: skip
    p.add_argument("--extra-tag", action="append", default=[], help="a tag to push besides those (repeatable)")
    p.add_argument("--bento", default=DEFAULT_BENTO, help=f"bento that names the image and tags ({DEFAULT_BENTO})")
    p.add_argument("--repository", help="ECR repository name (default: --name)")
    p.add_argument("--keep-images", type=int, default=30, help="lifecycle policy: keep the last N images (30)")
    p.add_argument("--no-scan-on-push", dest="scan_on_push", action="store_false", help="do not scan on push")
    p.add_argument("--tool", choices=("auto", *ecr.TOOLS), default="auto", help="container tool (auto: what works)")
    p.add_argument(
        "--registry-endpoint",
        default=os.environ.get("PRICING_ECR_REGISTRY_ENDPOINT"),
        help="push to this registry URL instead of the host ECR names (a mirror or VPC endpoint; "
        "PRICING_ECR_REGISTRY_ENDPOINT)",
    )
    p.set_defaults(run=cmd_push_image)

    p = command("deploy-sagemaker", "create or update the SageMaker model, endpoint config and endpoint")
    p.add_argument("--endpoint", help="endpoint name (default: --name)")
    image_options(p)
    p.add_argument("--role-arn", default=os.environ.get("PRICING_SAGEMAKER_ROLE_ARN"), help="SageMaker execution role")
    p.add_argument("--memory", type=int, default=1024, help="serverless memory, MB (1024)")
    p.add_argument("--max-concurrency", type=int, default=5, help="serverless max concurrency (5)")
    p.add_argument("--instance-type", help="an instance endpoint of this type (e.g. ml.m5.large) instead")
    p.add_argument("--instance-count", type=int, default=1, help="instances (1)")
    waits(p, 1800, 15)
    p.set_defaults(run=cmd_deploy_sagemaker)

    p = command("deploy-lambda", "create or update the Lambda function, its alias and HTTP front door")
    p.add_argument("--function", help="function name (default: --name)")
    image_options(p)
    p.add_argument("--role-arn", default=os.environ.get("PRICING_LAMBDA_ROLE_ARN"), help="Lambda execution role")
    p.add_argument("--memory", type=int, default=2048, help="MB (2048)")
    p.add_argument("--timeout", type=int, default=60, help="seconds (60)")
    p.add_argument("--architecture", choices=("x86_64", "arm64"), default="x86_64", help="the image's (x86_64)")
    p.add_argument("--alias", default="live", help="alias the front door invokes (live)")
    p.add_argument("--front-door", choices=("url", "http-api", "none"), default="url", help="function URL (url), "
                   "API Gateway HTTP API (http-api) or none")  # fmt: skip
    p.add_argument("--url-auth", choices=("NONE", "AWS_IAM"), default="NONE", help="function URL auth (NONE)")
    p.add_argument("--cors-origin", action="append", default=[], help="allowed CORS origin (repeatable)")
    waits(p, 600, 2)
    p.set_defaults(run=cmd_deploy_lambda)

    p = command("invoke", "run a price sweep against the deployed service and print the curve and best price")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--sagemaker", nargs="?", const="", metavar="ENDPOINT", help="through SageMaker's runtime")
    target.add_argument("--lambda", dest="lambda_", nargs="?", const="", metavar="FUNCTION",
                        help="through the function's URL or HTTP API (the default)")  # fmt: skip
    target.add_argument("--url", help="any URL that serves the API (bentoml serve, staging)")
    p.add_argument("--alias", default="live", help="Lambda alias (live)")
    p.add_argument("--stockcode", required=True, help="product to price")
    p.add_argument("--price-min", type=float, help="lowest grid price")
    p.add_argument("--price-max", type=float, help="highest grid price")
    p.add_argument("--bins", type=int, default=20, help="grid prices (20)")
    p.add_argument("--segment", choices=("wholesale", "retail"), help="price list")
    p.add_argument("--json", action="store_true", help="print the service's JSON answer")
    p.set_defaults(run=cmd_invoke)

    p = command("status", "show what the commands deployed under --name")
    p.add_argument("--repository", help="ECR repository (default: --name)")
    p.add_argument("--endpoint", help="SageMaker endpoint (default: --name)")
    p.add_argument("--function", help="Lambda function (default: --name)")
    p.add_argument("--alias", default="live", help="Lambda alias (live)")
    p.set_defaults(run=cmd_status)

    p = command("teardown", "delete what the deploy commands created (the ECR repository only with --ecr)")
    p.add_argument("--sagemaker", action="store_true", help="only the SageMaker endpoint, configs and models")
    p.add_argument("--lambda", dest="lambda_", action="store_true", help="only the Lambda function and its API")
    p.add_argument("--ecr", action="store_true", help="also the ECR repository")
    p.add_argument("--force", action="store_true", help="with --ecr: delete the repository with its images")
    p.add_argument("--repository", help="ECR repository (default: --name)")
    p.add_argument("--endpoint", help="SageMaker endpoint (default: --name)")
    p.add_argument("--function", help="Lambda function (default: --name)")
    p.add_argument("--alias", default="live", help="Lambda alias (live)")
    waits(p, 1800, 15)
    p.set_defaults(run=cmd_teardown)

    p = command("upload-artifacts", "upload the feature store and the bento archive to S3")
    p.add_argument("--bucket", default=os.environ.get("PRICING_S3_BUCKET"), help="bucket (PRICING_S3_BUCKET)")
    p.add_argument("--prefix", default="pricing", help="key prefix (pricing)")
    p.add_argument("--features", type=Path, help="feature store directory (train.py writes data/features)")
    p.add_argument("--bento", help="a .bento archive, or a bento tag exported from the local store")
    p.add_argument("--create-bucket", action="store_true", help="create the bucket when missing")
    p.set_defaults(run=cmd_upload_artifacts)

    p = command("gate", "check a training run's primary model against the release gate (no AWS call)")
    p.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"), help="train.py's run record")
    p.add_argument("--max-vs-baseline", type=float, default=1.0, help="pricing error / baseline's, at most (1.0)")
    p.add_argument("--max-rel-error", type=float, help="median relative error of the optimal price, at most")
    p.set_defaults(run=cmd_gate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one release command; print one line and return 1 on an expected failure."""
    args = build_parser().parse_args(argv)
    changes = Changes()
    try:
        needs_aws = args.command != "gate" and not (args.command == "invoke" and args.url)
        aws = connect(args.region, args.profile) if needs_aws else None
        args.run(aws, args, changes)
    except CloudError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if args.command not in ("invoke", "status", "gate"):
        changes.summary()
    return 0
