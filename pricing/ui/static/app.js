// The price-curve page: the form, the URL that keeps it, the API calls and the result panels.
//
// The page talks to the service's own API only (GET /products, GET /model, POST /price_sweep), with
// relative URLs. With an API key configured, the first refused call asks for the key once; it lives in
// sessionStorage (this tab, until it closes) and goes out as X-API-Key.

import { COLOURS, drawChart, money, quantity } from "./chart.js";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "pricing.apiKey";
const FORM_FIELDS = ["stockcode", "segment", "price_min", "price_max", "bins", "model", "compare", "vs"];
const ERROR_FIELDS = ["price_min", "price_max", "bins", "segment", "model", "stockcode", "context"];
const percent = new Intl.NumberFormat("en-GB", { style: "percent", maximumFractionDigits: 1, signDisplay: "always" });
const signedMoney = (value) => (value > 0 ? "+" : value < 0 ? "−" : "") + money(Math.abs(value));

// ---------------------------------------------------------------------------------------------------
// API calls, with the key when the service asks for one

class ApiError extends Error {
  constructor(status, message, field = null) {
    super(message);
    this.status = status;
    this.field = ERROR_FIELDS.includes(field) ? field
      : status === 404 ? "stockcode" : ERROR_FIELDS.find((name) => message.includes(name)) || "form";
  }
}

// The field an error answer names: the service's {"error": {"status", "field", "message"}}.
function fieldOf(body) {
  try {
    return JSON.parse(body)?.error?.field ?? null;
  } catch {
    return null;
  }
}

// The words of an error answer: the service's {"error": {"message"}}; older shapes (BentoML's {"error"} with
// pydantic's "detail" items, FastAPI's {"detail"}) from a proxy or an older service.
function messageOf(status, body) {
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body.trim() || `the service answered ${status}`;
  }
  const parts = (Array.isArray(parsed) ? parsed : [parsed]).flatMap((item) => {
    if (Array.isArray(item?.detail)) {
      return item.detail.map((d) => {
        const where = (d.loc || []).filter((part) => part !== "body").join(".");
        const words = String(d.msg).replace(/^Value error, /, "");
        return where ? `${where}: ${words}` : words;
      });
    }
    const words = item?.error?.message ?? item?.detail ?? item?.error ?? item?.message;
    return typeof words === "string" ? [words] : [];
  });
  return parts.join("; ") || `the service answered ${status}`;
}

let pendingKey = null;

function askForKey(message) {
  if (!pendingKey) {
    pendingKey = new Promise((resolve, reject) => {
      const dialog = $("key-dialog");
      $("key-message").textContent = message;
      $("api-key").value = "";
      dialog.returnValue = "";
      dialog.addEventListener("close", () => {
        pendingKey = null;
        const key = $("api-key").value;
        $("api-key").value = "";
        if (dialog.returnValue === "use" && key) {
          sessionStorage.setItem(KEY_STORE, key);
          $("key-button").hidden = false;
          resolve();
        } else {
          reject(new ApiError(401, "This service needs an API key (X-API-Key); none was given."));
        }
      }, { once: true });
      dialog.showModal();
    });
  }
  return pendingKey;
}

async function api(path, body) {
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORE);
    const headers = { accept: "application/json" };
    if (key) headers["X-API-Key"] = key;
    if (body) headers["content-type"] = "application/json";
    const response = await fetch(path, body ? { method: "POST", headers, body: JSON.stringify(body) } : { headers });
    if (response.status === 401) {
      if (key !== sessionStorage.getItem(KEY_STORE)) continue; // another call got a new key meanwhile
      await askForKey(key ? "The service refused that key. Enter the right one." :
        "This service needs an API key. It is kept for this browser tab only.");
      continue;
    }
    const text = await response.text();
    if (!response.ok) throw new ApiError(response.status, messageOf(response.status, text), fieldOf(text));
    return JSON.parse(text);
  }
}

const products = new Map(); // stock code -> product, from every search answered
let servingOrder = null;

async function loadServingOrder() {
  if (!servingOrder) {
    servingOrder = api("model").then((body) => [
      ...body.models.map((m) => ({ name: m.name, role: m.role, family: m.family, version: m.version })),
      ...body.loading.map((tag) => ({ name: tag.split(":")[0], role: "loading", family: "", version: "" })),
    ]).catch((error) => { servingOrder = null; throw error; });
  }
  return servingOrder;
}

const descriptions = new Map(); // stock code -> promise of its product (undefined when not found)

// A product's description for titles: from an earlier search, else one /products call per code (a product
// the search cannot find just has no description; its sweep says what is wrong).
function describeProduct(code) {
  if (products.has(code)) return Promise.resolve(products.get(code));
  if (!descriptions.has(code)) {
    descriptions.set(code, api(`products?q=${encodeURIComponent(code)}&limit=20`).then((page) => {
      page.products.forEach((p) => products.set(p.stockcode, p));
      return products.get(code);
    }, () => { descriptions.delete(code); return undefined; }));
  }
  return descriptions.get(code);
}

// ---------------------------------------------------------------------------------------------------
// Product search: an ARIA 1.2 combobox with a listbox popup

class ProductPicker {
  constructor(input, list, chosen) {
    Object.assign(this, { input, list, chosen, options: [], active: -1, timer: 0, asked: "" });
    input.addEventListener("input", () => {
      this.chosen.textContent = "";
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(), 150);
    });
    input.addEventListener("keydown", (event) => this.key(event));
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus in the input
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.pick(Number(option.dataset.index));
    });
  }

  async search() {
    const query = this.input.value.trim();
    this.asked = query;
    let page;
    try {
      page = await api(`products?q=${encodeURIComponent(query)}&limit=12`);
    } catch (error) {
      showError(this.input.name, `Product search failed: ${error.message}`);
      return;
    }
    if (query !== this.asked) return; // a later search is under way
    page.products.forEach((p) => products.set(p.stockcode, p));
    this.render(page);
  }

  render(page) {
    this.options = page.products;
    this.active = -1;
    this.input.removeAttribute("aria-activedescendant");
    this.list.replaceChildren(...this.options.map((p, i) => {
      const item = document.createElement("li");
      item.id = `${this.list.id}-${i}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.dataset.index = i;
      item.dataset.stockcode = p.stockcode;
      const code = document.createElement("strong");
      code.textContent = p.stockcode;
      const detail = document.createElement("span");
      detail.textContent = `${p.description || "no description"} · ${p.main_segment} ${money(p.usual_price)}`;
      item.append(code, " ", detail);
      return item;
    }));
    if (!this.options.length) {
      const none = document.createElement("li");
      none.className = "none";
      none.textContent = `No product matches “${this.input.value.trim()}”.`;
      this.list.append(none);
    } else if (page.total > this.options.length) {
      const more = document.createElement("li");
      more.className = "none";
      more.textContent = `${page.total - this.options.length} more: type more of the code or description.`;
      this.list.append(more);
    }
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }

  key(event) {
    const open = !this.list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) { this.search(); return; }
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.highlight((this.active + step + this.options.length) % Math.max(this.options.length, 1));
    } else if (event.key === "Enter" && open && this.active >= 0) {
      event.preventDefault();
      this.pick(this.active);
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      this.close();
    } else if (event.key === "Enter") {
      this.close(); // and the form submits what was typed
    }
  }

  highlight(index) {
    if (!this.options.length) return;
    this.active = index;
    [...this.list.querySelectorAll("[role=option]")].forEach((item, i) => {
      item.setAttribute("aria-selected", String(i === index));
      if (i === index) item.scrollIntoView({ block: "nearest" });
    });
    this.input.setAttribute("aria-activedescendant", `${this.list.id}-${index}`);
  }

  pick(index) {
    const product = this.options[index];
    this.input.value = product.stockcode;
    this.describe(product);
    this.close();
    clearError(this.input.name);
  }

  describe(product) {
    this.chosen.textContent = product
      ? `${product.description || "no description"} · main list ${product.main_segment}, usual price ${money(product.usual_price)}`
      : "";
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }
}

// ---------------------------------------------------------------------------------------------------
// Form state <-> URL

function readForm() {
  const state = {};
  for (const name of FORM_FIELDS) state[name] = $(name === "stockcode" ? "product" : name).value.trim();
  state.stockcode = state.stockcode.toUpperCase();
  state.vs = state.vs.toUpperCase();
  return state;
}

function writeForm(state) {
  for (const name of FORM_FIELDS) {
    const input = $(name === "stockcode" ? "product" : name);
    if (name === "model" && state.model && ![...input.options].some((o) => o.value === state.model)) {
      input.add(new Option(state.model, state.model));
    }
    input.value = state[name] ?? (name === "bins" ? "100" : "");
  }
  $("vs-field").hidden = state.compare !== "product";
  $("model").disabled = state.compare === "models";
}

function stateFromUrl() {
  const query = new URLSearchParams(location.search);
  const state = {};
  for (const name of FORM_FIELDS) if (query.has(name)) state[name] = query.get(name).trim();
  if (state.vs && !state.compare) state.compare = "product";
  if (state.stockcode) state.stockcode = state.stockcode.toUpperCase();
  return state;
}

function urlOf(state) {
  const query = new URLSearchParams();
  for (const name of FORM_FIELDS) {
    if (!state[name] || (name === "vs" && state.compare !== "product")) continue;
    if (name === "model" && state.compare === "models") continue;
    query.set(name, state[name]);
  }
  return `${location.pathname}?${query}`;
}

// ---------------------------------------------------------------------------------------------------
// Errors next to their fields, and the busy state

function showError(field, message) {
  const slot = document.querySelector(`.field-error[data-field="${field}"]`) || $("form-error");
  slot.textContent = message;
  const input = $(field === "stockcode" ? "product" : field);
  if (input) input.setAttribute("aria-invalid", "true");
}

function clearError(field) {
  const slot = document.querySelector(`.field-error[data-field="${field}"]`);
  if (slot) slot.textContent = "";
  const input = $(field === "stockcode" ? "product" : field);
  if (input) input.removeAttribute("aria-invalid");
}

function clearErrors() {
  document.querySelectorAll(".field-error").forEach((slot) => { slot.textContent = ""; });
  document.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
}

function setBusy(busy, message = "") {
  $("results").setAttribute("aria-busy", String(busy));
  $("results").classList.toggle("loading", busy);
  $("run").disabled = busy;
  $("run").textContent = busy ? "Sweeping…" : "Sweep prices";
  $("status").textContent = message;
}

function showEmpty(message) {
  const note = document.createElement("p");
  note.className = "empty";
  note.textContent = message;
  $("results").replaceChildren(note);
}

// ---------------------------------------------------------------------------------------------------
// Running a sweep (or a comparison) and rendering it

let runNumber = 0;

function sweepRequest(state, stockcode) {
  const request = { stockcode };
  if (state.segment) request.segment = state.segment;
  for (const name of ["price_min", "price_max"]) if (state[name] !== "") request[name] = Number(state[name]);
  if (state.bins !== "") request.bins = Number(state.bins);
  if (state.model && state.compare !== "models") request.model = state.model;
  return request;
}

async function run(state, { push = true } = {}) {
  clearErrors();
  if (!state.stockcode) {
    showError("stockcode", "Type part of a stock code or description, then pick a product.");
    showEmpty("No curve yet: choose a product first.");
    return;
  }
  if (state.compare === "product" && !state.vs) {
    showError("vs", "Pick the second product to compare with.");
    showEmpty("No curve yet: choose the second product.");
    return;
  }
  const url = urlOf(state);
  if (url !== `${location.pathname}${location.search}`) history[push ? "pushState" : "replaceState"](state, "", url);
  const mine = ++runNumber;
  const request = sweepRequest(state, state.stockcode);
  setBusy(true, `Sweeping ${request.bins ?? 100} prices of ${state.stockcode}…`);
  try {
    let panels;
    if (state.compare === "models") {
      const models = await loadServingOrder();
      const answers = await Promise.all(models.map((m) => api("price_sweep", { ...request, model: m.name })
        .catch((error) => ({ error, model: m }))));
      const failed = answers.filter((a) => a.error);
      if (failed.length === answers.length) throw failed[0].error;
      panels = [{ kind: "models", answers: answers.filter((a) => !a.error), failed }];
    } else {
      const codes = state.compare === "product" ? [state.stockcode, state.vs] : [state.stockcode];
      const settled = await Promise.allSettled(codes.map((code) => api("price_sweep", { ...request, stockcode: code })));
      const errors = settled.map((s, i) => s.status === "rejected" && [s.reason, i]).filter(Boolean);
      if (errors.length) {
        for (const [error, i] of errors) {
          if (!(error instanceof ApiError)) throw error;
          showError(i === 1 && error.field === "stockcode" ? "vs" : error.field, error.message);
        }
        if (mine === runNumber) showEmpty("No curve: the service refused the request (see the message by the field).");
        return;
      }
      panels = settled.map((s) => ({ kind: "single", answer: s.value }));
    }
    if (mine !== runNumber) return; // a newer run has started
    render(panels);
    performance.mark("pricing:curve-drawn");
    setBusy(false, `Drawn: ${panels.length > 1 ? "two curves" : "the curve"} of ${request.bins ?? 100} prices.`);
  } catch (error) {
    if (mine !== runNumber) return;
    if (error instanceof ApiError) showError(error.field, error.message);
    else showError("form", `The request failed: ${error.message}`);
    showEmpty("No curve: the service refused the request (see the message by the field).");
  } finally {
    if (mine === runNumber && $("run").disabled) setBusy(false);
  }
}

function render(panels) {
  $("results").replaceChildren(...panels.map((panel, i) => (panel.kind === "models"
    ? modelsPanel(panel, i) : singlePanel(panel, i))));
  $("results").classList.toggle("side-by-side", panels.length > 1);
}

function make(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Predicted sales at `price` read off the curve (linear between grid prices); null outside the grid.
function salesAt(curve, price) {
  if (!(price >= curve[0].unit_price && price <= curve[curve.length - 1].unit_price)) return null;
  const i = Math.max(1, curve.findIndex((p) => p.unit_price >= price));
  const [a, b] = [curve[i - 1], curve[i]];
  const t = b.unit_price === a.unit_price ? 0 : (price - a.unit_price) / (b.unit_price - a.unit_price);
  return a.predicted_sales + t * (b.predicted_sales - a.predicted_sales);
}

// The panel's heading: the stock code now, with the description once known (the curve does not wait for it).
function heading(stockcode) {
  const node = make("h2", { text: stockcode });
  describeProduct(stockcode).then((product) => {
    if (product?.description) node.textContent = `${stockcode} · ${product.description}`;
  });
  return node;
}

function modelText(model) {
  return `${model.name} ${model.version} (${model.role})`;
}

function chartFigure(id, spec, summary, label) {
  const plot = make("div", { class: "plot", tabindex: "0", role: "group", "aria-roledescription": "chart",
    "aria-label": `${label}. Arrow keys, Home and End read the curve point by point.`, "aria-describedby": id });
  const caption = make("figcaption", { id, class: "summary", text: summary });
  const figure = make("figure", { class: "figure" }, plot, caption);
  drawChart(plot, spec);
  return figure;
}

function legend(items) {
  return make("ul", { class: "legend", "aria-label": "Legend" }, ...items.map(([kind, text, colour]) => {
    const swatch = make("span", { class: `swatch swatch-${kind}`, "aria-hidden": "true" });
    if (colour) swatch.style.borderColor = colour;
    return make("li", {}, swatch, text);
  }));
}

function fact(term, value, attrs = {}) {
  return [make("dt", { text: term }), make("dd", { ...attrs, text: value })];
}

function singlePanel({ answer }, index) {
  const { curve, optimal, price_list: list, period } = answer;
  const latest = list.latest_price;
  const atLatest = salesAt(curve, latest);
  const change = atLatest === null ? null : optimal.predicted_sales - atLatest;
  const [low, high] = optimal.interval;
  const edge = optimal.at_grid_edge ? ` It is at the ${optimal.at_grid_edge} edge of the swept range: the curve says to go further.` : "";
  const summary = `Predicted sales per ${period} of ${answer.stockcode} on the ${list.segment} list, over ${curve.length} `
    + `prices from ${money(curve[0].unit_price)} to ${money(curve[curve.length - 1].unit_price)}, are highest at `
    + `${money(optimal.unit_price)}: ${money(optimal.predicted_sales)} from ${quantity(optimal.quantity)} units `
    + `(80% interval of the best price ${money(low)} to ${money(high)}).${edge} `
    + (change === null ? `The latest price, ${money(latest)}, is outside the swept range. `
      : `At the latest price, ${money(latest)}, they are ${money(atLatest)}; moving to the optimum changes them by `
        + `${signedMoney(change)} per ${period} (${percent.format(change / atLatest)}). `)
    + `Prices observed: ${money(list.observed_price_range[0])} to ${money(list.observed_price_range[1])}. `
    + `Answered by ${modelText(answer.model)}.`;
  const figure = chartFigure(`summary-${index}`, {
    period, paidRatio: list.paid_ratio, observed: list.observed_price_range, latest, quantity: true, band: "context",
    series: [{ label: answer.model.name, curve, optimal, interval: optimal.interval }],
  }, summary, `Predicted sales and quantity of ${answer.stockcode} against unit price`);

  const facts = make("dl", { class: "facts" },
    ...fact("Optimal price", money(optimal.unit_price), { class: "optimal-price", "data-value": optimal.unit_price }),
    ...fact("80% interval", `${money(low)} – ${money(high)}`),
    ...fact(`Predicted quantity there`, `${quantity(optimal.quantity)} units per ${period}`, { class: "optimal-quantity" }),
    ...fact(`Predicted sales there`, `${money(optimal.predicted_sales)} per ${period}`, { class: "optimal-sales" }),
    ...fact("Latest observed price", money(latest), { class: "latest-price", "data-value": latest }),
    ...fact("Change at the optimum", change === null ? "latest price outside the swept range"
      : `${signedMoney(change)} per ${period} (${percent.format(change / atLatest)})`, { class: "change" }),
    ...fact("Price response", list.identifiable ? "the list's own (identifiable)"
      : "pooled over similar lists: its own prices varied too little", { class: "response" }),
    ...fact("Model", `${answer.model.name} · ${answer.model.version}`, { class: "model-name" }),
    ...fact("Role", answer.fallback_used ? `${answer.model.role}: the primary failed` : answer.model.role, {
      class: "model-role" }),
    ...fact("From the cache", answer.cached ? "yes" : "no", { class: "cached" }),
  );
  const warnings = [];
  if (optimal.at_grid_edge) warnings.push(`The optimum is at the ${optimal.at_grid_edge} edge of the range: widen it.`);
  if (answer.fallback_used) warnings.push(`Answered by a fallback model (${answer.model.role}).`);
  if (!list.identifiable) warnings.push("This list's response is pooled: treat the curve as a guide.");
  return make("article", { class: "panel", "data-stockcode": answer.stockcode },
    heading(answer.stockcode),
    make("p", { class: "sub", text: `${list.segment} list · GBP per ${period} · ${answer.context_rows} ${period}s re-priced` }),
    make("div", { class: "panel-body" },
      make("div", { class: "chart-column" }, figure, legend([
        ["sales", `Predicted sales per ${period}`, COLOURS[0]], ["band", "Range over the context periods"],
        ["quantity", `Predicted quantity per ${period} (right axis)`], ["observed", "Observed prices"],
        ["latest", "Latest price"], ["optimum", "Optimal price, with its 80% interval"],
      ])),
      make("div", { class: "facts-column" }, facts,
        ...warnings.map((w) => make("p", { class: "warning", text: w })),
        csvButton(answer.stockcode, [answer]))),
    curveTable([answer], false));
}

function modelsPanel({ answers, failed }, index) {
  const first = answers[0];
  const { price_list: list, period } = first;
  const optima = answers.map((a) => a.optimal.unit_price);
  const summary = `Predicted sales per ${period} of ${first.stockcode} on the ${list.segment} list from `
    + `${answers.length} models of the serving order. `
    + (Math.min(...optima) === Math.max(...optima) ? `Every model puts the best price at ${money(optima[0])}: `
      : `The best price ranges from ${money(Math.min(...optima))} to ${money(Math.max(...optima))}: `)
    + answers.map((a) => `${a.model.name} ${money(a.optimal.unit_price)} (${money(a.optimal.predicted_sales)})`).join(", ")
    + `. Latest price ${money(list.latest_price)}; observed ${money(list.observed_price_range[0])} to `
    + `${money(list.observed_price_range[1])}.`
    + (failed.length ? ` Not answered: ${failed.map((f) => `${f.model.name} (${f.error.message})`).join("; ")}.` : "");
  const figure = chartFigure(`summary-${index}`, {
    period, paidRatio: list.paid_ratio, observed: list.observed_price_range, latest: list.latest_price,
    quantity: false, band: "models",
    series: answers.map((a) => ({ label: a.model.name, curve: a.curve, optimal: a.optimal })),
  }, summary, `Predicted sales of ${first.stockcode} against unit price from each model`);
  const rows = answers.map((a, i) => {
    const atLatest = salesAt(a.curve, list.latest_price);
    const change = atLatest === null ? "—" : `${signedMoney(a.optimal.predicted_sales - atLatest)} `
      + `(${percent.format((a.optimal.predicted_sales - atLatest) / atLatest)})`;
    const swatch = make("span", { class: "swatch swatch-sales", "aria-hidden": "true" });
    swatch.style.borderColor = COLOURS[i % COLOURS.length];
    return make("tr", { "data-model": a.model.name },
      make("th", { scope: "row" }, swatch, `${a.model.name} (${a.model.role})`),
      make("td", { class: "optimal-price", "data-value": a.optimal.unit_price, text: money(a.optimal.unit_price) }),
      make("td", { text: money(a.optimal.predicted_sales) }), make("td", { text: change }));
  });
  const table = make("table", { class: "models-table" },
    make("caption", { text: `Each model's optimum (sales per ${period}; change from the latest price)` }),
    make("thead", {}, make("tr", {}, ...["Model", "Optimal price", "Sales there", "Change"].map((h) =>
      make("th", { scope: "col", text: h })))),
    make("tbody", {}, ...rows));
  return make("article", { class: "panel", "data-stockcode": first.stockcode },
    heading(first.stockcode),
    make("p", { class: "sub", text: `${list.segment} list · every model of the serving order · GBP per ${period}` }),
    make("div", { class: "panel-body stacked" },
      make("div", { class: "chart-column" }, figure, legend([
        ...answers.map((a, i) => ["sales", a.model.name, COLOURS[i % COLOURS.length]]),
        ["spread", "Spread of the models"], ["observed", "Observed prices"], ["latest", "Latest price"],
      ])),
      make("div", { class: "facts-column" }, table,
        ...failed.map((f) => make("p", { class: "warning", text: `${f.model.name}: ${f.error.message}` })),
        csvButton(`${first.stockcode}-models`, answers))),
    curveTable(answers, true));
}

function curveTable(answers, byModel) {
  const details = make("details", { class: "curve-table" }, make("summary", { text: "The curve as a table" }));
  details.addEventListener("toggle", () => {
    if (!details.open || details.querySelector("table")) return;
    const period = answers[0].period;
    const head = byModel ? ["Unit price", ...answers.map((a) => `${a.model.name} sales per ${period}`)]
      : ["Unit price", `Quantity per ${period}`, "Lowest", "Highest", `Sales per ${period}`];
    const body = answers[0].curve.map((p, i) => make("tr", {}, ...(byModel
      ? [money(p.unit_price), ...answers.map((a) => money(a.curve[i].predicted_sales))]
      : [money(p.unit_price), quantity(p.quantity), quantity(p.quantity_min), quantity(p.quantity_max),
        money(p.predicted_sales)]).map((v) => make("td", { text: v }))));
    details.append(make("table", {}, make("thead", {}, make("tr", {}, ...head.map((h) =>
      make("th", { scope: "col", text: h })))), make("tbody", {}, ...body)));
  });
  return details;
}

// ---------------------------------------------------------------------------------------------------
// CSV download

const CSV_COLUMNS = ["stockcode", "segment", "model", "model_version", "role", "unit_price", "quantity",
  "quantity_min", "quantity_max", "predicted_sales", "period", "currency"];

function curveCsv(answers) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const a of answers) {
    for (const p of a.curve) {
      lines.push([a.stockcode, a.price_list.segment, a.model.name, a.model.version, a.model.role, p.unit_price,
        p.quantity, p.quantity_min, p.quantity_max, p.predicted_sales, a.period, "GBP"]
        .map((v) => (/[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : v)).join(","));
    }
  }
  return `${lines.join("\n")}\n`;
}

function csvButton(name, answers) {
  const button = make("button", { type: "button", class: "secondary download", text: "Download the curve (CSV)" });
  button.addEventListener("click", () => {
    const link = make("a", { href: URL.createObjectURL(new Blob([curveCsv(answers)], { type: "text/csv" })),
      download: `price-curve-${name}-${answers[0].price_list.segment}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
  return button;
}

// ---------------------------------------------------------------------------------------------------
// Start

async function fillModels() {
  try {
    const models = await loadServingOrder();
    const select = $("model");
    const wanted = select.value;
    for (const m of models) {
      if (![...select.options].some((o) => o.value === m.name)) {
        select.add(new Option(`${m.name} (${m.role}${m.family ? `, ${m.family}` : ""})`, m.name));
      } else {
        [...select.options].find((o) => o.value === m.name).text = `${m.name} (${m.role}${m.family ? `, ${m.family}` : ""})`;
      }
    }
    select.value = wanted;
  } catch (error) {
    showError("model", `The models could not be listed: ${error.message}`);
  }
}

function start() {
  const picker = new ProductPicker($("product"), $("product-options"), $("product-chosen"));
  const vsPicker = new ProductPicker($("vs"), $("vs-options"), $("vs-chosen"));
  $("compare").addEventListener("change", () => {
    $("vs-field").hidden = $("compare").value !== "product";
    $("model").disabled = $("compare").value === "models";
  });
  $("sweep-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(readForm());
  });
  $("key-button").hidden = !sessionStorage.getItem(KEY_STORE);
  $("key-button").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    askForKey("Enter the API key to use from now on. It is kept for this browser tab only.").catch(() => {
      $("key-button").hidden = true;
    });
  });

  // The sweep goes first: on the service's one worker, the look-ups for the form would delay the curve.
  async function fromUrl(push) {
    const state = stateFromUrl();
    writeForm(state);
    if (!state.stockcode) return;
    await run(readForm(), { push });
    describeProduct(state.stockcode).then((p) => picker.describe(p));
    if (state.vs) describeProduct(state.vs).then((p) => vsPicker.describe(p));
  }
  window.addEventListener("popstate", () => fromUrl(false));
  fromUrl(false).finally(fillModels);
}

start();
