"""The test oracle for Grafana's query expansion (tests/deploy/grafana_macros.py): table-driven
cases in the forms Grafana's PostgreSQL data source documents and produces."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.deploy.grafana_macros import Query, expand

START = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 2, 7, 30, 15, 250000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
Q = Query(START, END, {"line": "l'1", "machine": "m1"}, interval="5m")

CASES = [
    ("$__timeFilter(time)", "time BETWEEN '2026-03-02T06:00:00Z' AND '2026-03-02T06:30:15.25Z'"),
    ("$__timeFrom() < $__timeTo()", "'2026-03-02T06:00:00Z' < '2026-03-02T06:30:15.25Z'"),
    ("$__timeGroup(t.minute, 1h)", "time_bucket('3600.000s',t.minute)"),
    ("$__timeGroupAlias(minute, '15m')", "time_bucket('900.000s',minute) AS \"time\""),
    (
        "SELECT $__timeGroup(r.time, $__interval), avg(v)",
        "SELECT time_bucket('300.000s',r.time) AS \"time\", avg(v)",
    ),
    ("$__time(ts)", 'ts AS "time"'),
    ("WHERE id = ${line:sqlstring}", "WHERE id = 'l''1'"),
    ("WHERE id = '$line'", "WHERE id = 'l''1'"),
    ("WHERE id = '[[machine]]' AND '${machine}' = '$machine'", "WHERE id = 'm1' AND 'm1' = 'm1'"),
    ("$__interval_ms", "300000"),
    ("$unknown stays", "$unknown stays"),
]


@pytest.mark.parametrize(("sql", "expected"), CASES)
def test_expansion(sql: str, expected: str) -> None:
    assert expand(sql, Q) == expected


def test_time_group_without_timescaledb() -> None:
    q = Query(START, END, {}, timescaledb=False)
    assert expand("$__timeGroupAlias(minute, 1h)", q) == (
        'floor(extract(epoch from minute)/3600)*3600 AS "time"'
    )


@pytest.mark.parametrize("sql", ["$__timeGroup(minute)", "$__nope(x)", "${line:csv}"])
def test_refused(sql: str) -> None:
    with pytest.raises(ValueError):
        expand(sql, Q)
