// A line's page (#/line/<id>) and a machine's (#/machine/<id>): the window picker, KPIs and
// counts, the trend, the downtime Pareto, the state strips and (for a line) its machines.
// Hash parameters: w = a named window of GET /lines/{line}/windows or `custom` (with start and
// end, UTC ISO), by = the trend's bucket (1h, shift, day).

import { apiUrl, getJson } from "./api.js";
import { intervalCells, paretoTable, shareCells, stateStrips, trendChart } from "./charts.js";
import { h } from "./dom.js";
import { count, duration, fromLocalInput, pct, rate, span, toLocalInput } from "./format.js";
import { machineName, source, stateCells, tile } from "./widgets.js";

const BUCKETS = [["1h", "by hour"], ["shift", "by shift"], ["day", "by day"]];

function hash(kind, id, params) {
  const q = new URLSearchParams(params).toString();
  return `#/${kind}/${encodeURIComponent(id)}${q ? `?${q}` : ""}`;
}

// The window the hash asks for, from the line's named windows (or its own start and end).
function chosenWindow(params, named) {
  const key = params.get("w") ?? "current_shift";
  if (key === "custom" && params.get("start") && params.get("end")) {
    return { key, label: "custom", start: params.get("start"), end: params.get("end"), shift: null };
  }
  return named.windows.find((w) => w.key === key) ?? named.windows[0];
}

const EXACT_STRIP_HOURS = 48;
const BUCKET_NAMES = { "1h": "hour", shift: "shift", day: "day" };

function hoursOf(win) {
  return (Date.parse(win.end) - Date.parse(win.start)) / 3.6e6;
}

function defaultBucket(win, hasCalendar) {
  if (hoursOf(win) <= EXACT_STRIP_HOURS) return "1h";
  return hasCalendar ? "shift" : "day";
}

function windowPicker(kind, id, named, win, by, tz) {
  const keep = by ? { by } : {};
  const links = named.windows.map((w) => h("li", {},
    h("a", { href: hash(kind, id, { w: w.key, ...keep }), "aria-current": w.key === win.key ? "page" : null }, w.label)));
  const from = h("input", { type: "datetime-local", name: "start", value: toLocalInput(win.start, tz), required: true });
  const to = h("input", { type: "datetime-local", name: "end", value: toLocalInput(win.end, tz), required: true });
  const problem = h("span", { class: "problem", role: "alert" });
  const form = h("form", {
    class: "custom", "aria-label": "Custom window",
    onsubmit: (ev) => {
      ev.preventDefault();
      const start = fromLocalInput(from.value, tz);
      const end = fromLocalInput(to.value, tz);
      if (!start || !end || start >= end) {
        problem.textContent = "the start must be before the end";
        return;
      }
      location.hash = hash(kind, id, { w: "custom", start, end, ...keep });
    },
  },
  h("label", {}, "From ", from), h("label", {}, "to ", to), h("button", { type: "submit" }, "Show"),
  h("span", { class: "tz" }, `(${tz})`), problem);
  return h("div", { class: "picker" },
    h("nav", { "aria-label": "Window" }, h("ul", {}, links, h("li", {}, h("a", {
      href: hash(kind, id, { w: "custom", start: win.start, end: win.end, ...keep }),
      "aria-current": win.key === "custom" ? "page" : null,
    }, "custom")))), form);
}

function bucketPicker(kind, id, params, bucket, hasCalendar) {
  const options = BUCKETS.filter(([b]) => b !== "shift" || hasCalendar);
  return h("nav", { class: "buckets", "aria-label": "Trend bucket" }, h("ul", {}, options.map(([b, label]) => {
    const next = new URLSearchParams(params);
    next.set("by", b);
    return h("li", {}, h("a", { href: hash(kind, id, next), "aria-current": b === bucket ? "page" : null }, label));
  })));
}

function kpiTiles(k, url) {
  return [
    h("div", { class: "tiles" },
      tile("OEE", pct(k.oee), url, true),
      tile("Availability", pct(k.availability), url),
      tile("Performance", pct(k.performance), url),
      tile("Quality", pct(k.quality), url)),
    h("div", { class: "tiles small" },
      tile("Good", count(k.good_count), url),
      tile("Rejects", count(k.reject_count), url),
      tile("Total", count(k.total_count), url),
      tile("Throughput /h", rate(k.throughput_per_hour), url),
      tile("Planned busy time", duration(k.planned_busy_time_s), url),
      tile("Run time", duration(k.run_time_s), url),
      tile("Down time", duration(k.down_time_s), url),
      tile("Failures", String(k.failure_events), url),
      tile("MTBF", duration(k.mtbf_s), url),
      tile("MTTR", duration(k.mttr_s), url),
      k.unknown_time_s ? tile("No data", duration(k.unknown_time_s), url) : null),
    k.flags.length ? h("p", { class: "flags" }, "flags: ", k.flags.join(", ")) : null,
  ];
}

function machineTable(line, kpis, kpisUrl, now, tz, params) {
  const cell = (text) => h("td", { class: "num" }, h("a", { href: kpisUrl, target: "_blank" }, text));
  return h("div", { class: "scroll" }, h("table", { class: "machines" },
    h("thead", {}, h("tr", {}, ["Machine", "State", "Since", "Reason", "OEE", "A", "P", "Q", "Good", "Rejects", "Down time"]
      .map((c, i) => h("th", { scope: "col", class: i >= 4 ? "num" : null }, c)))),
    h("tbody", {}, line.machines.map((m) => {
      const k = kpis.machines[m.id];
      return h("tr", {},
        h("th", { scope: "row" }, h("a", { href: hash("machine", m.id, params) }, machineName(m))),
        stateCells(m.state, now, tz),
        cell(pct(k.oee)), cell(pct(k.availability)), cell(pct(k.performance)), cell(pct(k.quality)),
        cell(count(k.good_count)), cell(count(k.reject_count)), cell(duration(k.down_time_s)));
    }))));
}

function section(title, ...body) {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), body);
}

export async function detailPage(kind, id, params) {
  const machine = kind === "machine" ? await getJson(apiUrl(`/machines/${id}`)) : null;
  const lineId = machine ? machine.line : id;
  const [line, named] = await Promise.all([
    getJson(apiUrl(`/lines/${lineId}`)),
    getJson(apiUrl(`/lines/${lineId}/windows`)),
  ]);
  const tz = named.timezone;
  const hasCalendar = line.calendar !== null;
  const win = chosenWindow(params, named);
  const bucket = params.get("by") ?? defaultBucket(win, hasCalendar);
  const range = { start: win.start, end: win.end };
  const base = `/${kind}s/${id}`;
  const urls = {
    kpis: apiUrl(`${base}/kpis`, range),
    series: apiUrl(`${base}/kpis/series`, { ...range, bucket }),
    downtime: apiUrl(`${base}/downtime`, range),
  };
  const members = machine ? [machine] : line.machines;
  // Up to 48 h every state interval is drawn; beyond, a month holds more changes than a strip
  // has pixels, so each machine's strip shows its states' shares per trend bucket (rollups).
  const exact = hoursOf(win) <= EXACT_STRIP_HOURS;
  const stripUrls = members.map((m) => (exact
    ? apiUrl(`/machines/${m.id}/timeline`, range)
    : apiUrl(`/machines/${m.id}/kpis/series`, { ...range, bucket })));
  const [kpis, series, downtime, ...strips] = await Promise.all([
    getJson(urls.kpis), getJson(urls.series), getJson(urls.downtime), ...stripUrls.map(getJson),
  ]);
  const cells = (answer) => (exact ? intervalCells(answer.intervals, tz) : shareCells(answer.points, bucket, tz));
  const keep = { w: win.key, ...(win.key === "custom" ? range : {}), ...(params.get("by") ? { by: bucket } : {}) };
  const drill = (p) => hash(kind, id, { w: "custom", start: p.start, end: p.end, ...(params.get("by") ? { by: bucket } : {}) });
  const name = machine ? machineName(machine) : (line.name ?? line.id);
  const lineName = line.name ?? line.id;
  const shift = win.shift ? `${win.shift} · ` : "";
  const stateNow = machine
    ? h("table", { class: "machines now" }, h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Machine"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Since"), h("th", { scope: "col" }, "Reason"))),
      h("tbody", {}, h("tr", {}, h("th", { scope: "row" }, name), stateCells(machine.state, named.now, tz))))
    : null;
  const view = h("section", { class: "detail" },
    h("h1", {}, name, machine ? h("span", { class: "sub" }, ` on ${lineName}`) : null),
    windowPicker(kind, id, named, win, params.get("by"), tz),
    h("p", { class: "window" }, `${shift}${span(win.start, win.end, tz)} (${tz})`),
    stateNow,
    kpiTiles(kpis.kpis, urls.kpis),
    h("div", { class: "panels" },
      section("Trend", bucketPicker(kind, id, new URLSearchParams(keep), bucket, hasCalendar),
        trendChart(series, tz, drill), source(urls.series)),
      section("Downtime by reason",
        downtime.rows.length ? paretoTable(downtime.rows) : h("p", { class: "empty" }, "No stop time in this window."),
        source(urls.downtime))),
    section("State timeline",
      exact ? null : h("p", { class: "note" }, `Share of each state per ${BUCKET_NAMES[bucket]}; pick a window of 48 h or less for every stop.`),
      stateStrips(members.map((m, i) => ({ name: machineName(m), cells: cells(strips[i]) })), range, tz),
      stripUrls.map(source)),
    machine ? null : section("Machines", machineTable(line, kpis, urls.kpis, named.now, tz, new URLSearchParams(keep))),
  );
  const crumbs = machine
    ? [[lineName, hash("line", lineId, keep)], [name, null]]
    : [[name, null]];
  return { crumbs, title: name, view };
}
