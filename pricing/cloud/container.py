"""The image's entry point: one image, three ways to run it.

    docker run IMAGE                  bentoml serve on port 3000 (flags after IMAGE go to bentoml serve)
    docker run IMAGE serve            SageMaker's contract: bentoml serve on port 8080
    docker run IMAGE lambda           AWS Lambda: the runtime interface client runs pricing.cloud.aws_lambda
    docker run IMAGE COMMAND ...      anything else runs as it is

Apart from ``serve``'s port and ``lambda``, this hands over (exec) to BentoML's own entry point, the bento's
``env/docker/entrypoint.sh``, which runs ``bentoml serve`` on the bento. An explicit ``PORT`` or ``BENTOML_PORT``
always wins; a SageMaker inference pipeline names the port in ``SAGEMAKER_BIND_TO_PORT``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

SAGEMAKER_PORT = 8080
LAMBDA_HANDLER = "pricing.cloud.aws_lambda.handler"


class EntryPointError(RuntimeError):
    """The container cannot start in the mode asked for; the message says why."""


def plan(argv: list[str], env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command to exec for the container's arguments, and the variables to add to its environment."""
    if argv[:1] == ["lambda"]:
        if not env.get("AWS_LAMBDA_RUNTIME_API"):
            raise EntryPointError(
                "lambda mode needs AWS_LAMBDA_RUNTIME_API (set by AWS Lambda, or by a runtime interface emulator)"
            )
        return [sys.executable, "-m", "awslambdaric", LAMBDA_HANDLER], {}
    bento_path = env.get("BENTO_PATH")
    if not bento_path:
        raise EntryPointError("BENTO_PATH is not set: this entry point runs inside the bento's image")
    extra: dict[str, str] = {}
    if argv[:1] == ["serve"] and not (env.get("PORT") or env.get("BENTOML_PORT")):
        extra["BENTOML_PORT"] = env.get("SAGEMAKER_BIND_TO_PORT") or str(SAGEMAKER_PORT)
    return [str(Path(bento_path) / "env" / "docker" / "entrypoint.sh"), *argv], extra


def main(argv: list[str] | None = None) -> int:
    """Exec the command for ``argv`` (default: the container's arguments); return 2 with a message if it cannot."""
    try:
        command, extra = plan(sys.argv[1:] if argv is None else argv, os.environ)
    except EntryPointError as exc:
        print(f"pricing image: {exc}", file=sys.stderr)
        return 2
    os.execve(command[0], command, {**os.environ, **extra})  # replaces this process: no return


if __name__ == "__main__":
    sys.exit(main())
