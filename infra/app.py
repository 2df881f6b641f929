"""The pricing service's AWS CDK app: ``PricingBase`` and ``PricingServing`` (see stacks.py).

Usage (from this folder; the CDK CLI comes from npm):
    npx aws-cdk deploy PricingBase -c github_repo=OWNER/REPO
    npx aws-cdk deploy PricingServing -c image_tag=<bento version>
    python app.py                    # synthesise into cdk.out/ without the CLI (what the tests run)

Context (``-c key=value``; defaults in cdk.json): name, image_tag, keep_images, github_repo,
github_oidc_provider_arn, github_branch, sagemaker_memory, sagemaker_max_concurrency, lambda_memory,
cors_origins (comma-separated), redis (true/false).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aws_cdk import App, Environment, Tags

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The CDK CLI runs this file from its folder; the tests run it from anywhere.
from stacks import BaseStack, ServingStack, Settings


def settings_from(app: App) -> Settings:
    """The Settings in the app's context, with the defaults of Settings for anything unset."""

    def get(key: str, default: object = None) -> object:
        value = app.node.try_get_context(key)
        return default if value in (None, "") else value

    defaults = Settings()
    origins = get("cors_origins", "")
    return Settings(
        name=str(get("name", defaults.name)),
        image_tag=str(get("image_tag", defaults.image_tag)),
        keep_images=int(get("keep_images", defaults.keep_images)),
        github_repo=get("github_repo"),
        github_oidc_provider_arn=get("github_oidc_provider_arn"),
        github_branch=str(get("github_branch", defaults.github_branch)),
        sagemaker_memory=int(get("sagemaker_memory", defaults.sagemaker_memory)),
        sagemaker_max_concurrency=int(get("sagemaker_max_concurrency", defaults.sagemaker_max_concurrency)),
        lambda_memory=int(get("lambda_memory", defaults.lambda_memory)),
        cors_origins=tuple(o.strip() for o in str(origins).split(",") if o.strip()),
        redis=str(get("redis", "false")).lower() in ("1", "true", "yes"),
    )


def build(app: App) -> tuple[BaseStack, ServingStack]:
    """Add both stacks to ``app``."""
    settings = settings_from(app)
    env = Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    base = BaseStack(app, "PricingBase", settings, env=env, description="pricing: ECR, S3, roles, GitHub OIDC")
    serving = ServingStack(
        app, "PricingServing", settings, base, env=env,
        description="pricing: SageMaker serverless, Lambda + HTTP API, REST API proxy, optional Redis",
    )  # fmt: skip
    for stack in (base, serving):
        Tags.of(stack).add("project", settings.name)
    return base, serving


def main() -> None:
    """Synthesise the app (into CDK_OUTDIR, which the CDK CLI sets, else cdk.out)."""
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
