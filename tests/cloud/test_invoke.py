"""invoke: a sweep against what can really answer here.

- ``--url`` against a real ``bentoml serve`` of the smoke-trained models (the same service the image runs).
- ``--sagemaker`` through the SageMaker runtime API on moto, which does not run the image: moto answers the
  body it was given through its own configuration API, here the real service's answer to the same sweep, so
  what is tested is the call, the endpoint lookup and the printing, not a model behind SageMaker.
- ``--lambda`` finds the front door through the Lambda API (moto); moto's function URLs do not answer, so the
  request itself is tested through ``--url`` and the Lambda handler's own tests (tests/integration).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import httpx
import pytest
from botocore.stub import Stubber

from pricing.cloud import invoke, lambda_deploy
from pricing.cloud.aws import CloudError
from tests.cloud.conftest import lines
from tests.support import bentoml_serve

SWEEP = {"stockcode": "85123A", "bins": 7}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pricing:v1"


@pytest.fixture(scope="module")
def served(smoke_run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``bentoml serve`` of the smoke run's models."""
    log = tmp_path_factory.mktemp("invoke-serve") / "serve.log"
    with bentoml_serve({"PRICING_RUN_ID": smoke_run.record["run_id"]}, log) as url:
        yield url


@pytest.fixture(scope="module")
def real_answer(served: str) -> dict:
    answer = httpx.post(f"{served}/price_sweep", json=SWEEP, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_url_prints_the_curve_and_the_best_price(cli, served, real_answer) -> None:
    run = cli("invoke", "--url", served, "--stockcode", "85123A", "--bins", "7")

    assert run.code == 0, run.err
    out = lines(run.out)
    assert out[0].startswith("85123A: 7 prices, model pricing_")
    table = out[2:-1]
    assert len(table) == 7
    assert [float(row.split()[0]) for row in table] == [round(p["unit_price"], 2) for p in real_answer["curve"]]
    [best] = [row for row in table if row.endswith("<- best")]
    assert float(best.split()[0]) == round(real_answer["optimal"]["unit_price"], 2)
    assert out[-1].startswith(f"best price {real_answer['optimal']['unit_price']:.2f}")


def test_url_json_is_the_service_answer(cli, served, real_answer) -> None:
    run = cli("invoke", "--url", served, "--stockcode", "85123A", "--bins", "7", "--json")
    assert run.code == 0, run.err
    body = json.loads(run.out)
    assert body["curve"] == real_answer["curve"] and body["optimal"] == real_answer["optimal"]


def test_url_error_status_is_one_line(cli, served) -> None:
    run = cli("invoke", "--url", served, "--stockcode", "NO-SUCH-PRODUCT")
    assert run.code == 1
    assert len(lines(run.err)) == 1
    assert run.err.startswith(f"error: {served}/price_sweep answered 404: unknown stockcode 'NO-SUCH-PRODUCT'")


def test_sagemaker_runtime_on_moto(cli, aws, aws_env, name, role_arn, real_answer) -> None:
    deployed = cli("deploy-sagemaker", "--name", name, "--image-uri", IMAGE, "--role-arn", role_arn,
                   "--poll-interval", "0")  # fmt: skip
    assert deployed.code == 0, deployed.err
    results = {"results": [{"Body": json.dumps(real_answer), "ContentType": "application/json"}]}
    httpx.post(f"{aws_env}/moto-api/static/sagemaker/endpoint-results", json=results).raise_for_status()

    run = cli("invoke", "--sagemaker", name, "--stockcode", "85123A", "--bins", "7")

    assert run.code == 0, run.err
    assert lines(run.out)[-1].startswith(f"best price {real_answer['optimal']['unit_price']:.2f}")


def test_model_error_from_the_container_is_one_line() -> None:
    from tests.cloud.test_deploy_sagemaker import StubbedAws, _endpoint

    aws = StubbedAws()
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="y")  # fmt: skip
    aws._clients["sagemaker-runtime"] = runtime
    aws.client = lambda service: runtime if service == "sagemaker-runtime" else aws._client  # type: ignore[method-assign]
    aws.stubber.add_response("describe_endpoint", _endpoint("p", "InService", "c"))
    with Stubber(runtime) as stubber, aws.stubber:
        stubber.add_client_error(
            "invoke_endpoint", "ModelError", "Received client error (404)", 424,
            response_meta={}, modeled_fields={"OriginalStatusCode": 404,
                                              "OriginalMessage": '{"detail": "unknown product NOPE"}'},
        )  # fmt: skip
        with pytest.raises(CloudError, match=r"^the endpoint answered 404: unknown product NOPE$"):
            invoke.invoke_sagemaker(aws, "p", invoke.sweep_request("NOPE"))


def test_lambda_front_door_is_found_through_the_api(cli, aws, name, role_arn) -> None:
    assert cli("deploy-lambda", "--name", name, "--image-uri", IMAGE, "--role-arn", role_arn,
               "--poll-interval", "0").code == 0  # fmt: skip
    url = aws.client("lambda").get_function_url_config(FunctionName=name)["FunctionUrl"]
    assert lambda_deploy.front_door_url(aws, name) == url
    assert lambda_deploy.function_url_auth(aws, name) == "NONE"
    with pytest.raises(CloudError, match="Lambda function 'nope' not found in us-east-1"):
        lambda_deploy.front_door_url(aws, "nope")


def test_an_answer_that_is_not_a_sweep_is_refused() -> None:
    with pytest.raises(CloudError, match="did not answer a price sweep"):
        invoke._parse(b'{"predictions": [1]}', "here")
    with pytest.raises(CloudError, match="did not answer JSON"):
        invoke._parse(b"body", "here")
