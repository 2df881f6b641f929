"""The Makefile's release targets run the commands with CLOUD_ARGS (against moto), so they cannot rot."""

from __future__ import annotations

import os
import subprocess

from tests.support import ROOT

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pricing:v1"


def make(target: str, cloud_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target, f"CLOUD_ARGS={cloud_args}"], cwd=ROOT, env=dict(os.environ),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_deploy_status_and_teardown_targets(aws_env, name, role_arn) -> None:
    deployed = make("deploy-sagemaker", f"--name {name} --image-uri {IMAGE} --role-arn {role_arn} --poll-interval 0")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"created    SageMaker endpoint {name}" in deployed.stdout

    status = make("cloud-status", f"--name {name}")
    assert status.returncode == 0 and f"SageMaker endpoint {name}: InService" in status.stdout

    down = make("teardown", f"--name {name} --poll-interval 0")
    assert down.returncode == 0 and f"deleted    SageMaker endpoint {name}" in down.stdout


def test_a_failing_command_fails_the_target(aws_env, name) -> None:
    proc = make("invoke", f"--sagemaker {name}")
    assert proc.returncode != 0
    assert f"error: SageMaker endpoint '{name}' not found in us-east-1" in proc.stderr
