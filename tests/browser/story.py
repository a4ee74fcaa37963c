"""The browser tests' plant and its day: KPI.md example B on a line whose calendar is in
Europe/Berlin, with reasons on its stops, so the page has exact figures to show in local time.

Line `pack` (shift 07:00-15:00 Berlin = 06:00-14:00 UTC on 2026-03-02, break 11:00-11:30):
- `filler` (constraint and output) is example B: failures of 20, 15 and 10 min, explained as
  jam (10), motor fault (11) and jam, so the line is A 0.900000, P 0.793045, Q 0.978050,
  OEE 0.698074, good 18,848 of 19,271.
- `labeler` runs all shift but for 20 min starved (20, an idle reason) at 12:30 UTC; it counts
  no rejects, so the line's figures stay example B's.
  Pareto: jam 30 min in 2 stops, starved 20 min in 1, motor fault 15 min in 1.
Line `spare` (no calendar): `lonely` sent its last state at 14:50 UTC: stale at 15:00.
"""

from __future__ import annotations

import datetime as dt

from config import ShopfloorConfig, parse_config
from tests.kpi.builders import DOWN, IDLE, RUN, counter, heartbeat
from tests.kpi.test_examples import B_STATES, rejects, shift_samples, t, totals

KEY = "browser-key-0123456789abcdef"
NOW = t("15:00")  # the API's clock: the shift ended an hour ago

PLANT = """
plant: Browser test plant
calendars:
  berlin:
    timezone: Europe/Berlin
    shifts:
      - name: early
        days: [mon, tue, wed, thu, fri]
        start: "07:00"
        end: "15:00"
        breaks: [{start: "11:00", end: "11:30"}]
stop_reasons:
  - {code: 10, text: jam, category: failure}
  - {code: 11, text: motor fault, category: failure}
  - {code: 20, text: starved, category: idle}
lines:
  - id: pack
    name: Packing line
    calendar: berlin
    constraint_machine: filler
    output_machines: [filler]
    machines:
      - {id: labeler, ideal_cycle_s: 1.0, state_map: &map {1: running, 2: down, 3: idle, 4: planned_stop, 5: setup}}
      - {id: filler, name: Filler 1, ideal_cycle_s: 1.0, state_map: *map}
  - id: spare
    machines:
      - {id: lonely, ideal_cycle_s: 2, state_map: *map}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: filler, name: state, signal: state, address: 0}
      - {machine: filler, name: reason, signal: stop_reason, address: 1}
      - {machine: filler, name: total, signal: total_count, address: 2}
      - {machine: filler, name: good, signal: good_count, address: 3}
      - {machine: labeler, name: state, signal: state, address: 10}
      - {machine: labeler, name: reason, signal: stop_reason, address: 11}
      - {machine: labeler, name: total, signal: total_count, address: 12}
      - {machine: labeler, name: reject, signal: reject_count, address: 13}
      - {machine: lonely, name: state, signal: state, address: 20}
"""

# What the page must show for the line's shift (KPI.md example B), as a person reads it.
EXAMPLE_B = {
    "OEE": "69.8 %",
    "Availability": "90.0 %",
    "Performance": "79.3 %",
    "Quality": "97.8 %",
}
PARETO = [("jam", "30 min", 2), ("starved", "20 min", 1), ("motor fault", "15 min", 1)]


def plant(*, keys: bool = False) -> ShopfloorConfig:
    text = PLANT + (f"settings:\n  api:\n    api_keys: [{KEY}]\n" if keys else "")
    return parse_config(text)


Samples = list[tuple[dt.datetime, float]]


def _floats(samples: list) -> Samples:
    return [(a, float(v)) for a, v in samples]


def readings() -> dict[tuple[str, str], Samples]:
    """(machine, tag) -> samples: states re-recorded every 30 s, counters every 60 s."""
    c0 = t("05:59:30")
    good = [a - b for a, b in zip(totals(19_271), rejects(423), strict=True)]
    return {
        ("filler", "state"): _floats(shift_samples(B_STATES)),
        ("filler", "reason"): _floats(
            [
                (t("05:00"), 0),
                (t("07:00"), 10),
                (t("07:20"), 0),
                (t("09:00"), 11),
                (t("09:15"), 0),
                (t("12:00"), 10),
                (t("12:10"), 0),
            ]
        ),
        ("filler", "total"): _floats(counter(c0, totals(19_271))),
        ("filler", "good"): _floats(counter(c0, good)),
        ("labeler", "state"): _floats(
            shift_samples(
                [("05:00", IDLE), ("06:00", RUN), ("12:30", IDLE), ("12:50", RUN), ("14:30", DOWN)]
            )
        ),
        ("labeler", "reason"): _floats(
            [(t("05:00"), 0), (t("12:30"), 20), (t("12:50"), 0), (t("14:30"), 10)]
        ),
        ("labeler", "total"): _floats(counter(c0, totals(19_300))),
        ("labeler", "reject"): _floats(counter(c0, [0] * 510)),
        ("lonely", "state"): _floats(heartbeat([(t("13:00"), RUN)], until=t("14:50:30"))),
    }
