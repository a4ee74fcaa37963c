// Pieces both pages show: a figure tile that links to its API call, a machine's state now, and
// the "source" link under a chart or table.

import { h } from "./dom.js";
import { CLASS_NAMES } from "./charts.js";
import { when } from "./format.js";

// A labelled figure; its value is a link to the API answer it was read from.
export function tile(label, value, href, big = false) {
  return h("div", { class: big ? "tile big" : "tile", role: "group", "aria-label": label },
    h("span", { class: "label", "aria-hidden": "true" }, label),
    h("a", { class: "value", href, target: "_blank", title: `from GET /${href}` }, value));
}

export function source(href) {
  return h("p", { class: "source" }, "source: ", h("a", { href, target: "_blank" }, `GET /${href}`));
}

// A machine's state now: class colour and name, and a stale mark when its source is silent
// (no state sample for longer than max_gap_s) or it never sent one.
export function stateCells(state, now, tz) {
  if (!state || state.since === null) {
    return [h("td", {}, h("span", { class: "chip unknown" }, "no data"), " ", h("span", { class: "stale" }, "stale")), h("td", {}, "—"), h("td", {}, "—")];
  }
  const name = state.short_stop ? `${CLASS_NAMES[state.class]} (short stop)` : CLASS_NAMES[state.class];
  const stale = state.stale
    ? h("span", { class: "stale", title: `last state sample ${when(state.sample_time, now, tz)}` }, "stale")
    : null;
  const reason = state.reason_text ?? (state.reason_code !== null ? `reason ${state.reason_code}` : "—");
  return [
    h("td", {}, h("span", { class: `chip ${state.class}` }, name), stale ? " " : null, stale),
    h("td", {}, when(state.since, now, tz)),
    h("td", {}, reason),
  ];
}

export function machineName(m) {
  return m.name ?? m.id;
}
