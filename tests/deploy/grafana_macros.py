"""Grafana's expansion of a PostgreSQL panel query, as a test oracle (no code shared with the
dashboard): first the front end's template variables, then the backend's macros.

Written from Grafana's own rules: template variables `$name`, `${name}`, `${name:format}` and
`[[name]]` (a single-valued variable of a SQL data source is inserted as is with `'` doubled;
`sqlstring` quotes it), `$__interval` / `$__interval_ms`; then the macros of
pkg/tsdb/grafana-postgresql-datasource/macros.go: `$__timeFilter(col)` is
`col BETWEEN '<from>' AND '<to>'` with both instants in UTC as RFC 3339 with nanoseconds (Go's
`time.RFC3339Nano`: trailing zeros of the fraction dropped), `$__timeFrom()` / `$__timeTo()`
those quoted instants, `$__timeGroup(col, interval)` `time_bucket('<seconds with 3
decimals>s',col)` when the data source is flagged TimescaleDB (else
`floor(extract(epoch from col)/N)*N`), `$__timeGroupAlias` the same `AS "time"`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Query:
    """What Grafana knows when it runs a panel: the time range, the variables, the interval."""

    start: dt.datetime
    end: dt.datetime
    variables: Mapping[str, str]
    interval: str = "1m"
    timescaledb: bool = True


def rfc3339_nano(t: dt.datetime) -> str:
    u = t.astimezone(dt.UTC)
    text = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        text += "." + f"{u.microsecond:06d}".rstrip("0")
    return text + "Z"


def interval_seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip().strip("'"))
    if not m:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(m[1]) * _UNITS[m[2]]


def _format(value: str, fmt: str | None) -> str:
    if fmt is None or fmt == "raw":
        return value if fmt == "raw" else value.replace("'", "''")
    if fmt == "sqlstring":
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"variable format {fmt!r} is not one this oracle knows")


def interpolate_variables(sql: str, q: Query) -> str:
    """The front end's step: template variables and the interval (unknown names stay)."""
    known = dict(q.variables)
    known["__interval"] = q.interval
    known["__interval_ms"] = str(round(interval_seconds(q.interval) * 1000))

    def one(m: re.Match[str]) -> str:
        name = m[1] or m[2] or m[4]
        fmt = m[3] or m[5]
        if name not in known:
            return m[0]
        return _format(known[name], fmt)

    return _VARIABLE.sub(one, sql)


def _macro(name: str, args: list[str], q: Query) -> str:
    start, end = rfc3339_nano(q.start), rfc3339_nano(q.end)
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise ValueError(f"${name} needs a column and an interval")
        s = interval_seconds(args[1])
        if q.timescaledb:
            group = f"time_bucket('{s:.3f}s',{args[0]})"
        else:
            group = f"floor(extract(epoch from {args[0]})/{s:g})*{s:g}"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    raise ValueError(f"unknown macro ${name}")


def expand_macros(sql: str, q: Query) -> str:
    """The backend's step (macros.go). A `$__timeGroup(..)` directly followed by `,` gets the
    alias, as Grafana does for dashboards from before 5.3."""

    def one(m: re.Match[str]) -> str:
        name = m[1]
        if name == "__timeGroup" and sql[m.end() : m.end() + 1] == ",":
            name = "__timeGroupAlias"
        return _macro(name, [a.strip() for a in m[2].split(",")], q)

    return _MACRO.sub(one, sql)


def expand(sql: str, q: Query) -> str:
    """The statement Grafana sends to PostgreSQL for `sql` under `q`."""
    return expand_macros(interpolate_variables(sql, q), q)
