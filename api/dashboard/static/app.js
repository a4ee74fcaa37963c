// The page's shell: a hash router (#/, #/line/<id>, #/machine/<id>, deep-linkable), a refresh
// every 10 s (or ?refresh=<seconds> in the page's URL) without reloading the page, and the key
// prompt when the API answers 401.

import { ApiError, KeyNeeded, forgetKey, storeKey, storedKey } from "./api.js";
import { detailPage } from "./detail.js";
import { h } from "./dom.js";
import { overviewPage } from "./overview.js";

const REFRESH_MS = 1000 * Math.max(1, Number(new URLSearchParams(location.search).get("refresh")) || 10);

const main = document.getElementById("main");
const status = document.getElementById("status");
const crumbs = document.getElementById("crumbs");
const forget = document.getElementById("forget-key");

function route() {
  const [path, query = ""] = (location.hash.slice(1) || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts.length === 0) return { page: "overview", params };
  if (parts.length === 2 && (parts[0] === "line" || parts[0] === "machine")) {
    return { page: parts[0], id: parts[1], params };
  }
  return { page: "unknown", params };
}

async function render(r) {
  if (r.page === "overview") return overviewPage();
  if (r.page === "line" || r.page === "machine") return detailPage(r.page, r.id, r.params);
  throw new ApiError(404, `no such page: ${location.hash}`, null);
}

function keyForm(exc) {
  const input = h("input", { type: "password", name: "key", autocomplete: "current-password", required: true });
  const why = exc.refused
    ? `The API refused the key: ${exc.message}. Enter a configured key.`
    : "This API needs a key (settings.api.api_keys). Enter one; this browser keeps it.";
  return h("form", {
    class: "key-form", "aria-labelledby": "key-title",
    onsubmit: (ev) => {
      ev.preventDefault();
      storeKey(input.value.trim());
      show();
    },
  },
  h("h1", { id: "key-title" }, "API key needed"),
  h("p", { role: "alert" }, why),
  h("label", {}, "API key ", input),
  h("button", { type: "submit" }, "Use key"));
}

function errorView(exc) {
  return h("div", { class: "error", role: "alert" },
    h("h1", {}, "Cannot show this page"),
    h("p", {}, exc.message),
    exc.url ? h("p", {}, "request: ", h("a", { href: exc.url, target: "_blank" }, `GET /${exc.url}`)) : null,
    h("p", {}, h("a", { href: "#/" }, "Plant overview")));
}

function showCrumbs(items) {
  const all = [["Plant", items.length ? "#/" : null], ...items];
  crumbs.replaceChildren(h("ol", {}, all.map(([text, href]) =>
    h("li", {}, href ? h("a", { href }, text) : h("span", { "aria-current": "page" }, text)))));
}

let generation = 0;
let timer = null;
let shown = null; // the route whose data the page shows, for a refresh that fails

async function show() {
  clearTimeout(timer);
  const g = ++generation;
  const r = route();
  const key = location.hash;
  forget.hidden = !storedKey();
  try {
    const result = await render(r);
    if (g !== generation) return;
    main.replaceChildren(result.view);
    showCrumbs(result.crumbs);
    document.title = `${result.title} · shopfloor`;
    status.textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;
    status.className = "";
    shown = key;
  } catch (exc) {
    if (g !== generation) return;
    if (exc instanceof KeyNeeded) {
      main.replaceChildren(keyForm(exc));
      main.querySelector("input").focus();
      status.textContent = "";
      shown = null;
      return; // no refresh until a key is given
    }
    if (shown === key) {
      status.textContent = `update failed: ${exc.message}`;
      status.className = "failed";
    } else {
      main.replaceChildren(errorView(exc));
      showCrumbs([]);
      status.textContent = "";
    }
    if (!(exc instanceof ApiError)) console.error(exc); // a bug of the page: show it
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function refresh() {
  const typing = main.contains(document.activeElement) && document.activeElement.matches("input, select");
  if (typing) timer = setTimeout(refresh, REFRESH_MS);
  else show();
}

forget.addEventListener("click", () => {
  forgetKey();
  show();
});
window.addEventListener("hashchange", show);
show();
