"""The web page in a real headless Chromium (Debian's, driven by Playwright) against a real `bentoml serve`.

A missing Chromium is installed with apt when running as root; when it cannot be had the tests fail with
the reason, never skip. Screenshots go to reports/ui/.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pricing.ui.browser import BrowserUnavailableError, headless_chromium
from tests.support import ROOT, bentoml_serve

SCREENSHOTS = ROOT / "reports" / "ui"
KEY = "page-s3cret"
WAIT_MS = 60_000  # a generous bound for one sweep on a busy 2-core machine; no assertion is about time
CSV_HEADER = ["stockcode", "segment", "model", "model_version", "role", "unit_price", "quantity", "quantity_min",
              "quantity_max", "predicted_sales", "period", "currency"]  # fmt: skip

# Contrast of every visible text against the background it sits on (WCAG 2 AA: 4.5:1, 3:1 for large text).
CONTRAST_JS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const linear = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const background = (el) => { for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor); if (c.length === 3 || c[3] === 1) return c.slice(0, 3); }
    return [255, 255, 255]; };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || !box.width || el.closest("[hidden], dialog:not([open]), button:disabled, select:disabled")) continue;
    const style = getComputedStyle(el);
    const colour = rgb(el instanceof SVGElement ? style.fill : style.color).slice(0, 3);
    const [a, b] = [lum(colour), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize); const bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) low.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  return low;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        with headless_chromium() as chromium:
            yield chromium
    except BrowserUnavailableError as exc:
        pytest.fail(f"no headless Chromium for the browser test: {exc}")


@pytest.fixture(scope="module")
def served(smoke_run, tmp_path_factory) -> Iterator[str]:
    env = {"PRICING_RUN_ID": smoke_run.record["run_id"]}
    with bentoml_serve(env, tmp_path_factory.mktemp("ui-serve") / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def keyed(smoke_run, tmp_path_factory) -> Iterator[str]:
    env = {"PRICING_RUN_ID": smoke_run.record["run_id"], "PRICING_API_KEY": KEY}
    with bentoml_serve(env, tmp_path_factory.mktemp("ui-keyed") / "serve.log") as url:
        yield url


@pytest.fixture
def open_page(browser) -> Iterator[Any]:
    """Opens pages in fresh browser contexts (each a new user) and fails the test on any script error."""
    contexts, errors = [], []

    def open_one(url: str) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        # 4xx answers are part of the tests (unknown product, the key); anything else in the console is a bug,
        # CSP violations included.
        page.on("console", lambda m: m.type == "error" and "Failed to load resource" not in m.text
                and errors.append(m.text))  # fmt: skip
        if url:
            page.goto(url)
        return page

    yield open_one
    for context in contexts:
        context.close()
    assert errors == [], f"errors in the page's scripts: {errors}"


def sweep(url: str, **request: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/price_sweep", json=request, headers={"x-api-key": KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def money(value: float) -> str:
    return f"£{value:,.2f}"


def points(page) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        "#results circle.point", "cs => cs.map(c => [c.getAttribute('cx'), c.getAttribute('cy')])"
    )


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=path, full_page=True)
    return path


def test_search_pick_sweep_and_read_the_curve_with_the_keyboard(open_page, served) -> None:
    from playwright.sync_api import expect

    page = open_page(f"{served}/ui")
    product = page.locator("#product")
    product.press_sequentially("heart", delay=20)
    options = page.locator("#product-options [role=option]")
    expect(options.first).to_be_visible()
    assert all("HEART" in text.upper() for text in options.all_inner_texts())
    product.press("ArrowDown")
    expect(product).to_have_attribute("aria-activedescendant", "product-options-0")
    code = options.first.get_attribute("data-stockcode")
    product.press("Enter")
    expect(product).to_have_value(code)
    expect(page.locator("#product-chosen")).to_contain_text("HEART")

    page.locator("#bins").fill("40")
    with page.expect_response(lambda r: r.url.endswith("/price_sweep")) as answered:
        page.locator("#bins").press("Enter")  # submits the form
    answer = answered.value.json()
    expect(page.locator("#results circle.point")).to_have_count(40)
    assert len(answer["curve"]) == 40

    # What the page shows is the API's answer.
    direct = sweep(served, stockcode=code, bins=40)
    optimal = page.locator(".facts .optimal-price")
    assert (
        float(optimal.get_attribute("data-value")) == direct["optimal"]["unit_price"] == answer["optimal"]["unit_price"]
    )
    expect(optimal).to_have_text(money(direct["optimal"]["unit_price"]))
    expect(page.locator(".facts .optimal-sales")).to_have_text(
        f"{money(direct['optimal']['predicted_sales'])} per week"
    )
    expect(page.locator(".facts .latest-price")).to_have_text(money(direct["price_list"]["latest_price"]))
    expect(page.locator(".facts .model-name")).to_have_text(f"{direct['model']['name']} · {direct['model']['version']}")
    expect(page.locator(".facts .model-role")).to_have_text("primary")
    expect(page.locator(".facts .cached")).to_have_text("no")
    assert re.search(rf"[?&]stockcode={code}(&|$)", page.url) and "bins=40" in page.url

    # The chart's text summary, referenced by the chart.
    plot = page.locator("#results .plot")
    summary = page.locator(f"#{plot.get_attribute('aria-describedby')}")
    expect(summary).to_contain_text(f"are highest at {money(direct['optimal']['unit_price'])}")
    expect(summary).to_contain_text("per week")

    # Hover and keyboard read the points: price, quantity and sales.
    box = page.locator("#results svg.chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tooltip = page.locator("#results .tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("units per week")
    plot.focus()
    plot.press("Home")
    first = direct["curve"][0]
    expect(tooltip).to_contain_text(money(first["unit_price"]))
    expect(tooltip).to_contain_text(f"{money(first['predicted_sales'])} sales per week")
    plot.press("ArrowRight")
    expect(tooltip).to_contain_text(money(direct["curve"][1]["unit_price"]))

    plot.press("Escape")
    page.evaluate("document.activeElement.blur()")
    page.mouse.move(0, 0)
    shot = screenshot(page, "price-curve.png")
    assert shot.stat().st_size > 10_000


def test_a_shared_url_reproduces_the_curve_and_history_goes_back(open_page, served) -> None:
    from playwright.sync_api import expect

    page = open_page(f"{served}/ui")
    page.locator("#product").fill("85123A")
    page.locator("#price_min").fill("2")
    page.locator("#price_max").fill("5")
    page.locator("#bins").fill("25")
    page.locator("#run").click()
    expect(page.locator("#results circle.point")).to_have_count(25)
    shared = page.url
    drawn = points(page)
    shown = page.locator(".facts .optimal-price").get_attribute("data-value")

    other = open_page(shared)  # another user, another browser context
    expect(other.locator("#results circle.point")).to_have_count(25)
    assert points(other) == drawn
    assert other.locator(".facts .optimal-price").get_attribute("data-value") == shown
    for field, value in (("#product", "85123A"), ("#price_min", "2"), ("#price_max", "5"), ("#bins", "25")):
        expect(other.locator(field)).to_have_value(value)
    api = sweep(served, stockcode="85123A", price_min=2, price_max=5, bins=25)
    assert float(shown) == api["optimal"]["unit_price"]

    page.locator("#bins").fill("12")
    page.locator("#run").click()
    expect(page.locator("#results circle.point")).to_have_count(12)
    page.go_back()
    expect(page.locator("#results circle.point")).to_have_count(25)
    expect(page.locator("#bins")).to_have_value("25")


def test_api_errors_are_shown_in_words_next_to_their_field(open_page, served) -> None:
    from playwright.sync_api import expect

    unknown = httpx.post(f"{served}/price_sweep", json={"stockcode": "NOPE123"}, timeout=30)
    assert unknown.status_code == 404
    page = open_page(f"{served}/ui")
    page.locator("#product").press_sequentially("nope123", delay=20)
    expect(page.locator("#product-options")).to_contain_text("No product matches")
    page.locator("#product").press("Enter")
    expect(page.locator("#product-error")).to_have_text(unknown.json()["error"]["message"])
    expect(page.locator("#product")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#results .empty")).to_contain_text("No curve")
    expect(page.locator("#results svg")).to_have_count(0)
    screenshot(page, "unknown-product.png")

    page.locator("#product").fill("85123A")
    page.locator("#price_min").fill("5")
    page.locator("#price_max").fill("2")
    page.locator("#run").click()
    expect(page.locator("#price_max-error")).to_contain_text("must be above price_min (5.0), got 2.0")
    expect(page.locator("#product-error")).to_have_text("")
    expect(page.locator("#results svg")).to_have_count(0)

    page.locator("#price_min").fill("")
    page.locator("#price_max").fill("")
    page.locator("#bins").fill("5000")
    page.locator("#run").click()
    expect(page.locator("#bins-error")).to_contain_text("bins")
    expect(page.locator("#results svg")).to_have_count(0)

    page.locator("#bins").fill("10")
    page.locator("#run").click()
    expect(page.locator("#results circle.point")).to_have_count(10)
    expect(page.locator("#bins-error")).to_have_text("")


def test_compare_every_model_of_the_serving_order_on_one_chart(open_page, served, smoke_run) -> None:
    from playwright.sync_api import expect

    names = [tag.split(":")[0] for tag in smoke_run.record["serving_order"]]
    page = open_page(f"{served}/ui?stockcode=85123A&compare=models&bins=20")
    rows = page.locator(".models-table tbody tr")
    expect(rows).to_have_count(len(names))
    assert page.locator("#results g.series").evaluate_all("gs => gs.map(g => g.dataset.label)") == names
    expect(page.locator("#results circle.point")).to_have_count(20)
    for name in names:
        api = sweep(served, stockcode="85123A", bins=20, model=name)
        shown = page.locator(f'.models-table tr[data-model="{name}"] .optimal-price').get_attribute("data-value")
        assert float(shown) == api["optimal"]["unit_price"]
    expect(page.locator("#model")).to_be_disabled()
    screenshot(page, "compare-models.png")


def test_two_products_side_by_side(open_page, served) -> None:
    from playwright.sync_api import expect

    page = open_page(f"{served}/ui?stockcode=85123A&vs=22423&bins=15")
    panels = page.locator("#results .panel")
    expect(panels).to_have_count(2)
    assert panels.evaluate_all("ps => ps.map(p => p.dataset.stockcode)") == ["85123A", "22423"]
    for panel in panels.all():
        expect(panel.locator("circle.point")).to_have_count(15)
    expect(page.locator("#compare")).to_have_value("product")
    expect(page.locator("#vs")).to_have_value("22423")


def test_the_curve_downloads_as_csv(open_page, served) -> None:
    from playwright.sync_api import expect

    page = open_page(f"{served}/ui?stockcode=85123A&bins=30&segment=retail")
    expect(page.locator("#results circle.point")).to_have_count(30)
    with page.expect_download() as download:
        page.locator("#results .download").click()
    assert download.value.suggested_filename == "price-curve-85123A-retail.csv"
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_HEADER and len(rows) == 31
    api = sweep(served, stockcode="85123A", bins=30, segment="retail")
    assert [float(r[5]) for r in rows[1:]] == [p["unit_price"] for p in api["curve"]]
    assert [float(r[9]) for r in rows[1:]] == [p["predicted_sales"] for p in api["curve"]]
    assert {(r[0], r[1], r[2], r[10], r[11]) for r in rows[1:]} == {
        ("85123A", "retail", api["model"]["name"], "week", "GBP")
    }


def test_labels_keyboard_focus_contrast_and_the_chart_summary(open_page, served) -> None:
    from playwright.sync_api import expect

    page = open_page(f"{served}/ui?stockcode=85123A&bins=20")
    expect(page.locator("#results circle.point")).to_have_count(20)
    unlabelled = page.eval_on_selector_all(
        "input, select", "els => els.filter(e => !e.labels.length && e.type !== 'hidden').map(e => e.id)"
    )
    assert unlabelled == []
    assert page.evaluate(CONTRAST_JS) == []
    assert page.locator("#results svg.chart").get_attribute("aria-hidden") == "true", "the summary speaks for it"
    expect(page.locator("#results figcaption")).to_contain_text("are highest at")
    page.locator("body").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "product", "the first field is reached by keyboard"


def test_with_an_api_key_the_page_asks_once_and_keeps_it_for_the_tab_only(open_page, keyed) -> None:
    from playwright.sync_api import expect

    page = open_page("")
    page.add_init_script(
        "window.dialogsShown = 0; const show = HTMLDialogElement.prototype.showModal;"
        "HTMLDialogElement.prototype.showModal = function () { window.dialogsShown++; return show.call(this); };"
    )
    sent = []
    page.on("request", lambda r: "/ui" not in r.url and sent.append(r.headers.get("x-api-key")))
    assert httpx.get(f"{keyed}/ui", timeout=10).status_code == 200, "the page itself loads without the key"
    page.goto(f"{keyed}/ui?stockcode=85123A&bins=10")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.locator("#api-key").fill("wrong")
    page.locator("#key-use").click()
    expect(page.locator("#key-message")).to_contain_text("refused")
    page.locator("#api-key").fill(KEY)
    page.locator("#key-use").click()
    expect(page.locator("#results circle.point")).to_have_count(10)
    expect(dialog).to_be_hidden()

    page.locator("#bins").fill("12")
    page.locator("#run").click()
    expect(page.locator("#results circle.point")).to_have_count(12)
    assert page.evaluate("window.dialogsShown") == 2, "asked once, and once more for the refused key"
    page.reload()
    expect(page.locator("#results circle.point")).to_have_count(12)
    expect(dialog).to_be_hidden()
    assert page.evaluate("window.dialogsShown") == 0, "no question after a reload in the same tab"
    assert sent[-1] == KEY and None not in sent[sent.index(KEY) :], "every call after the answer carries the key"
    assert page.evaluate("sessionStorage.getItem('pricing.apiKey')") == KEY
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []

    fresh = open_page(f"{keyed}/ui?stockcode=85123A&bins=10")  # a new tab of a new session: asked again
    expect(fresh.locator("#key-dialog")).to_be_visible()
    fresh.keyboard.press("Escape")
    expect(fresh.locator("#form-error")).to_contain_text("API key")
    expect(fresh.locator("#results svg")).to_have_count(0)
