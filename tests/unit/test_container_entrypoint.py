"""The image's entry point: which command each way of starting the container runs."""

from __future__ import annotations

import sys

import pytest

from pricing.cloud.container import LAMBDA_HANDLER, EntryPointError, main, plan

IMAGE_ENV = {"BENTO_PATH": "/home/bentoml/bento"}
BENTOML_ENTRYPOINT = "/home/bentoml/bento/env/docker/entrypoint.sh"


def test_no_arguments_is_bentomls_default_serve_on_its_port() -> None:
    assert plan([], IMAGE_ENV) == ([BENTOML_ENTRYPOINT], {})
    assert plan(["--workers", "2"], IMAGE_ENV) == ([BENTOML_ENTRYPOINT, "--workers", "2"], {})


def test_serve_is_sagemakers_contract_on_8080() -> None:
    assert plan(["serve"], IMAGE_ENV) == ([BENTOML_ENTRYPOINT, "serve"], {"BENTOML_PORT": "8080"})


def test_serve_honours_an_explicit_port_and_sagemakers_pipeline_port() -> None:
    assert plan(["serve"], {**IMAGE_ENV, "PORT": "9000"})[1] == {}
    assert plan(["serve"], {**IMAGE_ENV, "BENTOML_PORT": "9000"})[1] == {}
    assert plan(["serve"], {**IMAGE_ENV, "SAGEMAKER_BIND_TO_PORT": "8443"})[1] == {"BENTOML_PORT": "8443"}


def test_lambda_runs_the_runtime_interface_client_on_our_handler() -> None:
    env = {**IMAGE_ENV, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
    assert plan(["lambda"], env) == ([sys.executable, "-m", "awslambdaric", LAMBDA_HANDLER], {})
    assert LAMBDA_HANDLER == "pricing.cloud.aws_lambda.handler"


def test_other_commands_go_to_bentoml_entry_point_unchanged() -> None:
    assert plan(["bash", "-c", "id"], IMAGE_ENV) == ([BENTOML_ENTRYPOINT, "bash", "-c", "id"], {})


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["lambda"], IMAGE_ENV, "AWS_LAMBDA_RUNTIME_API"),
        (["serve"], {}, "BENTO_PATH"),
    ],
)
def test_modes_that_cannot_start_say_why_in_one_line(argv, env, message, monkeypatch, capsys) -> None:
    with pytest.raises(EntryPointError, match=message):
        plan(argv, env)
    monkeypatch.setattr("os.environ", env)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
