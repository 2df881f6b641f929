"""Defaults and limits shared by the HTTP schemas, the settings and the serving core, and the limits on what a
request may be: its body's size (``BodyLimitMiddleware``) and, on BentoML's POST APIs, its media type
(``JSONBodyMiddleware``).

Free of heavy imports on purpose: `bentoml serve` imports the service module in its parent process only to
read the service's configuration and routes, and that process should not pay for pandas, pyarrow, Redis or
the models (``service.py`` imports those where the worker uses them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

DEFAULT_BINS = 100
MIN_BINS, MAX_BINS = 2, 1_000
DEFAULT_CONTEXT, MAX_CONTEXT = 52, 104  # periods: a year of weeks by default
MAX_PRICE = 1_000_000.0  # GBP: no posted price is near it, and price x quantity stays a finite float
DEFAULT_TTL_SECONDS = 3600  # cached sweep answers
DEFAULT_TIME_BUDGET_S = 5.0  # one model call, before the next model of the serving order answers
# The largest legitimate body, 10,000 /predict rows with every UCI column, is about 2 MB of JSON.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLargeError(Exception):
    """Raised into the application when a body without a Content-Length grows past the limit (its answer is
    then replaced by the 413)."""


class BodyLimitMiddleware:
    """Answers 413 (the one error body of ``pricing.errors``) to a request whose body is larger than
    ``max_bytes``: from its Content-Length before anything is read, or, for a chunked body, as soon as the bytes
    received pass the limit (the application's reading of the body then fails, and its answer is replaced)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        received, exceeded, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the application's answer to a body it could not read: replaced below
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(BodyTooLargeError):
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await self._refuse(send, received)

    async def _refuse(self, send: Send, size: int) -> None:
        from pricing.errors import error_body

        body = error_body(413, f"the request body ({size:,} bytes or more) is larger than the limit of "
                          f"{self.max_bytes:,} bytes (PRICING_MAX_BODY_BYTES)")  # fmt: skip
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# BentoML's POST APIs parse these as forms (a form without its boundary failed with a 500), and the pickle one is
# for BentoML's own clients; every other media type is read as JSON.
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded", "application/vnd.bentoml+pickle"})


class JSONBodyMiddleware:
    """Answers 415 (the one error body) to a form or pickle body sent to one of ``paths`` (BentoML's POST APIs,
    which take JSON only)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], paths: frozenset[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            media_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
            media_type = media_type.split(";")[0].strip().lower()
            if media_type in FORM_TYPES:
                from pricing.errors import error_body

                body = error_body(415, f"send the body as application/json, not {media_type}")
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 415, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
