"""Dashboard benchmark: time to a fully drawn line page and what the browser fetched for it.

    .venv/bin/python -m bench.dashboard [--days 30] [--machines 10] [--counter-step-s 5]
                                        [--analog-days 1] [--runs 5] [--window last_30d]
                                        [--database-url URL [--reuse]] [--keep]

Loads bench/kpi.py's plant (two lines, a three-shift Berlin calendar, states on change plus the
30 s heartbeat, reasons, counters every `--counter-step-s` s) and refreshes the rollups, then
starts the real API (bench/api.py's server subprocess: `api.server.serve` as `shopfloor serve`
runs it, the clock at the data's end) and opens line1's page for `--window` in Debian's
Chromium (Playwright, no browser download), `--runs` times, each in a fresh browser context
(nothing cached). Printed per case: time from navigation to the page fully drawn (KPI tiles,
trend, Pareto and every state strip in place, the status line saying `updated`), the requests
the page made and their bytes (headers and bodies, as the browser counts them), and the load
average. Side by side in the same run, the reference: the same API requests the page made,
sent at once by a bare client (bench/api.py's keep-alive connections), time until all answered:
what the page costs beyond its data. The API's result cache is off: the page's live windows end
at "now", so no two loads ask the same thing anyway. Then the same for the current shift (the
page's default window, whose strips draw every state interval).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Request, sync_playwright

from bench.api import Connection, Server, prepare
from bench.database import bench_database
from bench.kpi import load_average
from localenv.browser import CHROMIUM, CHROMIUM_ARGS

DRAWN = "#status:text-matches('^updated')"  # set once the whole view is in place
# The page's own clock (ms from navigation start) when the status line first says `updated`:
# free of the driver's polling and round trips.
MARK_DRAWN = """
new MutationObserver((_, observer) => {
  const status = document.getElementById("status");
  if (status && status.textContent.startsWith("updated")) {
    window.__drawnMs = performance.now();
    observer.disconnect();
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


class Load:
    """One page load: seconds to drawn, and every request with its bytes."""

    def __init__(self, seconds: float, requests: list[tuple[str, int]]) -> None:
        self.seconds = seconds
        self.requests = requests

    @property
    def api_targets(self) -> list[bytes]:
        out = []
        for url, _ in self.requests:
            parts = urlsplit(url)
            if parts.path.startswith("/api/"):
                out.append((parts.path + (f"?{parts.query}" if parts.query else "")).encode())
        return out


def load_page(browser: Browser, url: str) -> Load:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    done: list[tuple[str, int]] = []

    def finished(request: Request) -> None:
        sizes = request.sizes()
        done.append((request.url, sizes["responseHeadersSize"] + sizes["responseBodySize"]))

    page.on("requestfinished", finished)
    page.add_init_script(MARK_DRAWN)
    page.goto(url)
    page.wait_for_selector(DRAWN, timeout=120_000)
    seconds = page.evaluate("window.__drawnMs") / 1e3
    page.wait_for_load_state("networkidle")  # every request counted, favicon included
    context.close()
    return Load(seconds, done)


async def bare(port: int, targets: list[bytes]) -> float:
    """The page's API requests at once, one keep-alive connection each: seconds to all answers."""
    conns = [await Connection.open(port) for _ in targets]
    try:
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(c.get(t) for c, t in zip(conns, targets, strict=True)))
        seconds = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.close()
    bad = [(t, s) for t, (s, _) in zip(targets, answers, strict=True) if s != 200]
    if bad:
        raise RuntimeError(f"bare client: not 200: {bad}")
    return seconds


def in_thread(coro: Coroutine[Any, Any, float]) -> float:
    """`coro` on a loop of its own: Playwright's sync API keeps one running in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def row(label: str, values: list[float]) -> str:
    ms = sorted(1e3 * v for v in values)
    return (
        f"  {label:<40} median {statistics.median(ms):7.0f} ms   min {ms[0]:7.0f}   "
        f"max {ms[-1]:7.0f}   load average {load_average()}"
    )


def measure(url: str, args: argparse.Namespace) -> None:
    server = Server(url, args, "off")  # live windows differ per load: never a cache hit anyway
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for window in (args.window, "current_shift"):
                    page_url = f"{server.base}/#/line/line1?w={window}"
                    loads = [load_page(browser, page_url) for _ in range(args.runs)]
                    refs = [in_thread(bare(server.port, loads[0].api_targets)) for _ in loads]
                    report(window, args.runs, loads, refs)
            finally:
                browser.close()
    finally:
        server.stop()


def report(window: str, runs: int, loads: list[Load], refs: list[float]) -> None:
    first = loads[0]
    api = [(u, n) for u, n in first.requests if "/api/" in u]
    print(f"line1, window {window}, {runs} runs, first visits (fresh browser contexts)")
    print(row("page fully drawn (Chromium)", [ld.seconds for ld in loads]))
    print(row(f"reference: its {len(api)} API calls, bare client", refs))
    total = sum(n for _, n in first.requests)
    print(
        f"  requests {len(first.requests)} ({len(api)} API), {total / 1e3:.1f} kB in all, "
        f"API answers {sum(n for _, n in api) / 1e3:.1f} kB",
        flush=True,
    )
    for u, n in sorted(first.requests, key=lambda r: -r[1])[:4]:
        print(f"    {n / 1e3:8.1f} kB  {urlsplit(u).path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--counter-step-s", type=int, default=5)
    parser.add_argument("--analog-days", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", default="last_30d")
    parser.add_argument("--reuse", action="store_true", help="use an already loaded database")
    parser.add_argument("--keep", action="store_true", help="keep the private cluster running")
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    args = parser.parse_args()
    with bench_database(args.database_url, "dashboard", keep=args.keep, bulk_load=True) as url:
        asyncio.run(prepare(url, args))
        measure(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
