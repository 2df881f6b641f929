"""The price-curve web page: static files the service serves at ``/ui`` (no build step, no CDN, no font).

``router`` is a FastAPI router the service includes in its mounted app. The page (``static/index.html``)
loads its own script modules and style sheet from ``/ui/<name>`` and talks to the service's own API from
the browser (``GET /products``, ``GET /model``, ``POST /price_sweep``), so it needs nothing else and works
offline. Its URLs are relative, so the page also works behind a path prefix.

Only the files listed in ``ASSETS`` are served (no path is read from a request). Every response carries a
strict Content-Security-Policy (scripts, styles and requests from this origin only) and an ETag; browsers
revalidate (``no-cache``) and get 304 while a file is unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

STATIC = Path(__file__).resolve().parent / "static"
PAGE = "index.html"
ASSETS = {
    PAGE: "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    """One file of the page, read once."""

    body: bytes
    media_type: str
    etag: str


@cache
def load_asset(name: str) -> Asset:
    """The file ``name`` of ``ASSETS`` with its media type and ETag; KeyError for any other name."""
    media_type = ASSETS[name]
    body = (STATIC / name).read_bytes()
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def page_bytes() -> int:
    """Bytes of every file the page loads (the HTML, its scripts and its style sheet), uncompressed."""
    return sum(len(load_asset(name).body) for name in ASSETS)


def _respond(name: str, request: Request) -> Response:
    asset = load_asset(name)
    headers = {**SECURITY_HEADERS, "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/ui")
def page(request: Request) -> Response:
    """The page; its query string (``?stockcode=85123A&bins=50...``) is read by the page itself."""
    return _respond(PAGE, request)


@router.get("/ui/")
def page_with_slash(request: Request) -> RedirectResponse:
    """``/ui/`` to ``/ui``, keeping the query: the page's relative URLs are relative to ``/ui``."""
    query = request.url.query
    return RedirectResponse("../ui" + (f"?{query}" if query else ""), status_code=308)


@router.get("/ui/{name}")
def asset(name: str, request: Request) -> Response:
    """One of the page's scripts or its style sheet; 404 for anything else."""
    if name not in ASSETS or name == PAGE:
        return Response("not found", status_code=404, media_type="text/plain")
    return _respond(name, request)
