"""The AWS Lambda runtime API on 127.0.0.1, to drive the image's Lambda entry point without AWS.

Inside Lambda, the runtime interface client (``awslambdaric``) long-polls the runtime API for the next event
and posts the handler's answer back; AWS's runtime interface emulator plays that part on a workstation. The
emulator is a binary from GitHub, out of reach here, so this server implements the same endpoints of the
2018-06-01 runtime API (next, response, error, init error) that the real ``awslambdaric`` in the container
talks to over HTTP. It also notes when the client first asks for an event: the end of the init phase.
"""

from __future__ import annotations

import itertools
import json
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:pricing"
PREFIX = "/2018-06-01/runtime"


class RuntimeApiError(RuntimeError):
    """The function failed to initialise or to answer an event, or took too long."""


@dataclass
class Outcome:
    """What the function posted for one event."""

    kind: str  # "response" or "error"
    payload: Any
    seconds: float  # from handing the event out to receiving the answer


@dataclass
class _Pending:
    event: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    handed_out_at: float = 0.0
    outcome: Outcome | None = None


class LambdaRuntimeApi:
    """A runtime API server for one function instance; ``invoke`` sends an event and waits for its answer."""

    def __init__(self, deadline_s: float = 60) -> None:
        self.deadline_s = deadline_s
        self.first_poll_at: float | None = None
        self.init_error: Any = None
        self._events: queue.Queue[str] = queue.Queue()
        self._pending: dict[str, _Pending] = {}
        self._ids = (f"req-{n:04d}-8f3c" for n in itertools.count(1))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """host:port, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> LambdaRuntimeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: dict[str, Any], timeout_s: float) -> Outcome:
        """Queue ``event`` for the function and return what it posted back."""
        request_id = next(self._ids)
        pending = self._pending[request_id] = _Pending(event)
        self._events.put(request_id)
        if not pending.done.wait(timeout_s):
            raise RuntimeApiError(f"no answer to {request_id} within {timeout_s:.0f} s (init error: {self.init_error})")
        assert pending.outcome is not None
        return pending.outcome

    def wait_for_first_poll(self, timeout_s: float, alive: Any) -> float:
        """Block until the function first asks for an event (its init phase is over); return that time.

        ``alive()`` is polled meanwhile; when it turns false, or the function reports an init error, raise.
        """
        deadline = time.monotonic() + timeout_s
        while self.first_poll_at is None:
            if self.init_error is not None:
                raise RuntimeApiError(f"the function failed to initialise: {json.dumps(self.init_error)[:2000]}")
            if not alive() or time.monotonic() > deadline:
                raise RuntimeApiError(f"the function did not ask for an event within {timeout_s:.0f} s")
            time.sleep(0.05)
        return self.first_poll_at

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the image test reports what matters."""

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, {"errorMessage": f"unknown path {self.path}"})
                    return
                if api.first_poll_at is None:
                    api.first_poll_at = time.monotonic()
                request_id = api._events.get()  # long poll, as the real API does
                pending = api._pending[request_id]
                pending.handed_out_at = time.monotonic()
                body = json.dumps(pending.event).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int((time.time() + api.deadline_s) * 1000)))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-00000000-{request_id};Sampled=0")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = payload
                    self._reply(202, {"status": "OK"})
                    return
                match = re.fullmatch(rf"{PREFIX}/invocation/([^/]+)/(response|error)", self.path)
                if not match or match.group(1) not in api._pending:
                    self._reply(404, {"errorMessage": f"unknown path {self.path}"})
                    return
                pending = api._pending.pop(match.group(1))
                pending.outcome = Outcome(match.group(2), payload, time.monotonic() - pending.handed_out_at)
                pending.done.set()
                self._reply(202, {"status": "OK"})

            def _reply(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
