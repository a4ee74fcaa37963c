"""Writes the truth file: JSON lines of everything the simulators did, with published timestamps.

Line 1 is a header (format version, seed, speed, epoch and, per machine, everything needed to
classify and count without the config); then one line per event; a final `end` line marks how
far the truth reaches. docs/simulators.md describes every field.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

from config.model import ShopfloorConfig
from config.simulation import SimulationConfig
from config.sources import ModbusTag
from simulators.model import Clock, CounterReset, Event, PartDone, ProcessSample, StateChange
from simulators.values import counter_modulus, signal_of

TRUTH_VERSION = 1


def iso(ts: dt.datetime) -> str:
    """ISO 8601 UTC with microseconds, the one timestamp format all front ends publish."""
    return ts.astimezone(dt.UTC).isoformat(timespec="microseconds")


def header(cfg: ShopfloorConfig, sim: SimulationConfig, clock: Clock, seed: int) -> dict[str, Any]:
    categories = {r.code: r.category.state_class.value for r in cfg.stop_reasons}
    tags: dict[str, dict[str, Any]] = {}
    for source in cfg.sources:
        for tag in source.tags:
            entry: dict[str, Any] = {
                "source": source.name,
                "protocol": source.protocol,
                "address": tag.reading_address,
                "signal": signal_of(tag),
            }
            if tag.signal.is_count:
                entry["counter"] = tag.counter
                if tag.counter == "cumulative":
                    reg_bits = 16 * tag.register_count if isinstance(tag, ModbusTag) else None
                    bits = sim.machine(tag.machine).counter_bits
                    entry["modulus"] = counter_modulus(tag, bits, reg_bits)
            tags[tag.key] = entry
    machines = {}
    for line in cfg.lines:
        for m in line.machines:
            machines[m.id] = {
                "line": line.id,
                "ideal_cycle_s": m.ideal_cycle_s,
                "state_map": {str(k): v.value for k, v in m.state_map.items()},
                "counter_start": sim.machine(m.id).counter_start,
            }
    return {
        "type": "header",
        "version": TRUTH_VERSION,
        "seed": seed,
        "speed": clock.speed,
        "epoch": iso(clock.epoch),
        "clock": "ts = epoch + t / speed; t in simulated seconds",
        "reason_classes": {str(k): v for k, v in categories.items()},
        "machines": machines,
        "tags": tags,
        "simulation": sim.model_dump(mode="json"),
    }


def event_record(event: Event, ts: dt.datetime) -> dict[str, Any]:
    base: dict[str, Any] = {"t": round(event.t, 9), "ts": iso(ts), "machine": event.machine}
    if isinstance(event, StateChange):
        return {
            "type": "state",
            **base,
            "state": event.state,
            "class": event.state_class.value,
            "reason": event.reason,
        }
    if isinstance(event, PartDone):
        return {
            "type": "count",
            **base,
            "good": event.good,
            "reject": event.reject,
            "total": event.good + event.reject,
            "good_counter": event.good_counter,
            "reject_counter": event.reject_counter,
            "total_counter": event.total_counter,
        }
    if isinstance(event, CounterReset):
        return {"type": "reset", **base}
    if isinstance(event, ProcessSample):
        return {
            "type": "process",
            **base,
            "temperature": event.temperature,
            "pressure": event.pressure,
            "speed": event.speed,
        }
    raise TypeError(event)  # pragma: no cover


class TruthRecorder:
    """Appends records to a JSON-lines file; flushed after each batch so readers see progress."""

    def __init__(self, path: str | Path, head: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._write(head)

    def _write(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def write(self, batch: list[tuple[Event, dt.datetime]]) -> None:
        for event, ts in batch:
            self._write(event_record(event, ts))
        assert self._file is not None
        self._file.flush()

    def note(self, record: dict[str, Any]) -> None:
        """A front end's own record (Sparkplug births, rebirths); none after `close`."""
        if self._file is not None:
            self._write(record)
            self._file.flush()

    def close(self, t: float, ts: dt.datetime) -> None:
        if self._file is None:
            return
        self._write({"type": "end", "t": round(t, 9), "ts": iso(ts)})
        self._file.close()
        self._file = None
