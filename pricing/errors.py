"""One error body for every route and status: ``{"error": {"status": int, "field": str | null, "message": str}}``.

``field`` names the input the error is about in the client's own terms (``bins``, ``rows[3].UnitPrice``, the
compatibility route's ``num_price_bins``), or is null when the error is about the request as a whole (a body
that is not JSON, an unknown route, no model able to answer). The status says what kind of error it is: 400
invalid input, 401 missing API key, 404 unknown product or route, 405 wrong method, 413 body too large, 415 a
form sent to a JSON route, 422 query parameters that are malformed, out of range or unknown (FastAPI routes, as
the original system answered), 503 no model can answer (the reasons go to the server's log, not to the client),
504 no answer within BentoML's traffic timeout (``traffic.timeout``, 60 s), and 429 more requests in progress than
``traffic.max_concurrency`` allows (only when an operator sets it).

Errors reach a client by three paths, all ending in ``error_body``:

- the service's own code raises ``ApiError`` (``domain_errors`` turns the serving core's exceptions into one);
  the FastAPI routes' exception handlers (``install_handlers``) and ``answers_errors`` (BentoML's POST APIs)
  render it;
- FastAPI's own validation and HTTP errors go through the same handlers;
- what neither sees, BentoML's validation of its POST APIs' bodies (``{"error": "1 validation error for
  SweepInIODescriptor", "detail": [...]}``, rendered in ``_bentoml_impl/server/app.py``), the router's own
  404 and 405, a refused CORS preflight (400) and BentoML's traffic middlewares' 504 and 429, is rewritten by
  ``ErrorBodyMiddleware`` on its way out (``pricing.edge`` places it in front of all of them).

Light to import: the serving core's exceptions are imported where they are mapped, in the worker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("pricing.errors")

MAX_MESSAGE_CHARS = 500  # a client reads one sentence or a few, not a dump
_FOREIGN_BODY_LIMIT = 64 * 1024  # an error body larger than this is not parsed, only replaced
_GENERIC = {
    400: "bad request",
    401: "missing or wrong API key",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
    422: "invalid parameters",
    429: "too many requests",
    500: "internal error: the server log has the details",
    503: "service unavailable",
    504: "the request took too long",
}


class ErrorDetail(BaseModel):
    """What went wrong."""

    status: int = Field(description="The HTTP status, repeated", examples=[400])
    field: str | None = Field(
        description="The input the error is about, as the client named it (e.g. bins, rows[3].UnitPrice, "
        "num_price_bins); null when it is about the request as a whole",
        examples=["bins"],
    )
    message: str = Field(
        description="What is wrong, in words", examples=["bins: Input should be less than or equal to 1000"]
    )


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error answer: raised anywhere in the service's request handling, rendered as one error body."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        """This error as an HTTP response."""
        return error_response(self.status, self.message, self.field, headers)


def error_body(status: int, message: str, field: str | None = None) -> bytes:
    """The error body as JSON bytes."""
    message = " ".join(message.split()) or _GENERIC.get(status, "error")
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return orjson.dumps({"error": {"status": status, "field": field, "message": message}})


def error_response(
    status: int, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    """An error response with the one error body."""
    return Response(error_body(status, message, field), status_code=status, headers=headers,
                    media_type="application/json")  # fmt: skip


def field_name(loc: Sequence[str | int]) -> str | None:
    """A pydantic error location as a client writes it: ``("rows", 3, "UnitPrice")`` -> ``rows[3].UnitPrice``."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


def validation_error(
    errors: Sequence[Mapping[str, Any]], status: int = 400, rename: Mapping[str, str] | None = None, skip: int = 0
) -> ApiError:
    """An ``ApiError`` for pydantic's errors (``ValidationError.errors()``): the first one's field, every message.
    ``skip`` drops leading location parts (FastAPI's "query", "body"); ``rename`` maps our field names to the
    client's."""
    rename = rename or {}
    parts, first_field = [], None
    for index, error in enumerate(errors):
        loc = list(error.get("loc") or ())[skip:]
        if loc and isinstance(loc[0], str):
            loc[0] = rename.get(loc[0], loc[0])
        field = field_name(loc)
        words = _words(str(error.get("msg", "invalid")), rename)
        parts.append(f"{field}: {words}" if field else words)
        if index == 0:
            first_field = field
    return ApiError(status, "; ".join(parts) or "invalid request", first_field)


def from_pydantic(exc: ValidationError, status: int = 400, rename: Mapping[str, str] | None = None) -> ApiError:
    """An ``ApiError`` for a pydantic ``ValidationError``."""
    return validation_error(exc.errors(include_url=False, include_context=False, include_input=False), status, rename)


def _words(message: str, rename: Mapping[str, str]) -> str:
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    for ours, theirs in rename.items():
        message = message.replace(ours, theirs)
    return message


@contextmanager
def domain_errors(rename: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn the serving core's exceptions into ``ApiError``: invalid input 400 (its field), unknown product 404
    (``stockcode``), no model able to answer 503."""
    from pricing.serving import ModelsUnavailableError
    from pricing.sweep import SweepInputError, UnknownProductError

    rename = rename or {}
    try:
        yield
    except SweepInputError as exc:
        raise ApiError(400, _words(str(exc), rename), rename.get(exc.field, exc.field)) from exc
    except UnknownProductError as exc:
        raise ApiError(404, str(exc), "stockcode") from exc
    except ModelsUnavailableError as exc:
        # The reasons (exception texts) stay in the server's log; the client learns that no model answered.
        log.error("%s", exc)
        raise ApiError(503, "no model could answer this request; GET /model lists the models that are loaded") from exc


def answers_errors(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Let a BentoML API raise ``ApiError``: BentoML would render anything but its own exceptions as a 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except ApiError as exc:
            return exc.response()

    return wrapper


def install_handlers(app: Any) -> None:
    """Render ``ApiError``, FastAPI's validation errors (422) and HTTP errors on ``app`` (a FastAPI app) as the
    one error body."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def api_error(_: Any, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def invalid(_: Any, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_error(list(exc.errors()), status=422, skip=1).response()

    async def http_error(request: Any, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else ""
        if exc.status_code in (404, 405):  # the router's: say which route
            detail = _route_message(exc.status_code, request.method, request.url.path)
        return error_response(exc.status_code, detail, headers=exc.headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)


class ErrorBodyMiddleware:
    """Rewrites every error response (status >= 400) whose body is not the one error body: BentoML's validation
    errors of its POST APIs (their pydantic locations become the field), its other error bodies, and the router's
    plain-text 404 and 405. Responses below 400 and error bodies already in shape pass through untouched. An
    exception that escapes before any answer started gets a 500 in the one body (and is raised on, for the log).

    ``messages``: the message for a status whose foreign body says too little, such as BentoML's traffic
    timeout (504) and concurrency limit (429) (``pricing.edge`` places this middleware in front of them)."""

    def __init__(self, app: ASGIApp, messages: Mapping[int, str] | None = None) -> None:
        self.app = app
        self.messages = dict(messages or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        answered = False  # something went out to the client

        async def rewrite(message: Message) -> None:
            nonlocal start, size, answered
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                answered = True
                await send(message)
                return
            body = message.get("body", b"")
            size += len(body)
            if size <= _FOREIGN_BODY_LIMIT:
                chunks.append(body)
            if message.get("more_body", False):
                return
            status, whole = start["status"], b"".join(chunks)
            if status in self.messages and not _is_error_body(_parsed(whole, size), status):
                conforming = error_body(status, self.messages[status])
            else:
                conforming = _conforming(scope, status, whole, size)
            answered = True
            await _send_error(send, start, conforming)

        try:
            await self.app(scope, receive, rewrite)
        except Exception:
            if not answered:
                await _send_error(send, {"status": 500, "headers": []}, error_body(500, _GENERIC[500]))
            raise


async def _send_error(send: Send, start: Message, body: bytes) -> None:
    keep = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    headers = [*keep, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _conforming(scope: Scope, status: int, body: bytes, size: int) -> bytes:
    """``body`` if it is the one error body already, else the one error body saying what ``body`` said."""
    parsed = _parsed(body, size)
    if _is_error_body(parsed, status):
        return body
    if isinstance(parsed, dict) and isinstance(parsed.get("detail"), list):
        # BentoML's validation errors ({"error": ..., "detail": [...]}) and FastAPI's ({"detail": [...]})
        skip = 1 if "error" not in parsed else 0  # FastAPI's locations start with "body" or "query"
        error = validation_error([d for d in parsed["detail"] if isinstance(d, dict)], status, skip=skip)
        return error_body(status, error.message, error.field)
    if (status == 404 and parsed is None) or status == 405:
        return error_body(status, _route_message(status, scope.get("method", ""), scope.get("path", "")))
    if status == 500:  # the server log has it; the client gets no internals
        return error_body(500, _GENERIC[500])
    return error_body(status, _message_of(parsed, body) if size <= _FOREIGN_BODY_LIMIT else "")


def _parsed(body: bytes, size: int) -> Any:
    """``body`` as JSON, or None when it is not JSON or too large to parse."""
    if size > _FOREIGN_BODY_LIMIT:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _route_message(status: int, method: str, path: str) -> str:
    return f"no route {method} {path}" if status == 404 else f"method {method} is not allowed on {path}"


class ClientErrorLogFilter(logging.Filter):
    """Drops BentoML's error-level traceback for a request whose body failed validation (or was too large): a
    client's mistake, answered with a 4xx, is not a server error, and a fuzzer would fill the log with them."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pricing.limits import BodyTooLargeError

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ValidationError | BodyTooLargeError)


def _is_error_body(parsed: Any, status: int) -> bool:
    if not isinstance(parsed, dict) or set(parsed) != {"error"} or not isinstance(parsed["error"], dict):
        return False
    error = parsed["error"]
    return (
        set(error) == {"status", "field", "message"}
        and error["status"] == status
        and isinstance(error["message"], str)
        and (error["field"] is None or isinstance(error["field"], str))
    )


def _message_of(parsed: Any, body: bytes) -> str:
    """The words of a foreign error body: BentoML's ``[{"error": ...}]``, ``{"error": ...}``, FastAPI's
    ``{"detail": ...}``, or plain text."""
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict):
        for key in ("error", "detail", "message"):
            if isinstance(parsed.get(key), str):
                return parsed[key]
        return ""
    if isinstance(parsed, str):
        return parsed
    return body.decode("utf-8", "replace") if parsed is None else ""
