"""Write dashboards/shopfloor.json from the SQL in sql/ (docs/grafana.md, "Changing the dashboard").

Grafana has no shared SQL between panels, so the shift calendar and the KPI sums would be written
out in several panels; here each is written once and the panels are composed from them. Run
`python deploy/grafana/build_dashboard.py` after editing sql/ or this file; `--check` exits 1 when
the JSON is not what this writes (the tests run it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SQL = HERE / "sql"
OUT = HERE / "dashboards" / "shopfloor.json"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "${datasource}"}
WHOLE_RANGE = {"BUCKET": "", "GROUP": ""}


def piece(name: str, **fill: str) -> str:
    """sql/<name>.sql with its {{PLACEHOLDERS}} filled in."""
    text = (SQL / f"{name}.sql").read_text()
    for key, value in fill.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise ValueError(f"sql/{name}.sql: a placeholder left unfilled")
    return text.strip()


def zone() -> str:
    """The line's time zone as an SQL expression (sql/line_zone.sql, its comment dropped)."""
    return "\n".join(x for x in piece("line_zone").splitlines() if not x.startswith("--"))


def hourly() -> dict[str, str]:
    """Hour buckets as the API's series makes them (kpi/buckets.py): on the line's local clock
    at the range's start, stepped in UTC; whole UTC hours shifted by that offset modulo an hour
    (:30 in India)."""
    offset = (
        f"($__timeFrom()::timestamptz AT TIME ZONE {zone()}) "
        "- ($__timeFrom()::timestamptz AT TIME ZONE 'UTC')"
    )
    align = f"make_interval(secs => mod(extract(epoch FROM {offset}), 3600)::float8)"
    bucket = f'time_bucket(interval \'1 hour\', p.minute, "offset" => {align}) AS "time",'
    return {"BUCKET": bucket, "GROUP": "1,"}


def compose(*ctes: str, final: str) -> str:
    """`WITH` the common table expressions, then `final`; comments before the first go first."""
    lines = ",\n".join(c.rstrip(",") for c in ctes).split("\n")
    lead = []
    while lines[0].startswith("--"):
        lead.append(lines.pop(0))
    text = "\n".join([*lead, "WITH " + lines[0], *lines[1:], final])
    return "\n".join(line.rstrip() for line in text.split("\n")) + "\n"


def split_final(text: str) -> tuple[str, str]:
    """A piece's common table expressions and its final SELECT."""
    ctes, final = text.split("\nSELECT ", 1)
    return ctes, "SELECT " + final


def line_kpis(by_hour: bool) -> str:
    sums = piece("kpi_sums", MEMBER_FILTER="", **(hourly() if by_hour else WHOLE_RANGE))
    if by_hour:
        fill = {"SELECT_TIME": 'c."time",', "GROUP_LINE": 'GROUP BY c."time"'}
        fill |= {"OUT_TIME": '"time",', "EXTRA": "", "ORDER": 'ORDER BY "time"'}
    else:
        fill = {"SELECT_TIME": "", "GROUP_LINE": "", "OUT_TIME": "", "ORDER": ""}
        fill["EXTRA"] = ",\n       good AS good_units, total AS total_units"
    ctes, final = split_final(piece("line_kpis", **fill))
    return compose(piece("calendar"), sums, ctes, final=final)


def machine_kpis_by_hour() -> str:
    sums = piece("kpi_sums", MEMBER_FILTER="AND m.id = ${machine:sqlstring}", **hourly())
    final = piece("machine_kpis", SELECT_TIME='"time",', ORDER='ORDER BY "time"')
    return compose(piece("calendar"), sums, final=final)


def downtime() -> str:
    ctes, final = split_final(piece("downtime"))
    return compose(piece("calendar"), ctes, final=final)


def target(sql: str, fmt: str) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "refId": "A",
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql,
    }


def panel(
    pid: int,
    title: str,
    kind: str,
    grid: tuple[int, int, int, int],
    sql: str,
    fmt: str,
    description: str,
    field: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": dict(zip("xywh", grid, strict=True)),
        "targets": [target(sql, fmt)],
        "fieldConfig": field or {"defaults": {}, "overrides": []},
    }
    if options:
        out["options"] = options
    return out


def query_variable(name: str, label: str, sql: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "definition": sql,
        "query": sql,
        "refresh": 1,
        "sort": 0,
        "multi": False,
        "includeAll": False,
        "options": [],
        "current": {},
    }


LINE_VARIABLE = (
    "SELECT id AS __value, coalesce(name, id) AS __text FROM lines WHERE active ORDER BY id"
)
MACHINE_VARIABLE = (
    "SELECT id AS __value, coalesce(name, id) AS __text FROM machines\n"
    "WHERE line_id = ${line:sqlstring} AND active ORDER BY position, id"
)
TAG_VARIABLE = (
    "SELECT id AS __value,\n"
    "       name || coalesce(' [' || unit || ']', '') || ' (' || signal || ')' AS __text\n"
    "FROM tags WHERE machine_id = ${machine:sqlstring} AND active\n"
    "ORDER BY signal <> 'measurement', name"
)

WHOLE_MINUTES = (
    "Equals {api} for the same window when the range starts and ends on whole minutes and the "
    "rollups cover it (they lag now by the refresh interval plus short_stop_s + max_gap_s, ~3 "
    "minutes); a partial minute at either end is left out here."
)
DESCRIPTIONS = {
    "line_range": "The line's OEE, availability, performance and quality, and its good and total "
    "output in line units, over the time range, by KPI.md section 4 (the constraint machine's run "
    "and planned busy time, good units of the output machines, rejects of every machine, the "
    "constraint's ideal cycle per line unit), from the minute rollups with the line's shift "
    "calendar and breaks. " + WHOLE_MINUTES.format(api="GET /api/v1/lines/{line}/kpis"),
    "line_hourly": "Per hour of the line's local clock: the line's KPIs by KPI.md section 4, "
    "from the minute rollups. No value where the hour has no planned busy time. "
    + WHOLE_MINUTES.format(api="each point of GET /api/v1/lines/{line}/kpis/series?bucket=1h"),
    "machine_hourly": "Per hour of its line's local clock: the machine's own KPIs (KPI.md "
    "section 3, in its own units) from the minute rollups, with its line's shift calendar. "
    + WHOLE_MINUTES.format(
        api="each point of GET /api/v1/machines/{machine}/kpis/series?bucket=1h"
    ),
    "downtime": "Stop time by reason and class of all the line's machines over productive "
    "calendar time (shifts less breaks), longest first; events count a stop once however many "
    "productive parts breaks cut it into; share of all stop time. From the downtime rollups. "
    + WHOLE_MINUTES.format(api="GET /api/v1/lines/{line}/downtime"),
    "states": "The machine's PLC state as its state map classifies it, from the readings of its "
    "state tag: each sample holds until the next, for at most max_gap_s; after a longer silence, "
    "and for bad-quality or unmapped values, unknown. Equals the classes of GET "
    "/api/v1/machines/{machine}/timeline, except where a stop reason's category gives a stop "
    "another class than the state map: the API shows the reason's class, this panel the PLC's.",
    "tag_trend": "The chosen tag's readings averaged per Grafana interval (bad quality included, "
    "as in the API), buckets on the line's local clock. Equals GET "
    "/api/v1/tags/{machine}/{tag}/series?agg=avg with that bucket.",
}

PERCENT = {"defaults": {"unit": "percentunit", "min": 0, "decimals": 1}, "overrides": []}
STATE_COLOURS = {
    "running": "green",
    "down": "red",
    "idle": "yellow",
    "setup": "blue",
    "planned_stop": "purple",
    "unknown": "text",
}


def by_regex(pattern: str, *properties: tuple[str, Any]) -> dict[str, Any]:
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [{"id": k, "value": v} for k, v in properties],
    }


def panels() -> list[dict[str, Any]]:
    d = DESCRIPTIONS
    stat_fields = {
        "defaults": {"decimals": 1},
        "overrides": [
            by_regex("availability|performance|quality|oee", ("unit", "percentunit")),
            by_regex("good_units|total_units", ("unit", "none"), ("decimals", 0)),
        ],
    }
    stat_options = {
        "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": "/.*/"},
        "orientation": "horizontal",
        "textMode": "value_and_name",
        "colorMode": "none",
        "graphMode": "none",
    }
    downtime_fields = {
        "defaults": {},
        "overrides": [
            by_regex("^duration_s$", ("unit", "s")),
            by_regex(
                "^share$",
                ("unit", "percentunit"),
                ("custom.cellOptions", {"type": "gauge", "mode": "basic"}),
            ),
        ],
    }
    mappings = {
        state: {"color": colour, "index": i}
        for i, (state, colour) in enumerate(STATE_COLOURS.items())
    }
    state_fields = {
        "defaults": {
            "color": {"mode": "thresholds"},
            "mappings": [{"type": "value", "options": mappings}],
        },
        "overrides": [],
    }
    return [
        panel(1, "Line $line over the time range", "stat", (0, 0, 24, 4), line_kpis(False),
              "table", d["line_range"], stat_fields, stat_options),
        panel(2, "Line $line: OEE, availability, performance, quality by hour", "timeseries",
              (0, 4, 12, 9), line_kpis(True), "time_series", d["line_hourly"], PERCENT),
        panel(3, "Machine $machine: OEE, availability, performance, quality by hour",
              "timeseries", (12, 4, 12, 9), machine_kpis_by_hour(), "time_series",
              d["machine_hourly"], PERCENT),
        panel(4, "Line $line: downtime by reason", "table", (0, 13, 12, 9), downtime(), "table",
              d["downtime"], downtime_fields),
        panel(5, "Machine $machine: state", "state-timeline", (12, 13, 12, 9),
              piece("states") + "\n", "table", d["states"], state_fields,
              {"mergeValues": True, "showValue": "auto", "rowHeight": 0.9}),
        panel(6, "Tag trend", "timeseries", (0, 22, 24, 8),
              piece("tag_trend", ZONE=zone()) + "\n", "time_series", d["tag_trend"]),
    ]  # fmt: skip


def dashboard() -> dict[str, Any]:
    pick = {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": DATASOURCE["type"],
        "current": {"text": "shopfloor", "value": "shopfloor-timescaledb"},  # the uid
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }
    variables = [
        pick,
        query_variable("line", "Line", LINE_VARIABLE),
        query_variable("machine", "Machine", MACHINE_VARIABLE),
        query_variable("tag", "Tag", TAG_VARIABLE),
    ]
    return {
        "uid": "shopfloor-kpis",
        "title": "shopfloor: line and machine KPIs",
        "description": "OEE and its parts, downtime by reason, machine states and tag trends, "
        "read from shopfloor's TimescaleDB tables (docs/grafana.md).",
        "tags": ["shopfloor"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "graphTooltip": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": panels(),
    }


def rendered() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = rendered()
    if argv == ["--check"]:
        if OUT.read_text() != text:
            print(f"{OUT} is not what {Path(__file__).name} writes: run it", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(f"usage: python {Path(__file__).name} [--check]", file=sys.stderr)
        return 2
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
