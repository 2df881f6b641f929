"""Optional API-key check for the service: an ASGI middleware in front of every route but health, metrics, the
API docs and the web page's static files.

The key comes only from the ``X-API-Key`` header (never a query string, which access logs and proxies record)
and is never logged: BentoML's access log writes the method, path, status, content type and length, not
headers. Both the configured key and the supplied one are hashed (SHA-256) before ``hmac.compare_digest``, so
the comparison always runs over 32 bytes and its time depends on neither key's length nor content.
"""

from __future__ import annotations

import hashlib
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
OPEN_PREFIXES = ("/static_content/", "/ui/")
_POLICY_VIOLATION = 1008  # WebSocket close code


def unauthorised_body(message: str) -> bytes:
    """The 401 body, in the service's one error shape."""
    return json.dumps({"error": {"status": 401, "field": HEADER, "message": message}}).encode()


class APIKeyMiddleware:
    """Answers 401 unless the request carries the configured key in the X-API-Key header."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.app = app
        self._digest = hashlib.sha256(api_key.encode()).digest()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:  # fmt: skip
        if scope["type"] not in ("http", "websocket") or self._open(scope) or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
            return
        supplied = HEADER.encode() in dict(scope.get("headers") or [])
        message = f"wrong {HEADER} header" if supplied else f"missing {HEADER} header: this service needs an API key"
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"ApiKey")]})  # fmt: skip
        await send({"type": "http.response.body", "body": unauthorised_body(message)})

    @staticmethod
    def _open(scope: Scope) -> bool:
        path = scope["path"]
        if scope["type"] != "http" or "/.." in path:  # "/ui/%2E%2E/products" arrives as "/ui/../products"
            return False
        # CORS preflights carry no credentials by design; the CORS middleware, in front of this one (pricing.edge),
        # answers them when CORS is configured.
        return scope["method"] == "OPTIONS" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def _authorised(self, scope: Scope) -> bool:
        supplied = dict(scope.get("headers") or []).get(HEADER.encode(), b"")
        return hmac.compare_digest(hashlib.sha256(supplied).digest(), self._digest)
