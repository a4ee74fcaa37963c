// The plant overview (#/): every line's OEE, A, P, Q for its current shift and each machine's
// state now, from one call (GET /api/v1/overview).

import { apiUrl, getJson } from "./api.js";
import { h } from "./dom.js";
import { pct, span } from "./format.js";
import { machineName, source, stateCells, tile } from "./widgets.js";

function lineCard(line, now) {
  const tz = line.timezone;
  const k = line.kpis;
  const kpisUrl = apiUrl(`/lines/${line.id}/kpis`, { start: line.window.start, end: line.window.end });
  const heading = `line-${line.id}`;
  const shift = line.window.shift ? `${line.window.shift} · ` : "";
  return h("article", { class: "card", "aria-labelledby": heading },
    h("h2", { id: heading }, h("a", { href: `#/line/${line.id}` }, line.name ?? line.id)),
    h("p", { class: "window" }, `${shift}${span(line.window.start, line.window.end, tz)} (${tz})`),
    h("div", { class: "tiles" },
      tile("OEE", pct(k.oee), kpisUrl, true),
      tile("Availability", pct(k.availability), kpisUrl),
      tile("Performance", pct(k.performance), kpisUrl),
      tile("Quality", pct(k.quality), kpisUrl)),
    h("div", { class: "scroll" }, h("table", { class: "machines" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Machine"), h("th", { scope: "col" }, "State"),
        h("th", { scope: "col" }, "Since"), h("th", { scope: "col" }, "Reason"))),
      h("tbody", {}, line.machines.map((m) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/machine/${m.id}` }, machineName(m))),
        stateCells(m.state, now, tz)))))));
}

export async function overviewPage() {
  const url = apiUrl("/overview");
  const body = await getJson(url);
  return {
    crumbs: [],
    title: "Plant overview",
    view: h("section", { class: "overview" },
      h("h1", {}, "Plant overview"),
      h("div", { class: "cards" }, body.data.map((line) => lineCard(line, body.now))),
      source(url)),
  };
}
