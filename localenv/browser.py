"""Debian's Chromium as the browser tests and bench/dashboard launch it through Playwright
(`executable_path`: no browser download; scripts/setup installs the package)."""

CHROMIUM = "/usr/bin/chromium"
# This machine's closed network refuses Chromium's own background connections: keep them off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
