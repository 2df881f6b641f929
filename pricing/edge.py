"""The order of the service's middlewares, so that every answer leaves in the one error body and with CORS headers.

BentoML 1.4.39 builds each worker's middleware list (``_bentoml_impl.server.app.ServiceAppFactory.middlewares``)
in this order, outermost first: request metrics, tracing, access log, its traffic middlewares (``traffic.timeout``
-> 504, ``traffic.max_concurrency`` -> 429), the service's own (``add_asgi_middleware``), its CORS middleware,
then the routes. Two things follow:

- the traffic middlewares answer outside the service's middlewares, in BentoML's shape:
  ``{"error": "Not able to process the request in 60 seconds"}`` (504), ``{"error": "Too many requests"}`` (429);
- the service's middlewares answer outside CORS: their 401, 413 and 415 carry no ``Access-Control-Allow-Origin``,
  so a page on an allowed origin cannot read why it was refused.

``install(service)`` makes ``service.to_asgi()`` (what BentoML's worker, the Lambda adapter and the in-process
tests call) move, in the app it returns, the service's ``ErrorBodyMiddleware`` and BentoML's own CORS
middleware (same class, same options) in front of the traffic middlewares, after the access log and metrics,
which still see every request and status. ``arrange`` is that reordering. It relies on BentoML internals
(``Service.to_asgi`` returning a Starlette app whose middleware stack is not built yet, and the traffic
middlewares' classes), pinned with the ``bentoml`` version; it fails loudly if they move, and
``tests/integration/test_serve_edge.py`` reads the answers back from a real ``bentoml serve``.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from pricing.errors import ErrorBodyMiddleware


def timeout_message(timeout_s: float) -> str:
    """The 504's message: the request outlasted BentoML's traffic timeout and was cancelled."""
    return (
        f"no answer within the service's time limit of {timeout_s:g} s (BentoML's traffic.timeout); "
        "the request was cancelled"
    )


def overload_message(max_concurrency: int) -> str:
    """The 429's message: more requests in progress than BentoML's traffic.max_concurrency allows."""
    return (
        f"too many requests in progress: this worker takes {max_concurrency} at a time "
        "(BentoML's traffic.max_concurrency); retry later"
    )


def arrange(middlewares: list[Middleware]) -> list[Middleware]:
    """``middlewares`` (BentoML's list, outermost first) with ``ErrorBodyMiddleware`` (given messages for the traffic
    middlewares' 504 and 429) and then CORS moved just in front of the first traffic middleware."""
    from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware, TimeoutMiddleware

    def is_traffic(entry: Middleware) -> bool:
        return isinstance(entry.cls, type) and issubclass(entry.cls, TimeoutMiddleware | MaxConcurrencyMiddleware)

    traffic = [entry for entry in middlewares if is_traffic(entry)]
    bodies = [entry for entry in middlewares if entry.cls is ErrorBodyMiddleware]
    if not traffic or len(bodies) != 1:
        found = [getattr(entry.cls, "__name__", repr(entry.cls)) for entry in middlewares]
        raise RuntimeError(
            "expected BentoML's traffic middlewares and one ErrorBodyMiddleware among the service's middlewares, "
            f"found {found}; see pricing.edge"
        )
    messages: dict[int, str] = {}
    for entry in traffic:
        if "timeout" in entry.kwargs:
            messages[504] = timeout_message(entry.kwargs["timeout"])
        if "max_concurrency" in entry.kwargs:
            messages[429] = overload_message(entry.kwargs["max_concurrency"])
    body = bodies[0]
    front = [Middleware(ErrorBodyMiddleware, *body.args, **{**body.kwargs, "messages": messages})]
    front += [entry for entry in middlewares if entry.cls is CORSMiddleware]
    rest = [entry for entry in middlewares if entry.cls is not CORSMiddleware and entry is not body]
    at = rest.index(traffic[0])
    return [*rest[:at], *front, *rest[at:]]


def install(service: Any) -> None:
    """Make ``service.to_asgi()`` return its app with the middlewares in ``arrange``'s order."""
    from _bentoml_sdk import Service

    original = Service.to_asgi
    if getattr(original, "arranges", None) is not None:
        original.arranges.add(id(service))
        return

    @functools.wraps(original)
    def to_asgi(self: Any, *args: Any, **kwargs: Any) -> Any:
        app = original(self, *args, **kwargs)
        if id(self) in to_asgi.arranges:  # type: ignore[attr-defined]
            if getattr(app, "middleware_stack", True) is not None:
                raise RuntimeError("BentoML's app built its middleware stack before pricing.edge could order it")
            app.user_middleware[:] = arrange(app.user_middleware)
        return app

    to_asgi.arranges = {id(service)}  # type: ignore[attr-defined]
    Service.to_asgi = to_asgi
