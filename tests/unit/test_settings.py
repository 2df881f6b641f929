"""Service configuration from PRICING_* environment variables."""

from __future__ import annotations

import pytest

from pricing.settings import Settings, SettingsError, load_settings


def test_defaults_need_no_environment() -> None:
    assert load_settings({}) == Settings()
    assert Settings().redis_url is None and Settings().api_key is None and Settings().cors_origins == ()


def test_every_variable_is_read() -> None:
    settings = load_settings({
        "PRICING_PORT": "8080", "PRICING_WORKERS": "2", "PRICING_CACHE_TTL": "60",
        "PRICING_REDIS_URL": "redis://cache:6379/1", "PRICING_REDIS_CLUSTER": "true", "PRICING_API_KEY": "k",
        "PRICING_CORS_ORIGINS": "https://a.example, https://b.example", "PRICING_MODEL_TIMEOUT_S": "1.5",
        "PRICING_RUN_ID": "20261121T000000-abcdef",
    })  # fmt: skip
    assert settings == Settings(
        port=8080, workers=2, cache_ttl_seconds=60, redis_url="redis://cache:6379/1", redis_cluster=True,
        api_key="k", cors_origins=("https://a.example", "https://b.example"), model_timeout_s=1.5,
        run_id="20261121T000000-abcdef",
    )  # fmt: skip


def test_redis_url_is_honoured_and_the_prefixed_name_wins() -> None:
    assert load_settings({"REDIS_URL": "redis://plain"}).redis_url == "redis://plain"
    both = {"REDIS_URL": "redis://plain", "PRICING_REDIS_URL": "redis://ours"}
    assert load_settings(both).redis_url == "redis://ours"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PRICING_PORT": "http"}, "PRICING_PORT"),
        ({"PRICING_WORKERS": "0"}, "PRICING_WORKERS"),
        ({"PRICING_CACHE_TTL": "-5"}, "PRICING_CACHE_TTL"),
        ({"PRICING_MODEL_TIMEOUT_S": "inf"}, "PRICING_MODEL_TIMEOUT_S"),
        ({"PRICING_MODEL_TIMEOUT_S": "soon"}, "PRICING_MODEL_TIMEOUT_S"),
        ({"PRICING_REDIS_CLUSTER": "maybe"}, "PRICING_REDIS_CLUSTER"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env)
