"""Optional API-key check for the service: an ASGI middleware in front of every route but health, docs and the
web page's static files.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

HEADER = "x-api-key"
# Health checks must work for load balancers, SageMaker and Prometheus, which do not carry the key. The docs and
# the web page (/ui: static files, no data) load without it; the page then asks for the key and sends it.
OPEN_PATHS = frozenset({"/ping", "/livez", "/healthz", "/readyz", "/metrics", "/", "/docs.json", "/schema.json", "/ui"})
OPEN_PREFIXES = ("/static_content", "/ui/")


class APIKeyMiddleware:
    """Answers 401 unless the request carries the configured key in the X-API-Key header."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:  # fmt: skip
        if scope["type"] != "http" or self._open(scope) or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": f"missing or wrong {HEADER} header"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"ApiKey")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _open(scope: Scope) -> bool:
        # CORS preflights carry no credentials by design; the CORS middleware answers them.
        return scope["method"] == "OPTIONS" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES)

    def _authorised(self, scope: Scope) -> bool:
        supplied = dict(scope.get("headers") or []).get(HEADER.encode(), b"")
        return hmac.compare_digest(supplied, self._key)
