// The price-curve chart, drawn as SVG by hand: no library, nothing loaded from elsewhere.
//
// drawChart(figure, spec) fills `figure` (an element) with an SVG chart and a tooltip. spec:
//   period       "week" or "day": the period quantities and sales are per
//   paidRatio    revenue / (posted price x units) of the price list: turns the quantity band into sales
//   observed     [lowest, highest] observed posted price, shaded
//   latest       the latest observed posted price, marked
//   series       [{label, curve, optimal, interval?}]: one curve per model or product; the first one's points
//                are drawn as markers, its quantity on a second axis when `quantity` is true
//   quantity     draw the first series' predicted quantity against the right-hand axis
//   band         "context": the first series' min-max over context periods; "models": the series' spread
// Pointer and keyboard (arrow keys, Home, End) move a cursor over the first series' grid prices; the tooltip
// says price, quantity and sales there.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 760;
const HEIGHT = 420;
const MARGIN = { top: 34, right: 74, bottom: 54, left: 78 };
export const COLOURS = ["#1d4f9c", "#9a4300", "#2d6a30", "#6a2c91", "#8a1c1c", "#00636b"];
const DASHES = ["", "7 4", "2 3", "10 3 2 3", "4 4", "1 2"];

const gbp = new Intl.NumberFormat("en-GB", { style: "currency", currency: "GBP" });
const units = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });
export const money = (value) => gbp.format(value);
export const quantity = (value) => units.format(value);

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, content, attrs = {}) {
  const node = el("text", { x, y, ...attrs }, parent);
  node.textContent = content;
  return node;
}

// Round tick values (1, 2 or 5 times a power of ten) covering [low, high].
export function ticks(low, high, count = 6) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    out.push(Number(value.toFixed(10)));
  }
  return out;
}

function linear([d0, d1], [r0, r1]) {
  const span = d1 - d0 || 1;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

function pathOf(points) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(2)},${y.toFixed(2)}`).join("");
}

function salesBand(series, spec) {
  const first = series[0].curve;
  if (spec.band === "models" && series.length > 1) {
    return first.map((point, i) => {
      const values = series.map((s) => s.curve[i].predicted_sales);
      return [point.unit_price, Math.min(...values), Math.max(...values)];
    });
  }
  return first.map((p) => [p.unit_price, p.unit_price * p.quantity_min * spec.paidRatio,
    p.unit_price * p.quantity_max * spec.paidRatio]);
}

export function drawChart(figure, spec) {
  figure.replaceChildren();
  const { series } = spec;
  const first = series[0].curve;
  const prices = first.map((p) => p.unit_price);
  const band = salesBand(series, spec);
  const salesTop = Math.max(...band.map((b) => b[2]), ...series.flatMap((s) => s.curve.map((p) => p.predicted_sales)));
  const quantityTop = Math.max(...first.map((p) => p.quantity));
  const x = linear([prices[0], prices[prices.length - 1]], [MARGIN.left, WIDTH - MARGIN.right]);
  const ySales = linear([0, salesTop * 1.08 || 1], [HEIGHT - MARGIN.bottom, MARGIN.top]);
  const yQuantity = linear([0, quantityTop * 1.08 || 1], [HEIGHT - MARGIN.bottom, MARGIN.top]);
  const plotTop = MARGIN.top;
  const plotBottom = HEIGHT - MARGIN.bottom;
  const inGrid = (price) => price >= prices[0] && price <= prices[prices.length - 1];

  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-hidden": "true", focusable: "false",
  }, figure);
  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  el("rect", { x: MARGIN.left, y: plotTop, width: WIDTH - MARGIN.left - MARGIN.right, height: plotBottom - plotTop },
    el("clipPath", { id: clipId }, el("defs", {}, svg)));

  // Observed price range, shaded behind everything.
  const [seenLow, seenHigh] = spec.observed;
  const shadeLow = Math.max(seenLow, prices[0]);
  const shadeHigh = Math.min(seenHigh, prices[prices.length - 1]);
  if (shadeHigh > shadeLow) {
    el("rect", { x: x(shadeLow), y: plotTop, width: x(shadeHigh) - x(shadeLow), height: plotBottom - plotTop,
      class: "observed" }, svg);
    text(svg, x(shadeLow) + 5, plotTop + 26, "observed prices", { class: "note" });
  }

  // Axes and grid.
  const axes = el("g", { class: "axes" }, svg);
  for (const value of ticks(0, salesTop * 1.08)) {
    const y = ySales(value);
    el("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y, y2: y, class: "grid" }, axes);
    text(axes, MARGIN.left - 8, y + 4, money(value).replace(/\.00$/, ""), { "text-anchor": "end" });
  }
  for (const value of ticks(prices[0], prices[prices.length - 1], 8)) {
    text(axes, x(value), plotBottom + 18, money(value), { "text-anchor": "middle" });
    el("line", { x1: x(value), x2: x(value), y1: plotBottom, y2: plotBottom + 5, class: "tick" }, axes);
  }
  el("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: plotBottom, y2: plotBottom, class: "axis" }, axes);
  text(axes, (MARGIN.left + WIDTH - MARGIN.right) / 2, HEIGHT - 10, "Unit price (posted, GBP)", {
    "text-anchor": "middle", class: "label" });
  text(axes, 0, 0, `Predicted sales (GBP per ${spec.period})`, {
    transform: `translate(16 ${(plotTop + plotBottom) / 2}) rotate(-90)`, "text-anchor": "middle", class: "label" });
  if (spec.quantity) {
    for (const value of ticks(0, quantityTop * 1.08)) {
      text(axes, WIDTH - MARGIN.right + 8, yQuantity(value) + 4, quantity(value), { class: "quantity-tick" });
    }
    text(axes, 0, 0, `Predicted quantity (units per ${spec.period})`, {
      transform: `translate(${WIDTH - 14} ${(plotTop + plotBottom) / 2}) rotate(90)`, "text-anchor": "middle",
      class: "label quantity-label" });
  }

  // The band, the curves and the first series' grid points.
  const plot = el("g", { "clip-path": `url(#${clipId})` }, svg);
  const upper = band.map(([p, , hi]) => [x(p), ySales(hi)]);
  const lower = band.map(([p, lo]) => [x(p), ySales(lo)]).reverse();
  el("path", { d: `${pathOf(upper)}L${pathOf(lower).slice(1)}Z`, class: `band band-${spec.band}` }, plot);
  if (spec.quantity) {
    el("path", { d: pathOf(first.map((p) => [x(p.unit_price), yQuantity(p.quantity)])), class: "quantity-line" }, plot);
  }
  series.forEach((s, i) => {
    const group = el("g", { class: "series", "data-label": s.label }, plot);
    el("path", { d: pathOf(s.curve.map((p) => [x(p.unit_price), ySales(p.predicted_sales)])), class: "sales-line",
      stroke: COLOURS[i % COLOURS.length], "stroke-dasharray": DASHES[i % DASHES.length] }, group);
  });
  const points = el("g", { class: "points" }, plot);
  first.forEach((p, i) => {
    el("circle", { cx: x(p.unit_price), cy: ySales(p.predicted_sales), r: 2.4, class: "point", "data-index": i,
      fill: COLOURS[0] }, points);
  });

  // Latest observed price, each series' optimum and the 80% interval of the first one's.
  if (Number.isFinite(spec.latest) && inGrid(spec.latest)) {
    el("line", { x1: x(spec.latest), x2: x(spec.latest), y1: plotTop, y2: plotBottom, class: "latest" }, svg);
    text(svg, x(spec.latest) + 4, plotBottom - 8, `latest ${money(spec.latest)}`, { class: "note latest-label" });
  }
  series.forEach((s, i) => {
    const at = x(s.optimal.unit_price);
    const colour = i === 0 && series.length === 1 ? "#8a1c1c" : COLOURS[i % COLOURS.length];
    el("line", { x1: at, x2: at, y1: plotTop, y2: plotBottom, class: "optimum", stroke: colour,
      "stroke-dasharray": DASHES[i % DASHES.length] }, svg);
    el("circle", { cx: at, cy: ySales(s.optimal.predicted_sales), r: 5, class: "optimum-dot", fill: colour }, svg);
    if (series.length === 1) {
      const anchor = at > (MARGIN.left + WIDTH - MARGIN.right) / 2 ? "end" : "start";
      text(svg, at + (anchor === "end" ? -6 : 6), plotTop - 10, `optimum ${money(s.optimal.unit_price)}`, {
        class: "optimum-label", "text-anchor": anchor });
    }
  });
  const interval = series[0].interval;
  if (interval && series.length === 1) {
    const [low, high] = interval.map((v) => x(Math.min(Math.max(v, prices[0]), prices[prices.length - 1])));
    const y = plotTop + 9;
    el("path", { d: `M${low},${y - 4}V${y + 4}M${low},${y}H${high}M${high},${y - 4}V${y + 4}`, class: "interval" }, svg);
  }

  // Cursor and tooltip: pointer and keyboard.
  const cursor = el("line", { y1: plotTop, y2: plotBottom, class: "cursor", visibility: "hidden" }, svg);
  const marker = el("circle", { r: 5, class: "cursor-dot", visibility: "hidden" }, svg);
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.setAttribute("role", "status");
  tip.hidden = true;
  figure.appendChild(tip);
  let current = -1;

  function show(index) {
    current = Math.max(0, Math.min(first.length - 1, index));
    const p = first[current];
    const cx = x(p.unit_price);
    cursor.setAttribute("x1", cx);
    cursor.setAttribute("x2", cx);
    cursor.setAttribute("visibility", "visible");
    marker.setAttribute("cx", cx);
    marker.setAttribute("cy", ySales(p.predicted_sales));
    marker.setAttribute("visibility", "visible");
    const lines = [`${money(p.unit_price)}`];
    if (series.length === 1) {
      lines.push(`${quantity(p.quantity)} units per ${spec.period}`,
        `${money(p.predicted_sales)} sales per ${spec.period}`);
    } else {
      for (const s of series) lines.push(`${s.label}: ${money(s.curve[current].predicted_sales)}`);
    }
    tip.replaceChildren(...lines.map((line, i) => {
      const row = document.createElement(i ? "span" : "strong");
      row.textContent = line;
      return row;
    }));
    tip.hidden = false;
    const box = svg.getBoundingClientRect();
    const scale = box.width / WIDTH;
    const left = cx * scale;
    tip.style.left = `${Math.min(left + 12, box.width - tip.offsetWidth - 4)}px`;
    tip.style.top = `${ySales(p.predicted_sales) * scale - tip.offsetHeight - 10 > 0
      ? ySales(p.predicted_sales) * scale - tip.offsetHeight - 10 : 4}px`;
  }

  function hide() {
    cursor.setAttribute("visibility", "hidden");
    marker.setAttribute("visibility", "hidden");
    tip.hidden = true;
  }

  function nearest(clientX) {
    const box = svg.getBoundingClientRect();
    const price = prices[0] + ((clientX - box.left) / box.width * WIDTH - MARGIN.left)
      / (WIDTH - MARGIN.left - MARGIN.right) * (prices[prices.length - 1] - prices[0]);
    let best = 0;
    prices.forEach((value, i) => { if (Math.abs(value - price) < Math.abs(prices[best] - price)) best = i; });
    return best;
  }

  svg.addEventListener("pointermove", (event) => show(nearest(event.clientX)));
  svg.addEventListener("pointerleave", hide);
  figure.addEventListener("keydown", (event) => {
    const optimum = first.findIndex((p) => p.unit_price === series[0].optimal.unit_price);
    const moves = {
      ArrowRight: current + 1, ArrowLeft: current < 0 ? optimum : current - 1, Home: 0, End: first.length - 1,
      PageUp: current + Math.ceil(first.length / 10), PageDown: current - Math.ceil(first.length / 10),
    };
    if (event.key === "Escape") { hide(); return; }
    if (!(event.key in moves)) return;
    event.preventDefault();
    show(current < 0 && event.key === "ArrowRight" ? optimum : moves[event.key]);
  });
  figure.addEventListener("blur", hide);
}
