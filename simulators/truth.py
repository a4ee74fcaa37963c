"""Ground truth from a simulator truth file, independent of the KPI code.

Tests compare what the collector and KPI engine computed against this. It deliberately imports
nothing of shopfloor (only the standard library), reads the classification rules from the file's
own header, and stays small enough to check by eye:

- a machine's state holds from its `state` record until its next one, or the `end` record;
- an interval's class is its state's class (header `state_map`), except that a non-zero stop
  reason with a category decides the class of a non-running interval (KPI.md §1);
- time before a machine's first state record, or after `end`, is in no class;
- counts are the sums of the `count` records with start <= ts < end.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLASSES = ("running", "down", "idle", "setup", "planned_stop")


@dataclass
class Truth:
    header: dict[str, Any]
    records: list[dict[str, Any]]
    end: dt.datetime | None

    def state_records(self, machine: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == "state" and r["machine"] == machine]


@dataclass
class WindowTruth:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0.0))
    good: int = 0
    reject: int = 0
    total: int = 0
    failures: int = 0  # down intervals starting inside the window


def load(path: str | Path) -> Truth:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    if header.get("type") != "header":
        raise ValueError(f"{path}: first line is not a truth header")
    records, end = [], None
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                break  # the simulator is still writing this line
            raise
        if rec["type"] == "end":
            end = dt.datetime.fromisoformat(rec["ts"])
        else:
            rec["_ts"] = dt.datetime.fromisoformat(rec["ts"])
            records.append(rec)
    return Truth(header, records, end)


def classify(header: dict[str, Any], machine: str, state: int, reason: int) -> str:
    cls = header["machines"][machine]["state_map"][str(state)]
    if cls != "running" and reason:
        cls = header["reason_classes"].get(str(reason), cls)
    return cls


def window(
    truth: Truth | str | Path, machine: str, start: dt.datetime, end: dt.datetime
) -> WindowTruth:
    """Seconds per class and counts of `machine` in [start, end)."""
    if not isinstance(truth, Truth):
        truth = load(truth)
    out = WindowTruth()
    states = truth.state_records(machine)
    for i, rec in enumerate(states):
        s = rec["_ts"]
        e = states[i + 1]["_ts"] if i + 1 < len(states) else truth.end
        if e is None:
            e = max(r["_ts"] for r in truth.records)
        cls = classify(truth.header, machine, rec["state"], rec["reason"])
        lo, hi = max(s, start), min(e, end)
        if hi > lo:
            out.seconds[cls] += (hi - lo).total_seconds()
        if (
            cls == "down"
            and start <= s < end
            and (
                i == 0
                or classify(truth.header, machine, states[i - 1]["state"], states[i - 1]["reason"])
                != "down"
            )
        ):
            out.failures += 1
    for rec in truth.records:
        if rec["type"] == "count" and rec["machine"] == machine and start <= rec["_ts"] < end:
            out.good += rec["good"]
            out.reject += rec["reject"]
            out.total += rec["total"]
    return out


def value_at(truth: Truth, machine: str, key: str, at: dt.datetime) -> Any:
    """The value of `key` (state, reason, *_counter, temperature...) in force at `at`."""
    value = None
    for ts, snap in snapshots(truth, machine):
        if ts > at:
            break
        value = snap.get(key)
    return value


def snapshots(truth: Truth, machine: str) -> list[tuple[dt.datetime, dict[str, Any]]]:
    """Every instant's full PLC picture of `machine` (unwrapped counters), after each record.

    A front end read in one request (a Modbus block, an OPC UA read of several nodes at one
    source time) must equal one of these.
    """
    start = truth.header["machines"][machine].get("counter_start", 0)
    now: dict[str, Any] = dict.fromkeys(("good_counter", "reject_counter", "total_counter"), start)
    out: list[tuple[dt.datetime, dict[str, Any]]] = []
    for rec in truth.records:
        if rec["machine"] != machine:
            continue
        if rec["type"] == "reset":
            now.update(dict.fromkeys(("good_counter", "reject_counter", "total_counter"), 0))
        else:
            now.update(
                {
                    k: v
                    for k, v in rec.items()
                    if k not in ("type", "t", "ts", "_ts", "machine", "good", "reject", "total")
                }
            )
        if out and out[-1][0] == rec["_ts"]:
            out[-1] = (rec["_ts"], dict(now))
        else:
            out.append((rec["_ts"], dict(now)))
    return out
