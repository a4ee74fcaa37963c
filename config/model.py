"""The whole configuration file: plant model, sources and settings, checked across sections."""

from __future__ import annotations

from pydantic import Field

from config.plant import Calendar, Line, Machine, Model, StopReason
from config.settings import Settings
from config.shifts import calendar_problems
from config.simulation import MachineSimulation, SimulationConfig
from config.sources import MqttSource, OpcUaSource, Source, SparkplugSource, Tag
from config.tags import SignalKind

# The stop reason codes a simulated machine names (failure_reasons, changeover_reason, ...).
REASON_FIELDS = [k for k in MachineSimulation.model_fields if k.endswith(("_reason", "_reasons"))]


def _case_twins(ident: str, other: str) -> str:
    """Ids are case-sensitive (a URL must say `M1`, not `m1`), so two that differ only by case
    would be two machines, lines or tags that people, and the API's "did you mean", mix up."""
    return f"{ident!r} and {other!r} differ only by case; rename one (ids are case-sensitive)"


class ShopfloorConfig(Model):
    plant: str = Field(default="plant", description="plant name, shown in the API")
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    stop_reasons: list[StopReason] = Field(default_factory=list)
    lines: list[Line] = Field(
        default_factory=list,
        description="none: a config for `shopfloor serve` over a central database's plant",
    )
    sources: list[Source] = Field(default_factory=list)
    settings: Settings = Field(default_factory=Settings)
    simulation: SimulationConfig | None = None

    def reference_problems(self) -> list[tuple[str, str]]:
        """Problems as (key path, message) that no single model sees: what one key or section
        says of another (names, codes, machines), and the calendars' shifts as a whole."""
        return [
            *self._calendar_problems(),
            *self._line_problems(),
            *self._stop_reason_problems(),
            *self._tag_problems(),
            *self._signal_problems(),
            *self._simulation_problems(),
        ]

    def security_warnings(self) -> list[tuple[str, str]]:
        """(key path, message) wherever security is off on a network: OPC UA policy None, an
        MQTT password without TLS, a database connection with SSL disabled. Not errors: a
        plant may accept them on a closed cell network, but should know."""
        warnings = [
            (f"settings.database.{path}", message)
            for path, message in self.settings.database.security_warnings()
        ]
        for i, source in enumerate(self.sources):
            if isinstance(source, OpcUaSource | MqttSource | SparkplugSource):
                warnings += [(f"sources[{i}].{p}", m) for p, m in source.security_warnings()]
        return warnings

    def _calendar_problems(self) -> list[tuple[str, str]]:
        return [
            (f"calendars.{name}.{path}", message)
            for name, calendar in self.calendars.items()
            for path, message in calendar_problems(calendar)
        ]

    def _line_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        # keyed by id.casefold(): ids that differ only by case are refused (_case_twins)
        machine_ids: dict[str, tuple[str, str]] = {}  # -> (id, its line)
        line_ids: dict[str, str] = {}
        for i, line in enumerate(self.lines):
            if line.calendar is not None and line.calendar not in self.calendars:
                problems.append((f"lines[{i}].calendar", f"no calendar named {line.calendar!r}"))
            for j, m in enumerate(line.machines):
                other, other_line = machine_ids.setdefault(m.id.casefold(), (m.id, line.id))
                if other != m.id:
                    problems.append((f"lines[{i}].machines[{j}].id", _case_twins(m.id, other)))
                elif other_line != line.id:
                    problems.append(
                        (
                            f"lines[{i}].machines[{j}].id",
                            f"{m.id!r} is also a machine of line {other_line!r}; "
                            "machine ids are plant-wide",
                        )
                    )
            key = line.id.casefold()
            if key in line_ids:
                other = line_ids[key]
                twice = f"line id {line.id!r} is used twice"
                problems.append(
                    (f"lines[{i}].id", twice if other == line.id else _case_twins(line.id, other))
                )
            line_ids.setdefault(key, line.id)
        return problems

    def _stop_reason_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        codes: set[int] = set()
        for i, reason in enumerate(self.stop_reasons):
            if reason.code in codes:
                problems.append((f"stop_reasons[{i}].code", f"code {reason.code} is used twice"))
            codes.add(reason.code)
        for i, line in enumerate(self.lines):
            for j, m in enumerate(line.machines):
                for code in sorted(set(m.stop_reasons or []) - codes):
                    problems.append(
                        (
                            f"lines[{i}].machines[{j}].stop_reasons",
                            f"no stop reason with code {code}",
                        )
                    )
        return problems

    def _tag_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        machines = self.machines()
        names: set[str] = set()
        keys: dict[str, tuple[str, str]] = {}  # by key.casefold(): (key, where defined)
        for si, source in enumerate(self.sources):
            if source.name in names:
                problems.append(
                    (f"sources[{si}].name", f"source name {source.name!r} is used twice")
                )
            names.add(source.name)
            # Tags may share an address (each gets every reading); it is read once, so they
            # must read it the same way.
            shared: dict[str, tuple[str, dict[str, object]]] = {}
            for ti, tag in enumerate(source.tags):
                where = f"sources[{si}].tags[{ti}]"
                at, options = shared.setdefault(tag.reading_address, (where, tag.read_options))
                differ = [k for k, v in tag.read_options.items() if options.get(k) != v]
                if differ:
                    problems.append(
                        (
                            f"{where}.{differ[0]}",
                            f"the tag at {at} reads the same address "
                            f"{tag.reading_address!r}; tags on one address are read once, so "
                            f"they need the same {' and '.join(differ)}",
                        )
                    )
                if tag.machine not in machines:
                    problems.append((f"{where}.machine", f"no machine {tag.machine!r} in any line"))
                first, at = keys.setdefault(tag.key.casefold(), (tag.key, where))
                if first != tag.key:
                    problems.append((f"{where}.name", _case_twins(tag.key, first)))
                elif at != where:
                    problems.append((where, f"tag {tag.key!r} is already defined at {at}"))
        return problems

    def _signal_problems(self) -> list[tuple[str, str]]:
        """One tag per KPI signal and machine: two state tags would interleave two truths."""
        problems: list[tuple[str, str]] = []
        first: dict[tuple[str, SignalKind], str] = {}
        for si, source in enumerate(self.sources):
            for ti, tag in enumerate(source.tags):
                if tag.signal is SignalKind.MEASUREMENT:
                    continue
                where = f"sources[{si}].tags[{ti}]"
                other = first.setdefault((tag.machine, tag.signal), where)
                if other != where:
                    problems.append(
                        (
                            f"{where}.signal",
                            f"machine {tag.machine!r} already has its {tag.signal.value} tag "
                            f"at {other}; a KPI signal comes from one tag",
                        )
                    )
        return problems

    def _simulation_problems(self) -> list[tuple[str, str]]:
        if self.simulation is None:
            return []
        problems: list[tuple[str, str]] = []
        machines = self.machines()
        codes = {r.code for r in self.stop_reasons}
        for machine_id, sim in self.simulation.machines.items():
            where = f"simulation.machines.{machine_id}"
            if machine_id not in machines:
                problems.append((where, f"no machine {machine_id!r} in any line"))
            for key in REASON_FIELDS:
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

    def shares_subscriptions(self) -> bool:
        """Whether every source is an MQTT shared subscription group's member: then several
        collectors run this one config, each storing its share of the messages."""
        return bool(self.sources) and all(
            isinstance(s, MqttSource) and s.shared_group is not None for s in self.sources
        )
