"""The independent truth calculator, on hand-written truth files with hand-computed answers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from simulators import simulate
from simulators.model import Clock
from simulators.recorder import TruthRecorder, header
from simulators.truth import CLASSES, load, window
from tests.simulators.helpers import demo_config

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


HEADER = {
    "type": "header",
    "version": 1,
    "reason_classes": {
        "0": "idle",
        "101": "down",
        "201": "idle",
        "301": "setup",
        "401": "planned_stop",
    },
    "machines": {
        "m": {
            "state_map": {
                "0": "planned_stop",
                "1": "running",
                "2": "idle",
                "3": "down",
                "4": "setup",
            }
        }
    },
}
# running 0-100, down(101) 100-160, running 160-300, idle with a setup reason 300-360,
# planned_stop 360-400, running 400-500 (end).
STATES = [(0, 1, 0), (100, 3, 101), (160, 1, 0), (300, 2, 301), (360, 0, 0), (400, 1, 0)]
PARTS = [(10, 1, 0), (50, 1, 0), (99.999, 0, 1), (170, 1, 0), (420, 1, 0)]


@pytest.fixture
def truth_file(tmp_path: Path) -> Path:
    lines = [HEADER]
    lines += [
        {"type": "state", "ts": at(t).isoformat(), "machine": "m", "state": s, "reason": r}
        for t, s, r in STATES
    ]
    lines += [
        {
            "type": "count",
            "ts": at(t).isoformat(),
            "machine": "m",
            "good": g,
            "reject": j,
            "total": g + j,
        }
        for t, g, j in PARTS
    ]
    lines.sort(key=lambda rec: rec.get("ts", ""))
    lines.append({"type": "end", "ts": at(500).isoformat()})
    path = tmp_path / "truth.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


CASES = [
    # (start, end, running, down, idle, setup, planned_stop, good, reject, failures)
    (0, 500, 340, 60, 0, 60, 40, 4, 1, 1),
    (50, 130, 50, 30, 0, 0, 0, 1, 1, 1),  # cuts intervals in half; a part at start counts
    (120, 170, 10, 40, 0, 0, 0, 0, 0, 0),  # failure began before; a part at end is out
    (300, 400, 0, 0, 0, 60, 40, 0, 0, 0),  # a reason category decides the class (idle -> setup)
    (450, 900, 50, 0, 0, 0, 0, 0, 0, 0),  # nothing is known after the end record
    (50, 50, 0, 0, 0, 0, 0, 0, 0, 0),  # empty window
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_window(truth_file: Path, case: tuple) -> None:
    start, end, *seconds, good, reject, failures = case
    got = window(truth_file, "m", at(start), at(end))
    assert got.seconds == pytest.approx(dict(zip(CLASSES, seconds, strict=True)))
    assert (got.good, got.reject, got.total, got.failures) == (
        good,
        reject,
        good + reject,
        failures,
    )


def test_a_recorded_run_adds_up(tmp_path: Path) -> None:
    """On a real recording, the classes cover every second and counts match the events."""
    cfg = demo_config()
    clock = Clock(T0, 10.0)
    events = simulate(cfg, until_s=1800, seed=11, speed=10.0, epoch=T0)
    rec = TruthRecorder(tmp_path / "t.jsonl", header(cfg, cfg.simulation, clock, 11))
    rec.write([(e, clock.wall(e.t)) for e in events])
    rec.close(1800, clock.wall(1800))
    truth = load(tmp_path / "t.jsonl")
    assert truth.header["seed"] == 11 and truth.header["speed"] == 10.0
    for machine in ("filler", "capper", "labeler", "packer"):
        got = window(truth, machine, T0, clock.wall(1800))
        assert sum(got.seconds.values()) == pytest.approx(180.0)
        parts = [
            e
            for e in events
            if getattr(e, "good_counter", None) is not None and e.machine == machine
        ]
        assert got.total == len(parts) and got.good == sum(p.good for p in parts)
