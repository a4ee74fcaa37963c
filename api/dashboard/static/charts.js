// The page's three charts, drawn as SVG by this module (docs/dashboard.md says why not a
// library): a KPI trend per bucket, downtime bars by reason, a state strip per machine.

import { h, svg } from "./dom.js";
import { clock, day, duration, pct } from "./format.js";

export const SERIES = [
  ["oee", "OEE"],
  ["availability", "Availability"],
  ["performance", "Performance"],
  ["quality", "Quality"],
];

// Charts are drawn in their own units and scaled to the box: narrower units on a phone keep the
// text readable and the chart tall enough.
const narrow = () => window.innerWidth < 700;
const PAD = { left: 44, right: 12, top: 10, bottom: 34 };
const DAY_MS = 86_400_000;

function scaleX(start, end, left, width) {
  const t0 = Date.parse(start);
  const span = Date.parse(end) - t0 || 1;
  return (iso) => left + ((Date.parse(iso) - t0) / span) * width;
}

function bucketName(p, bucket, tz) {
  const from = `${day(p.start, tz)} ${clock(p.start, tz)}`;
  return bucket === "shift" && p.label ? `${p.label} ${from}` : `${from}–${clock(p.end, tz)}`;
}

// Every bucket's OEE, A, P, Q as lines; each bucket a link (`hrefOf(point)`) to itself as the
// window, so a shift or an hour opens in one click.
export function trendChart(series, tz, hrefOf) {
  const W = narrow() ? 480 : 960;
  const H = 260;
  const points = series.points;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const values = points.flatMap((p) => SERIES.map(([k]) => p.kpis[k]).filter((v) => v !== null));
  const top = Math.max(1, ...values);
  const x = scaleX(series.window.start, series.window.end, PAD.left, plotW);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const mid = (p) => (x(p.start) + x(p.end)) / 2;
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart trend",
    role: "img",
    "aria-label": `OEE, availability, performance and quality per ${series.bucket}`,
  });
  for (const g of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(g), y2: y(g), class: "grid" }),
      svg("text", { x: PAD.left - 6, y: y(g) + 4, class: "axis", "text-anchor": "end" }, `${g * 100}%`),
    );
  }
  const every = Math.max(1, Math.ceil(points.length / (narrow() ? 6 : 12)));
  points.forEach((p, i) => {
    const link = svg("a", { href: hrefOf(p), class: "bucket" },
      svg("title", {}, [bucketName(p, series.bucket, tz), ...SERIES.map(([k, n]) => `${n} ${pct(p.kpis[k])}`)].join("\n")),
      svg("rect", { x: x(p.start), y: PAD.top, width: Math.max(1, x(p.end) - x(p.start)), height: plotH }));
    root.append(link);
    if (i % every === 0) {
      const text = series.bucket === "shift" && p.label ? p.label : clock(p.start, tz);
      root.append(svg("text", { x: mid(p), y: H - PAD.bottom + 16, class: "axis", "text-anchor": "middle" }, text));
      if (i === 0 || day(p.start, tz) !== day(points[i - every].start, tz)) {
        root.append(svg("text", { x: mid(p), y: H - 4, class: "axis", "text-anchor": "middle" }, day(p.start, tz)));
      }
    }
  });
  for (const [key] of SERIES) {
    let d = "";
    let pen = false;
    for (const p of points) {
      const v = p.kpis[key];
      if (v === null) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${mid(p).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    root.append(svg("path", { d, class: `line ${key}` }));
    for (const p of points) {
      const v = p.kpis[key];
      if (v !== null) root.append(svg("circle", { cx: mid(p), cy: y(v), r: 3, class: `dot ${key}` }));
    }
  }
  const legend = h("ul", { class: "legend" },
    SERIES.map(([k, n]) => h("li", { class: k }, n)));
  return h("div", { class: "trend-wrap" }, root, legend);
}

export const CLASS_NAMES = {
  running: "running",
  down: "down",
  idle: "idle",
  setup: "setup",
  planned_stop: "planned stop",
  unknown: "no data",
};

function intervalText(iv, tz) {
  const what = iv.short_stop ? `short stop (${CLASS_NAMES[iv.class]})` : CLASS_NAMES[iv.class];
  const why = iv.reason_text ?? (iv.reason_code !== null ? `reason ${iv.reason_code}` : null);
  const length = duration((Date.parse(iv.end) - Date.parse(iv.start)) / 1000);
  return `${what}${why ? ` · ${why}` : ""} · ${clock(iv.start, tz)}–${clock(iv.end, tz)} (${length})`;
}

// A strip's cells from a machine's timeline: each interval in time order, exact.
export function intervalCells(intervals, tz) {
  return intervals.map((iv) => ({
    start: iv.start, end: iv.end,
    cls: `${iv.class}${iv.short_stop ? " short" : ""}`, title: intervalText(iv, tz),
  }));
}

// Each time class's seconds in a KPI series bucket (KPI.md: run time holds the short stops).
const SHARES = [
  ["running", (k) => k.run_time_s - k.short_stop_s],
  ["short_stop", (k) => k.short_stop_s],
  ["down", (k) => k.down_time_s],
  ["idle", (k) => k.idle_time_s],
  ["setup", (k) => k.setup_time_s],
  ["planned_stop", (k) => k.planned_stop_s],
  ["unknown", (k) => k.unknown_time_s],
];

// A strip's cells from a machine's KPI series, for windows too long to draw every interval:
// each bucket split by the share of each class in it (in class order, not time order); what
// is left of a bucket is time outside the calendar.
export function shareCells(points, bucket, tz) {
  return points.flatMap((p) => {
    const t0 = Date.parse(p.start);
    const length = (Date.parse(p.end) - t0) / 1000 || 1;
    const parts = SHARES.map(([cls, of]) => [cls, Math.max(0, of(p.kpis))]).filter(([, s]) => s > 0);
    const title = `${bucketName(p, bucket, tz)}: ${parts.map(([c, s]) => `${CLASS_NAMES[c]} ${duration(s)}`).join(", ")}`;
    let at = t0;
    return parts.map(([cls, seconds]) => {
      const from = at;
      at += (seconds / length) * (Date.parse(p.end) - t0);
      return { start: new Date(from).toISOString(), end: new Date(at).toISOString(), cls, title };
    });
  });
}

// One strip per machine over the window, coloured by time class, and one time axis. Each strip
// is stretched to the row's width (no text inside the SVG, so nothing is distorted).
export function stateStrips(rows, window, tz) {
  const x = scaleX(window.start, window.end, 0, 100);
  const strips = rows.map((row) => {
    const strip = svg("svg", {
      viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "strip",
      role: "img", "aria-label": `${row.name}: state timeline`,
    });
    for (const c of row.cells) {
      strip.append(svg("rect", {
        x: x(c.start), y: 0, width: Math.max(0.05, x(c.end) - x(c.start)), height: 10,
        class: `state ${c.cls}`,
      }, svg("title", {}, c.title)));
    }
    return h("div", { class: "strip-row" }, h("span", { class: "strip-name" }, row.name), strip);
  });
  const ticks = narrow() ? 3 : 6;
  const t0 = Date.parse(window.start);
  const span = Date.parse(window.end) - t0;
  const axis = h("div", { class: "strip-axis", "aria-hidden": "true" },
    Array.from({ length: ticks + 1 }, (_, k) => {
      const iso = new Date(t0 + (span * k) / ticks).toISOString();
      return h("span", { style: `left:${(100 * k) / ticks}%` }, span > 2 * DAY_MS ? day(iso, tz) : clock(iso, tz));
    }));
  const legend = h("ul", { class: "legend states" },
    Object.entries(CLASS_NAMES).map(([k, n]) => h("li", { class: k }, n)));
  return h("div", { class: "strips" }, strips, h("div", { class: "strip-row" }, h("span", { class: "strip-name" }), axis), legend);
}

// Downtime by reason, longest first (the API's order), with bars scaled to the longest.
export function paretoTable(rows) {
  const longest = Math.max(0, ...rows.map((r) => r.duration_s));
  const reason = (r) => r.reason_text ?? (r.reason_code !== null ? `reason ${r.reason_code}` : "no reason");
  const klass = (r) => (r.class === "short_stop" ? "short stops" : CLASS_NAMES[r.class]);
  return h("div", { class: "scroll" }, h("table", { class: "pareto" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Reason"), h("th", { scope: "col" }, "Class"),
      h("th", { scope: "col", class: "num" }, "Duration"), h("th", { scope: "col", class: "num" }, "Stops"),
      h("th", { scope: "col", class: "num" }, "Share"), h("th", { scope: "col", class: "bar-col" }, ""))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("td", {}, reason(r)),
      h("td", {}, h("span", { class: `chip ${r.class}` }, klass(r))),
      h("td", { class: "num" }, duration(r.duration_s)),
      h("td", { class: "num" }, String(r.events)),
      h("td", { class: "num" }, pct(r.share)),
      h("td", { class: "bar-col", "aria-hidden": "true" },
        h("span", { class: `bar ${r.class}`, style: `width:${longest ? (100 * r.duration_s) / longest : 0}%` })))))));
}
