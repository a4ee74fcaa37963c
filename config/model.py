"""The whole configuration file: plant model, sources and settings, checked across sections."""

from __future__ import annotations

from pydantic import Field

from config.plant import Calendar, Line, Machine, Model, StopReason
from config.settings import Settings
from config.simulation import SimulationConfig
from config.sources import Source, Tag


class ShopfloorConfig(Model):
    plant: str = Field(default="plant", description="plant name, shown in the API")
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    stop_reasons: list[StopReason] = Field(default_factory=list)
    lines: list[Line] = Field(min_length=1)
    sources: list[Source] = Field(default_factory=list)
    settings: Settings = Field(default_factory=Settings)
    simulation: SimulationConfig | None = None

    def reference_problems(self) -> list[tuple[str, str]]:
        """Cross-section problems as (key path, message): what one section says of another."""
        problems: list[tuple[str, str]] = []
        for i, line in enumerate(self.lines):
            if line.calendar is not None and line.calendar not in self.calendars:
                problems.append((f"lines[{i}].calendar", f"no calendar named {line.calendar!r}"))
        seen: dict[str, str] = {}
        for i, line in enumerate(self.lines):
            for j, m in enumerate(line.machines):
                if m.id in seen and seen[m.id] != line.id:
                    problems.append(
                        (
                            f"lines[{i}].machines[{j}].id",
                            f"{m.id!r} is also a machine of line {seen[m.id]!r}; "
                            "machine ids are plant-wide",
                        )
                    )
                seen.setdefault(m.id, line.id)
            if line.id in [other.id for other in self.lines[:i]]:
                problems.append((f"lines[{i}].id", f"line id {line.id!r} is used twice"))
        codes = {r.code for r in self.stop_reasons}
        for i, line in enumerate(self.lines):
            for j, m in enumerate(line.machines):
                for code in sorted(set(m.stop_reasons or []) - codes):
                    problems.append(
                        (
                            f"lines[{i}].machines[{j}].stop_reasons",
                            f"no stop reason with code {code}",
                        )
                    )
        for i, reason in enumerate(self.stop_reasons):
            if reason.code in [r.code for r in self.stop_reasons[:i]]:
                problems.append((f"stop_reasons[{i}].code", f"code {reason.code} is used twice"))
        keys: dict[str, str] = {}
        for si, source in enumerate(self.sources):
            if source.name in [s.name for s in self.sources[:si]]:
                problems.append(
                    (f"sources[{si}].name", f"source name {source.name!r} is used twice")
                )
            for ti, tag in enumerate(source.tags):
                where = f"sources[{si}].tags[{ti}]"
                if tag.machine not in seen:
                    problems.append((f"{where}.machine", f"no machine {tag.machine!r} in any line"))
                if tag.key in keys:
                    problems.append(
                        (where, f"tag {tag.key!r} is already defined at {keys[tag.key]}")
                    )
                keys.setdefault(tag.key, where)
        if self.simulation is not None:
            for machine_id, sim in self.simulation.machines.items():
                where = f"simulation.machines.{machine_id}"
                if machine_id not in seen:
                    problems.append((where, f"no machine {machine_id!r} in any line"))
                for key in (
                    "failure_reasons",
                    "changeover_reason",
                    "maintenance_reason",
                    "starved_reason",
                    "blocked_reason",
                ):
                    value = getattr(sim, key)
                    for code in value if isinstance(value, list) else [value]:
                        if code is not None and code not in codes:
                            problems.append((f"{where}.{key}", f"no stop reason with code {code}"))
        return problems

    def machines(self) -> dict[str, tuple[Line, Machine]]:
        """Every machine by id, with its line."""
        return {m.id: (line, m) for line in self.lines for m in line.machines}

    def tags(self) -> list[tuple[str, Tag]]:
        """Every tag with its source name, in file order."""
        return [(s.name, t) for s in self.sources for t in s.tags]
