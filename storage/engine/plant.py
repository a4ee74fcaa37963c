"""The plant as the engine sees it: machines with their line, calendar and reason table.

Built once from the configuration (the database's plant tables are synced from it), so a
request never reads the plant model from the database; only tag ids and cycle histories come
from there (through storage.samples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from config import ShopfloorConfig
from config.plant import Calendar, Line, Machine, StopReason
from storage.engine.errors import BadKind, UnknownEntity
from storage.samples import ReasonRule, reason_rule


@dataclass(frozen=True)
class Plant:
    cfg: ShopfloorConfig

    @property
    def reason_table(self) -> Mapping[int, StopReason]:
        return {r.code: r for r in self.cfg.stop_reasons}

    @cached_property
    def reason_rules(self) -> dict[str, ReasonRule]:
        """Per machine id, what looking back for a stop's reason needs (storage.samples)."""
        return {m.id: reason_rule(self.cfg, m) for line in self.cfg.lines for m in line.machines}

    def line(self, line_id: str) -> Line:
        for line in self.cfg.lines:
            if line.id == line_id:
                return line
        raise UnknownEntity("line", line_id)

    def machine(self, machine_id: str) -> tuple[Line, Machine]:
        found = self.cfg.machines().get(machine_id)
        if found is None:
            raise UnknownEntity("machine", machine_id)
        return found

    def members(self, kind: str, ident: str) -> tuple[Line, list[str]]:
        """The line of a line or a machine, and the machines whose readings make its KPIs."""
        if kind == "line":
            line = self.line(ident)
            return line, [m.id for m in line.machines]
        if kind == "machine":
            return self.machine(ident)[0], [ident]
        raise BadKind(f"bad kind {kind!r}: use 'line' or 'machine'")

    def calendar(self, line: Line) -> Calendar | None:
        return self.cfg.calendars.get(line.calendar) if line.calendar else None

    def machine_ids(self) -> list[str]:
        return [m.id for line in self.cfg.lines for m in line.machines]
