"""Invalid configs that used to be accepted: each is refused with its key path and line.

Each case is an edit of a valid base config (every section, all three protocols) and the key
path and message fragment `parse_config` must report. Every case was accepted before the
hostile-input work (issue 11), or gave a traceback at run time.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from config import ConfigError, parse_config

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]

BASE: dict[str, Any] = {
    "plant": "Test plant",
    "calendars": {
        "main": {
            "timezone": "Europe/Berlin",
            "shifts": [
                {
                    "name": "early",
                    "days": WEEKDAYS,
                    "start": "06:00",
                    "end": "14:00",
                    "breaks": [{"name": "lunch", "start": "10:00", "end": "10:30"}],
                },
                {"name": "late", "days": WEEKDAYS, "start": "14:00", "end": "22:00"},
            ],
        }
    },
    "stop_reasons": [
        {"code": 101, "text": "jam", "category": "failure"},
        {"code": 201, "text": "starved", "category": "idle"},
    ],
    "lines": [
        {
            "id": "line1",
            "calendar": "main",
            "machines": [
                {
                    "id": "filler",
                    "ideal_cycle_s": 0.5,
                    "state_map": {0: "planned_stop", 1: "running", 3: "down"},
                },
                {"id": "packer", "ideal_cycle_s": 6.0, "state_map": {1: "running", 3: "down"}},
            ],
        }
    ],
    "sources": [
        {
            "name": "filler-plc",
            "protocol": "opcua",
            "endpoint": "opc.tcp://127.0.0.1:4840/plc",
            "tags": [
                {"machine": "filler", "name": "state", "signal": "state", "node": "ns=2;s=st"},
                {"machine": "filler", "name": "good", "signal": "good_count", "node": "ns=2;s=g"},
                {
                    "machine": "filler",
                    "name": "temp",
                    "node": "ns=2;s=t",
                    "deadband_type": "absolute",
                    "deadband_value": 0.5,
                },
            ],
        },
        {
            "name": "packer-plc",
            "protocol": "modbus",
            "host": "127.0.0.1",
            "devices": [{"unit_id": 2, "poll_interval_s": 2.0}],
            "tags": [
                {"machine": "packer", "name": "state", "signal": "state", "address": 0},
                {
                    "machine": "packer",
                    "name": "good",
                    "signal": "good_count",
                    "address": 2,
                    "type": "uint32",
                    "wrap": 4294967296,
                },
                {
                    "machine": "packer",
                    "name": "temp",
                    "address": 4,
                    "type": "float32",
                    "scale": 0.1,
                    "deadband": 0.5,
                    "heartbeat_s": 60,
                },
            ],
        },
        {
            "name": "gateway",
            "protocol": "mqtt",
            "host": "127.0.0.1",
            "tags": [
                {
                    "machine": "packer",
                    "name": "reason",
                    "signal": "stop_reason",
                    "topic": "line1/packer/status",
                    "field": "reason",
                }
            ],
        },
    ],
    "settings": {
        "database": {"url": "postgresql://shopfloor@db.example/shopfloor"},
        "api": {"api_keys": ["k" * 20]},
    },
    "simulation": {
        "machines": {
            "filler": {
                "mtbf": {"mean_s": 600},
                "failure_reasons": [101],
                "counter_reset_at_s": [600.0],
            }
        }
    },
}

OPCUA, MODBUS, MQTT = ("sources", 0), ("sources", 1), ("sources", 2)
SHIFTS = ("calendars", "main", "shifts")
FILLER = ("lines", 0, "machines", 0)
SIM = ("simulation", "machines", "filler")
INF, NAN = float("inf"), float("nan")


def shift(name: str, days: list[str], start: str, end: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "days": days, "start": start, "end": end, **more}


def edited(edits: dict[tuple[str | int, ...], Any]) -> dict[str, Any]:
    """The base with each path set to its value; missing mappings are made, and a list index
    one past the end appends."""
    doc = copy.deepcopy(BASE)
    for path, value in edits.items():
        target: Any = doc
        for part in path[:-1]:
            target = target.setdefault(part, {}) if isinstance(target, dict) else target[part]
        if isinstance(target, list) and path[-1] == len(target):
            target.append(value)
        else:
            target[path[-1]] = value
    return doc


def problems(doc: dict[str, Any], env: dict[str, str] | None = None) -> list[tuple[str, str, int]]:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return [(p.path, p.message, p.line) for p in info.value.problems]


def test_the_base_is_valid() -> None:
    text = yaml.safe_dump(BASE, sort_keys=False)
    cfg = parse_config(text, env={})
    assert [s.protocol for s in cfg.sources] == ["opcua", "modbus", "mqtt"]


def case(edits: dict[tuple[str | int, ...], Any], path: str, fragment: str, id: str, **env: str):
    return pytest.param(edits, env, path, fragment, id=id)


CASES = [
    # -- calendars: overlaps (weekdays, midnight, the week's end), breaks, clocks -------------
    case(
        {(*SHIFTS, 1, "start"): "12:00"},
        "calendars.main.shifts[1]",
        "overlaps shift 'early'",
        "shift-overlap",
    ),
    case(
        {(*SHIFTS, 1): BASE["calendars"]["main"]["shifts"][0]},
        "calendars.main.shifts[1]",
        "from mon 06:00 to mon 14:00",
        "shift-duplicate",
    ),
    case(
        {
            SHIFTS: [
                shift("night", ["fri"], "22:00", "06:00"),
                shift("early", ["sat"], "05:00", "13:00"),
            ]
        },
        "calendars.main.shifts[1]",
        "from sat 05:00 to sat 06:00",
        "shift-after-midnight",
    ),
    case(
        {
            SHIFTS: [
                shift("night", ["sun"], "22:00", "06:00"),
                shift("early", ["mon"], "05:30", "14:00"),
            ]
        },
        "calendars.main.shifts[1]",
        "from mon 05:30 to mon 06:00",
        "shift-sunday-into-monday",
    ),
    case(
        {(*SHIFTS, 0, "days"): ["mon", "tue", "mon"]},
        "calendars.main.shifts[0].days",
        "mon listed twice",
        "shift-day-twice",
    ),
    case(
        {(*SHIFTS, 0, "breaks", 0, "start"): "15:00", (*SHIFTS, 0, "breaks", 0, "end"): "15:30"},
        "calendars.main.shifts[0].breaks[0]",
        "is not inside shift 'early'",
        "break-after-shift",
    ),
    case(
        {(*SHIFTS, 0, "breaks", 0, "start"): "13:45", (*SHIFTS, 0, "breaks", 0, "end"): "14:15"},
        "calendars.main.shifts[0].breaks[0]",
        "not inside",
        "break-across-shift-end",
    ),
    case(
        {(*SHIFTS, 1, "breaks"): [{"start": "13:00", "end": "13:30"}]},
        "calendars.main.shifts[1].breaks[0]",
        "not inside shift 'late'",
        "break-before-shift",
    ),
    case(
        {(*SHIFTS, 0, "breaks", 0, "end"): "10:00"},
        "calendars.main.shifts[0].breaks[0]",
        "ends when it starts",
        "break-zero",
    ),
    case(
        {(*SHIFTS, 0, "start"): 99999},
        "calendars.main.shifts[0].start",
        "99999 is not a clock time",
        "clock-99999",
    ),
    case(
        {(*SHIFTS, 0, "start"): 6.5},
        "calendars.main.shifts[0].start",
        "not a clock time",
        "clock-float",
    ),
    case(
        {(*SHIFTS, 0, "start"): "06:00+02:00"},
        "calendars.main.shifts[0].start",
        "not a clock time",
        "clock-offset",
    ),
    case(
        {("calendars", "main", "timezone"): "Europe"},
        "calendars.main.timezone",
        "unknown time zone 'Europe'",
        "timezone-folder",
    ),
    # -- plant ----------------------------------------------------------------------------------
    case(
        {(*FILLER, "ideal_cycle_s"): INF},
        "lines[0].machines[0].ideal_cycle_s",
        "finite number",
        "cycle-inf",
    ),
    case(
        {(*FILLER, "ideal_cycle_s"): NAN},
        "lines[0].machines[0].ideal_cycle_s",
        "finite number",
        "cycle-nan",
    ),
    case(
        {(*FILLER, "ideal_cycle_s"): 1e-9},
        "lines[0].machines[0].ideal_cycle_s",
        "at least 0.0001 s and at most 604800 s",
        "cycle-tiny",
    ),
    case(
        {(*FILLER, "ideal_cycle_s"): 1e9},
        "lines[0].machines[0].ideal_cycle_s",
        "at most 604800 s",
        "cycle-huge",
    ),
    case(
        {(*FILLER, "state_map"): {0: "planned_stop", 3: "down"}},
        "lines[0].machines[0].state_map",
        "no PLC value maps to running",
        "no-running-state",
    ),
    case(
        {(*FILLER, "state_map"): {1: "running", 2**40: "down"}},
        "lines[0].machines[0].state_map.1099511627776",
        "at most 2147483647",
        "state-value-huge",
    ),
    case(
        {("stop_reasons", 0, "code"): 2**31},
        "stop_reasons[0].code",
        "at most 2147483647",
        "reason-code-huge",
    ),
    case(
        {("lines", 0, "output_machines"): []},
        "lines[0].output_machines",
        "at least 1 item",
        "outputs-empty",
    ),
    case(
        {("lines", 0, "output_machines"): ["packer", "packer"]},
        "lines[0]",
        "count its parts twice",
        "outputs-twice",
    ),
    case(
        {
            (*MODBUS, "tags", 3): {
                "machine": "filler",
                "name": "state2",
                "signal": "state",
                "address": 10,
            }
        },
        "sources[1].tags[3].signal",
        "already has its state tag at sources[0].tags[0]",
        "two-state-tags",
    ),
    case(
        {
            (*MQTT, "tags", 1): {
                "machine": "packer",
                "name": "good2",
                "signal": "good_count",
                "topic": "p/g",
            }
        },
        "sources[2].tags[1].signal",
        "already has its good_count tag at sources[1].tags[1]",
        "two-good-count-tags",
    ),
    # -- MQTT -----------------------------------------------------------------------------------
    case(
        {(*MQTT, "keepalive_s"): 65536},
        "sources[2].keepalive_s",
        "at least 1 s and at most 65535 s",
        "mqtt-keepalive",
    ),
    case(
        {(*MQTT, "session_expiry_s"): 2**40},
        "sources[2].session_expiry_s",
        "at most 4294967295 s",
        "mqtt-session-expiry",
    ),
    case(
        {(*MQTT, "reconnect_min_s"): 1e-9},
        "sources[2].reconnect_min_s",
        "at least 0.01 s",
        "mqtt-reconnect",
    ),
    case(
        {(*MQTT, "tags", 0, "topic"): "a" * 70_000},
        "sources[2].tags[0].topic",
        "at most 65535 bytes",
        "mqtt-topic-length",
    ),
    # -- Modbus ---------------------------------------------------------------------------------
    case(
        {(*MODBUS, "poll_interval_s"): 1e-9},
        "sources[1].poll_interval_s",
        "at least 0.001 s and at most 86400 s",
        "modbus-poll",
    ),
    case(
        {(*MODBUS, "devices", 0, "poll_interval_s"): 1e-9},
        "sources[1].devices[0].poll_interval_s",
        "at least 0.001 s",
        "modbus-device-poll",
    ),
    case({(*MODBUS, "timeout_s"): 1e9}, "sources[1].timeout_s", "at most 600 s", "modbus-timeout"),
    case({(*MODBUS, "retries"): 10**6}, "sources[1].retries", "at most 10", "modbus-retries"),
    case(
        {(*MODBUS, "reconnect_delay_s"): 1e-9},
        "sources[1].reconnect_delay_s",
        "at least 0.01 s",
        "modbus-reconnect",
    ),
    case({(*MODBUS, "max_gap"): 10**6}, "sources[1].max_gap", "at most 2000", "modbus-max-gap"),
    case({(*MODBUS, "tags", 2, "scale"): 0}, "sources[1].tags[2]", "scale 0", "modbus-scale-zero"),
    case(
        {(*MODBUS, "tags", 2, "scale"): INF},
        "sources[1].tags[2].scale",
        "finite number",
        "modbus-scale-inf",
    ),
    case(
        {(*MODBUS, "tags", 1, "wrap"): 2**70},
        "sources[1].tags[1].wrap",
        "at most 18446744073709551616",
        "tag-wrap-huge",
    ),
    case(
        {(*MODBUS, "tags", 2, "heartbeat_s"): 1e-9},
        "sources[1].tags[2].heartbeat_s",
        "at least 0.1 s",
        "tag-heartbeat",
    ),
    case(
        {(*MODBUS, "tags", 2, "deadband"): INF},
        "sources[1].tags[2].deadband",
        "finite number",
        "tag-deadband-inf",
    ),
    # -- OPC UA ---------------------------------------------------------------------------------
    case(
        {(*OPCUA, "publishing_interval_ms"): 1e-9},
        "sources[0].publishing_interval_ms",
        "at least 1 ms",
        "opcua-publishing",
    ),
    case(
        {(*OPCUA, "sampling_interval_ms"): 1e12},
        "sources[0].sampling_interval_ms",
        "at most 3600000 ms",
        "opcua-sampling",
    ),
    case({(*OPCUA, "queue_size"): 10**9}, "sources[0].queue_size", "at most 65535", "opcua-queue"),
    case(
        {(*OPCUA, "timeout_s"): INF}, "sources[0].timeout_s", "finite number", "opcua-timeout-inf"
    ),
    case(
        {(*OPCUA, "poll_interval_s"): 1e-9},
        "sources[0].poll_interval_s",
        "at least 0.001 s",
        "opcua-poll",
    ),
    case(
        {(*OPCUA, "reconnect_max_s"): 1e9},
        "sources[0].reconnect_max_s",
        "at most 3600 s",
        "opcua-reconnect",
    ),
    case(
        {(*OPCUA, "endpoint"): "opc.tcp://[::1"},
        "sources[0].endpoint",
        "IPv6",
        "opcua-endpoint-bracket",
    ),
    case(
        {(*OPCUA, "endpoint"): "opc.tcp://plc:99999"},
        "sources[0].endpoint",
        "Port out of range",
        "opcua-endpoint-port",
    ),
    case(
        {(*OPCUA, "tags", 2, "deadband_value"): INF},
        "sources[0].tags[2].deadband_value",
        "finite number",
        "opcua-deadband-inf",
    ),
    # -- settings -------------------------------------------------------------------------------
    case(
        {("settings", "collector", "spool_max_mb"): INF},
        "settings.collector.spool_max_mb",
        "finite number",
        "spool-inf",
    ),
    case(
        {("settings", "collector", "spool_max_mb"): 1e-9},
        "settings.collector.spool_max_mb",
        "at least 0.01 MB",
        "spool-tiny",
    ),
    case(
        {("settings", "rollups", "interval_s"): 1e-9},
        "settings.rollups.interval_s",
        "at least 1 s and at most 3600 s",
        "rollup-interval",
    ),
    case(
        {},
        "settings.rollups.interval_s",
        "at least 1 s",
        "rollup-interval-env",
        SHOPFLOOR_ROLLUPS_INTERVAL_S="1e-9",
    ),
    case(
        {("settings", "retention", "raw_days"): 1e-9},
        "settings.retention.raw_days",
        "at least 1 days",
        "raw-days",
    ),
    case(
        {("settings", "retention", "interval_s"): 1e-9},
        "settings.retention.interval_s",
        "at least 60 s",
        "retention-interval",
    ),
    case(
        {("settings", "database", "url"): "not-a-url"},
        "settings.database.url",
        "not a PostgreSQL URL",
        "db-url",
    ),
    case(
        {("settings", "database", "url"): "${DB_URL}"},
        "settings.database.url",
        "not a PostgreSQL URL",
        "db-url-env",
        DB_URL="not-a-url",
    ),
    case(
        {("settings", "database", "url"): "postgresql://db:99999/x"},
        "settings.database.url",
        "a port is 1 to 65535",
        "db-url-port",
    ),
    case(
        {("settings", "api", "api_keys"): [" " * 20]},
        "settings.api.api_keys[0]",
        "whitespace",
        "api-key-spaces",
    ),
    case(
        {("settings", "api", "api_keys"): ["k" * 20, "abcdefgh ijklmnop"]},
        "settings.api.api_keys[1]",
        "whitespace",
        "api-key-inner-space",
    ),
    case(
        {("settings", "api", "api_keys"): ["ключ" * 5]},
        "settings.api.api_keys[0]",
        "visible ASCII",
        "api-key-not-ascii",
    ),
    case(
        {("settings", "api", "cache_s"): 1e9}, "settings.api.cache_s", "at most 60 s", "api-cache"
    ),
    case(
        {("settings", "kpi"): {"heartbeat_s": 1e-9}},
        "settings.kpi.heartbeat_s",
        "at least 1 s",
        "kpi-heartbeat",
    ),
    case(
        {("settings", "kpi"): {"max_gap_s": 1e9}},
        "settings.kpi.max_gap_s",
        "at most 86400 s",
        "kpi-max-gap",
    ),
    case(
        {("settings", "kpi"): {"short_stop_s": 1e12}},
        "settings.kpi.short_stop_s",
        "at most 3600 s",
        "kpi-short-stop",
    ),
    case(
        {("settings", "collector", "batch_rows"): 10**12},
        "settings.collector.batch_rows",
        "at most 1000000",
        "batch-rows",
    ),
    case(
        {("settings", "collector", "batch_age_ms"): 1e12},
        "settings.collector.batch_age_ms",
        "at most 60000 ms",
        "batch-age",
    ),
    case(
        {("settings", "collector", "queue_rows"): 10**12},
        "settings.collector.queue_rows",
        "at most 10000000",
        "queue-rows",
    ),
    case(
        {("settings", "collector", "max_reading_age_days"): 1e-9},
        "settings.collector.max_reading_age_days",
        "at least 1 days",
        "reading-age",
    ),
    case(
        {("settings", "collector", "max_reading_lead_s"): 1e12},
        "settings.collector.max_reading_lead_s",
        "at most 86400 s",
        "reading-lead",
    ),
    # -- simulation -----------------------------------------------------------------------------
    case({("simulation", "speed"): 1e-9}, "simulation.speed", "at least 0.01", "sim-speed-tiny"),
    case({("simulation", "speed"): 1e9}, "simulation.speed", "at most 10000", "sim-speed-huge"),
    case(
        {("simulation", "process_interval_s"): 1e-9},
        "simulation.process_interval_s",
        "at least 0.1 s",
        "sim-process-interval",
    ),
    case({("simulation", "seed"): -1}, "simulation.seed", "at least 0", "sim-seed"),
    case(
        {(*SIM, "mtbf", "mean_s"): 1e-9},
        "simulation.machines.filler.mtbf.mean_s",
        "at least 0.1 s",
        "sim-mean",
    ),
    case(
        {(*SIM, "mtbf"): {"mean_s": 600, "distribution": "uniform", "spread": 1}},
        "simulation.machines.filler.mtbf.spread",
        "must be at least 0 and below 1",
        "sim-spread",
    ),
    case(
        {(*MODBUS, "tags", 2, "deadband"): -0.5},
        "sources[1].tags[2].deadband",
        "-0.5 is out of range: must be at least 0",
        "tag-deadband-negative",
    ),
    case(
        {(*SIM, "counter_start"): 2**40},
        "simulation.machines.filler.counter_start",
        "at most 4294967295",
        "sim-counter-start",
    ),
    case(
        {(*SIM, "buffer_after"): 10**12},
        "simulation.machines.filler.buffer_after",
        "at most 1000000",
        "sim-buffer",
    ),
    case(
        {(*SIM, "consumes"): 10**9},
        "simulation.machines.filler.consumes",
        "at most 10000",
        "sim-consumes",
    ),
    case(
        {(*SIM, "counter_reset_at_s"): [-1.0]},
        "simulation.machines.filler.counter_reset_at_s[0]",
        "at least 0 s",
        "sim-reset-at",
    ),
    case(
        {(*SIM, "temperature"): {"min": 0, "max": INF}},
        "simulation.machines.filler.temperature.max",
        "finite number",
        "sim-range-inf",
    ),
    case(
        {(*SIM, "failure_reasons"): [2**40]},
        "simulation.machines.filler.failure_reasons[0]",
        "at most 2147483647",
        "sim-reason-huge",
    ),
]


@pytest.mark.parametrize(("edits", "env", "path", "fragment"), CASES)
def test_refused_with_key_path_and_line(
    edits: dict[tuple[str | int, ...], Any], env: dict[str, str], path: str, fragment: str
) -> None:
    found = problems(edited(edits), env)
    matches = [p for p in found if p[0] == path and fragment in p[1]]
    assert matches, f"expected {path}: …{fragment}… in {found}"
    assert matches[0][2] is not None, "the problem has no line"


def test_legitimate_calendars_stay_valid() -> None:
    """Adjacent shifts, a night shift with a break after midnight, a 24-hour shift."""
    shifts = [
        shift("early", WEEKDAYS, "06:00", "14:00"),
        shift("late", WEEKDAYS, "14:00", "22:00", breaks=[{"start": "18:00", "end": "18:30"}]),
        shift("night", WEEKDAYS, "22:00", "06:00", breaks=[{"start": "02:00", "end": "02:30"}]),
        shift("weekend", ["sat"], "06:00", "06:00"),
        shift("sunday", ["sun"], "06:00", "24:00", breaks=[{"start": "23:30", "end": "24:00"}]),
    ]
    cfg = parse_config(yaml.safe_dump(edited({SHIFTS: shifts})), env={})
    assert [s.duration.total_seconds() / 3600 for s in cfg.calendars["main"].shifts] == [
        8,
        8,
        8,
        24,
        18,
    ]


def test_unquoted_clock_is_read_as_minutes() -> None:
    """YAML 1.1 reads 6:00 as 360: still 06:00, as it always was."""
    text = yaml.safe_dump(BASE, sort_keys=False).replace("start: 06:00", "start: 6:00", 1)
    text = text.replace("'06:00'", "6:00", 1)
    cfg = parse_config(text, env={})
    assert str(cfg.calendars["main"].shifts[0].start) == "06:00:00"


def test_problem_line_is_the_key_line() -> None:
    text = yaml.safe_dump(edited({(*MQTT, "keepalive_s"): 65536}), sort_keys=False)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "keepalive_s" in t)
    assert ("sources[2].keepalive_s", line) in [
        (p, n) for p, _, n in problems(yaml.safe_load(text))
    ]
