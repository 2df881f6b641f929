"""AWS Lambda entry point: the bento's service as an ASGI app behind Mangum, inside the Lambda process.

    python -m awslambdaric pricing.cloud.aws_lambda.handler     # what `docker run IMAGE lambda` runs

API Gateway REST API (payload 1.0), HTTP API (payload 2.0) and function URL events reach every route of the
service and get back its status, headers and body; Mangum decodes base64 request bodies and base64-encodes
answers that are not text. No server process runs: the service lives in this process, with one instance
(Lambda sends a process one event at a time, so adaptive batching has nothing to merge). Lambda's file system
is read-only but for /tmp, so BentoML's home and its Prometheus files go there; the models are read from the
bento in the image.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import ASGI

# /tmp on Lambda (tempfile honours TMPDIR, so a test can move it).
LAMBDA_HOME = Path(tempfile.gettempdir()) / "bentoml"


def prepare_environment(env: MutableMapping[str, str], home: Path = LAMBDA_HOME) -> None:
    """Point BentoML's home and Prometheus's multiprocess files at the writable ``home``.

    Call it before bentoml (or prometheus_client) is imported: both read these variables at import.
    """
    metrics_dir = home / "prometheus_multiproc_dir"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env["BENTOML_HOME"] = str(home)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


class LambdaApp:
    """The service started once in this process, and the Lambda handler that sends events to it."""

    def __init__(self, app: ASGI) -> None:
        # Mangum's own lifespan handling would start and stop the app around every event, and BentoML creates the
        # service (loading its models) at start-up. Started once here, the service lives as long as the process;
        # its lifespan task waits on the event loop that Mangum runs for each event.
        self._adapter = Mangum(app, lifespan="off")  # first: it sets up the event loop the lifespan runs on
        self._lifespan = LifespanCycle(app, "on")
        self._lifespan.__enter__()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """One API Gateway or function URL event in, its HTTP answer out."""
        return self._adapter(event, context)


def create_handler(target: str) -> LambdaApp:
    """Load the service from ``target`` (a bento directory, or an import string such as ``service:Pricing``),
    start it, and return the Lambda handler that sends events to it."""
    import bentoml

    return LambdaApp(bentoml.load(target).to_asgi())


@functools.cache
def _lambda_handler() -> LambdaApp:
    prepare_environment(os.environ)
    return create_handler(os.environ["BENTO_PATH"])


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda function's handler: one API Gateway or function URL event in, its HTTP answer out."""
    return _lambda_handler()(event, context)


if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    # Under the Lambda runtime, load during the init phase, before the first event; provisioned concurrency
    # runs that phase ahead of traffic.
    _lambda_handler()
