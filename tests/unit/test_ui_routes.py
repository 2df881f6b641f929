"""The web page's files as the service serves them: the whitelist, media types, security headers, ETags,
and that the page needs nothing from another host."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from pricing.ui import ASSETS, PAGE, STATIC, page_bytes, router

PAGE_BUDGET_BYTES = 64 * 1024  # "stays small": everything /ui loads, uncompressed


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_the_page_is_html_with_a_strict_content_security_policy(client) -> None:
    response = client.get("/ui", params={"stockcode": "85123A"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<title>Price curve" in response.text


@pytest.mark.parametrize(("name", "media_type"), [("app.js", "text/javascript"), ("chart.js", "text/javascript"),
                                                  ("app.css", "text/css")])  # fmt: skip
def test_assets_are_served_with_their_media_type(client, name, media_type) -> None:
    response = client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == (STATIC / name).read_bytes()


@pytest.mark.parametrize("path", ["/ui/nope.js", "/ui/index.html", "/ui/browser.py", "/ui/..%2F__init__.py"])
def test_nothing_outside_the_whitelist_is_served(client, path) -> None:
    assert client.get(path).status_code == 404


def test_unchanged_files_are_revalidated_with_their_etag(client) -> None:
    first = client.get("/ui/app.js")
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/ui/app.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/ui/app.js", headers={"if-none-match": '"stale"'}).status_code == 200


def test_a_trailing_slash_redirects_to_the_page_keeping_the_query(client) -> None:
    response = client.get("/ui/", params={"stockcode": "85123A", "bins": 20}, follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "../ui?stockcode=85123A&bins=20"


def test_every_file_the_page_refers_to_is_served_and_every_served_file_is_used() -> None:
    html = (STATIC / PAGE).read_text()
    linked = set(re.findall(r'(?:src|href)="ui/([^"]+)"', html))
    imported = set(re.findall(r'from "\./([^"]+)"', (STATIC / "app.js").read_text()))
    assert linked | imported | {PAGE} == set(ASSETS)
    assert {p.name for p in STATIC.iterdir()} == set(ASSETS), "a file in static/ that is not served, or the reverse"


def test_the_page_loads_nothing_from_another_host_and_stays_small() -> None:
    for name in ASSETS:
        text = (STATIC / name).read_text()
        # The SVG namespace is a name, not a request.
        urls = [u for u in re.findall(r"https?://[^\s\"'`)]+", text) if u != "http://www.w3.org/2000/svg"]
        assert urls == [], f"{name} refers to another host: {urls}"
        assert "@import" not in text and "@font-face" not in text
    assert page_bytes() < PAGE_BUDGET_BYTES


def test_every_form_control_has_a_label() -> None:
    html = (STATIC / PAGE).read_text()
    controls = set(re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html))
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert controls and controls <= labelled
