"""The test plant: KPI.md examples A, B and D as lines, and their raw PLC readings.

Readings are what a PLC and the collector produce: each state change, then the same state
re-recorded every 30 s (heartbeat); cumulative counters sampled every 60 s. They go into the
database through `storage.writer.BatchWriter`, like the collector's writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from config import ShopfloorConfig, parse_config
from tests.kpi.builders import DOWN, IDLE, PLANNED, RUN, counter
from tests.kpi.test_examples import (
    E_FILLER_STATES,
    E_MACHINES,
    E_RUNNING,
    e_counters,
    rejects,
    shift_samples,
    t,
    totals,
)

KEY = "test-key-0123456789abcdef"

PLANT = """
plant: API test plant
calendars:
  cal-a:
    timezone: UTC
    shifts:
      - name: early
        days: [mon, tue, wed, thu, fri]
        start: "06:00"
        end: "14:00"
        breaks:
          - {start: "08:00", end: "08:15"}
          - {start: "10:00", end: "10:30"}
          - {start: "12:00", end: "12:15"}
  cal-b:
    timezone: UTC
    shifts:
      - name: early
        days: [mon, tue, wed, thu, fri]
        start: "06:00"
        end: "14:00"
        breaks: [{start: "10:00", end: "10:30"}]
  cal-d:
    timezone: UTC
    shifts:
      - {name: early, days: [mon, tue, wed, thu, fri], start: "06:00", end: "14:00"}
  cal-e:
    timezone: UTC
    shifts:
      - {name: early, days: [mon, tue, wed, thu, fri], start: "06:00", end: "07:00"}
stop_reasons:
  - {code: 10, text: jam, category: failure}
  - {code: 20, text: starved, category: idle}
lines:
  - id: la
    name: Example A
    calendar: cal-a
    machines:
      - {id: ma, ideal_cycle_s: 1.0, state_map: &map {1: running, 2: down, 3: idle, 4: planned_stop, 5: setup}}
  - id: lb
    calendar: cal-b
    machines:
      - {id: mb, ideal_cycle_s: 1.0, state_map: *map}
  - id: ld
    calendar: cal-d
    constraint_machine: m1
    output_machines: [m2]
    machines:
      - {id: m1, ideal_cycle_s: 60, state_map: *map}
      - {id: m2, ideal_cycle_s: 30, state_map: *map}
  - id: le
    name: Example E (a case packer counting cases of 12)
    calendar: cal-e
    constraint_machine: filler
    output_machines: [packer]
    machines:
      - {id: filler, ideal_cycle_s: 0.5, state_map: *map}
      - {id: capper, ideal_cycle_s: 0.45, state_map: *map}
      - {id: packer, ideal_cycle_s: 6.0, units_per_count: 12, state_map: *map}
  - id: lx
    machines:
      - {id: mx, ideal_cycle_s: 2, state_map: *map}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: ma, name: state, signal: state, address: 0}
      - {machine: ma, name: reason, signal: stop_reason, address: 1}
      - {machine: ma, name: total, signal: total_count, address: 2}
      - {machine: ma, name: reject, signal: reject_count, address: 3}
      - {machine: ma, name: temp, unit: degC, address: 4}
      - {machine: mb, name: state, signal: state, address: 10}
      - {machine: mb, name: total, signal: total_count, address: 11}
      - {machine: mb, name: good, signal: good_count, address: 12}
      - {machine: m1, name: state, signal: state, address: 20}
      - {machine: m1, name: good, signal: good_count, address: 21}
      - {machine: m1, name: reject, signal: reject_count, address: 22}
      - {machine: m2, name: state, signal: state, address: 30}
      - {machine: m2, name: total, signal: total_count, address: 31}
      - {machine: m2, name: reject, signal: reject_count, address: 32}
      - {machine: filler, name: state, signal: state, address: 40}
      - {machine: filler, name: total, signal: total_count, address: 41}
      - {machine: filler, name: reject, signal: reject_count, address: 42}
      - {machine: capper, name: state, signal: state, address: 50}
      - {machine: capper, name: total, signal: total_count, address: 51}
      - {machine: capper, name: reject, signal: reject_count, address: 52}
      - {machine: packer, name: state, signal: state, address: 60}
      - {machine: packer, name: good, signal: good_count, address: 61}
      - {machine: packer, name: reject, signal: reject_count, address: 62}
"""


def plant(*, keys: Sequence[str] = ()) -> ShopfloorConfig:
    text = PLANT
    if keys:
        text += "settings:\n  api:\n    api_keys: [" + ", ".join(keys) + "]\n"
    return parse_config(text)


def _states(changes: list[tuple[str, int]]) -> list[tuple[dt.datetime, float]]:
    """State changes of the day, re-recorded every 30 s from 05:00 to 15:00."""
    return _floats(shift_samples(changes))


def readings() -> dict[tuple[str, str], list[tuple[dt.datetime, float]]]:
    """(machine, tag) -> samples of examples A, B and D (tests/kpi/test_examples.py); counters
    have a baseline at 05:59:30, then one sample a minute: 480 inside the shift, 30 after it."""
    c0 = t("05:59:30")
    a_states = _states(
        [
            ("05:00", IDLE),
            ("06:00", RUN),
            ("08:00", PLANNED),
            ("08:15", RUN),
            ("09:00", DOWN),
            ("09:47", RUN),
            ("10:00", IDLE),
            ("10:30", RUN),
            ("12:00", PLANNED),
            ("12:15", RUN),
            ("14:00", IDLE),
        ]
    )
    b_states = _states(
        [
            ("05:00", IDLE),
            ("06:00", RUN),
            ("07:00", DOWN),
            ("07:20", RUN),
            ("09:00", DOWN),
            ("09:15", RUN),
            ("10:00", PLANNED),
            ("10:30", RUN),
            ("12:00", DOWN),
            ("12:10", RUN),
            ("14:00", IDLE),
        ]
    )
    b_good = [a - b for a, b in zip(totals(19_271), rejects(423), strict=True)]
    m1_total = [1] * 400 + [0] * 110
    m1_reject = [1] * 10 + [0] * 500
    return {
        ("ma", "state"): a_states,
        # the 09:00 failure is explained by reason 10 (jam), written a second after the stop
        ("ma", "reason"): [(t("05:00"), 0.0), (t("09:00:01"), 10.0), (t("09:47"), 0.0)],
        ("ma", "total"): _floats(counter(c0, totals(19_271), start_value=1000)),
        ("ma", "reject"): _floats(counter(c0, rejects(423), start_value=50)),
        ("mb", "state"): b_states,
        ("mb", "total"): _floats(counter(c0, totals(19_271))),
        ("mb", "good"): _floats(counter(c0, b_good)),
        ("m1", "state"): _states(
            [("05:00", IDLE), ("06:00", RUN), ("08:00", DOWN), ("09:00", RUN), ("14:00", IDLE)]
        ),
        ("m1", "good"): _floats(
            counter(c0, [a - b for a, b in zip(m1_total, m1_reject, strict=True)])
        ),
        ("m1", "reject"): _floats(counter(c0, m1_reject)),
        ("m2", "state"): _states(
            [("05:00", IDLE), ("06:00", RUN), ("10:00", DOWN), ("10:30", RUN), ("14:00", IDLE)]
        ),
        ("m2", "total"): _floats(counter(c0, [1] * 390 + [0] * 120)),
        ("m2", "reject"): _floats(counter(c0, [1] * 5 + [0] * 505)),
        ("ma", "temp"): temperature(),
    } | example_e()


def example_e() -> dict[tuple[str, str], list[tuple[dt.datetime, float]]]:
    """KPI.md example E (tests/kpi/test_examples.py) as readings of line `le`."""
    counters = e_counters()
    out = {}
    for m in E_MACHINES:
        out[m, "state"] = _states(E_FILLER_STATES if m == "filler" else E_RUNNING)
        for name, samples in counters[m].items():
            out[m, name] = _floats(samples)
    return out


def temperature() -> list[tuple[dt.datetime, float]]:
    """2,503 readings at odd microsecond times from 06:00 (one every 7.000123 s)."""
    step = dt.timedelta(seconds=7, microseconds=123)
    return [(t("06:00") + k * step, 20.0 + (k % 50) / 10) for k in range(2503)]


def _floats(samples: list) -> list[tuple[dt.datetime, float]]:
    return [(a, float(v)) for a, v in samples]
