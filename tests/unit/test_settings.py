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


@pytest.mark.parametrize(
    "value",
    ["https://shop.example", "http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:3000", "*",
     " https://a.example ,https://b-2.example:8443 "],
)  # fmt: skip
def test_cors_origins_are_accepted_as_browsers_send_them(value: str) -> None:
    assert load_settings({"PRICING_CORS_ORIGINS": value}).cors_origins == tuple(o.strip() for o in value.split(","))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("shop.example", "no path"),
        ("https://shop.example/", "trailing slash"),
        ("https://shop.example/app", "no path"),
        ("https://user@shop.example", "user name"),
        ("ftp://shop.example", "http or https"),
        ("https://Shop.example", "lower case"),
        ("https://shop.example:443", "default port 443"),
        ("https://shop.example:99999", "1-65535"),
        ("https://shop_example.com", "host name"),
        ("http://[::g]:3000", "IPv6"),
        ("https://a.example,*", "cannot be combined"),
    ],
)
def test_a_bad_cors_origin_names_the_variable_and_the_problem(value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match="PRICING_CORS_ORIGINS") as error:
        load_settings({"PRICING_CORS_ORIGINS": value})
    assert problem in str(error.value)
