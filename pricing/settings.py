"""Service configuration: one frozen dataclass built from ``PRICING_*`` environment variables.

Nothing is read at import; ``load_settings()`` reads the environment when the service starts. Every
variable is documented in the README.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pricing.limits import DEFAULT_TIME_BUDGET_S, DEFAULT_TTL_SECONDS


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """What the service reads from its environment."""

    port: int = 3000
    workers: int = 1
    cache_ttl_seconds: int = DEFAULT_TTL_SECONDS
    redis_url: str | None = None
    redis_cluster: bool = False
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    model_timeout_s: float = DEFAULT_TIME_BUDGET_S
    run_id: str | None = None  # serve this training run (default: the latest in the model store)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    return Settings(
        port=_integer(env, "PRICING_PORT", 3000, minimum=1),
        workers=_integer(env, "PRICING_WORKERS", 1, minimum=1),
        cache_ttl_seconds=_integer(env, "PRICING_CACHE_TTL", DEFAULT_TTL_SECONDS, minimum=1),
        # REDIS_URL is the conventional name (Heroku, Render, many charts); PRICING_REDIS_URL wins.
        redis_url=env.get("PRICING_REDIS_URL") or env.get("REDIS_URL") or None,
        redis_cluster=_flag(env, "PRICING_REDIS_CLUSTER"),
        api_key=env.get("PRICING_API_KEY") or None,
        cors_origins=_origins(env, "PRICING_CORS_ORIGINS"),
        model_timeout_s=_number(env, "PRICING_MODEL_TIMEOUT_S", DEFAULT_TIME_BUDGET_S),
        run_id=env.get("PRICING_RUN_ID") or None,
    )


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name} must be a positive finite number, got {raw!r}")
    return value


_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_ORIGIN = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<host>\[[^\]/]*\]|[^/:?#@\[\]]+)(:(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated browser origins, each exactly as a browser sends it in its Origin header
    (``scheme://host[:port]``: lower case, no path, no default port), or ``*`` alone for any origin."""
    origins = tuple(o.strip() for o in env.get(name, "").split(",") if o.strip())
    if "*" in origins and len(origins) > 1:
        raise SettingsError(f"{name}: '*' (any origin) cannot be combined with named origins, got {origins!r}")
    for origin in origins:
        if origin != "*" and (problem := _origin_problem(origin)):
            raise SettingsError(f"{name}: {origin!r} is not an origin ({problem}); write it as scheme://host[:port]")
    return origins


def _origin_problem(origin: str) -> str | None:
    match = _ORIGIN.fullmatch(origin)
    if match is None:
        return "an origin has no path, query, user name or trailing slash"
    scheme, host, port = match["scheme"], match["host"], match["port"]
    if scheme not in _DEFAULT_PORTS:
        return "the scheme must be http or https"
    if origin != origin.lower():
        return "browsers send origins in lower case"
    if port is not None and not 0 < int(port) < 65536:
        return "the port must be 1-65535"
    if port is not None and int(port) == _DEFAULT_PORTS[scheme]:
        return f"browsers leave out the default port {port} of {scheme}"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "the IPv6 address is not valid"
        return None
    if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        return "the host name is not valid"
    return None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")
