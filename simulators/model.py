"""The deterministic machine and line model, in simulated seconds: a discrete-event simulation
of lines as chains of machines joined by buffers (docs/simulators.md, The machine model).

Nothing here knows about sockets or the wall clock except through `Clock`: the same seed and the
same start time give the same event sequence, however `advance` is sliced. Every random draw of a
machine comes from that machine's own generators, so machines (and process values) do not perturb
each other's sequences.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random
from dataclasses import dataclass, field

from config.model import ShopfloorConfig
from config.plant import Line, Machine, ReasonCategory, StateClass
from config.simulation import Duration, MachineSimulation, SimulationConfig
from simulators.calendar import planned_boundaries

CALENDAR_HORIZON = dt.timedelta(days=2)


@dataclass(frozen=True)
class Clock:
    """Maps simulated seconds to wall-clock UTC: ts = epoch + t / speed (docs/simulators.md)."""

    epoch: dt.datetime
    speed: float

    def wall(self, t: float) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=t / self.speed)

    def sim(self, wall: dt.datetime) -> float:
        return (wall - self.epoch).total_seconds() * self.speed


@dataclass(frozen=True, slots=True)
class StateChange:
    t: float
    machine: str
    state: int
    state_class: StateClass
    reason: int


@dataclass(frozen=True, slots=True)
class PartDone:
    """One finished part; counters are the PLC's cumulative values after it (before wrapping)."""

    t: float
    machine: str
    good: int
    reject: int
    good_counter: int
    reject_counter: int
    total_counter: int


@dataclass(frozen=True, slots=True)
class CounterReset:
    """A PLC restart: all counters of the machine read 0 from `t`."""

    t: float
    machine: str


@dataclass(frozen=True, slots=True)
class ProcessSample:
    t: float
    machine: str
    temperature: float
    pressure: float
    speed: float


Event = StateChange | PartDone | CounterReset | ProcessSample


def draw(rng: random.Random, d: Duration) -> float:
    if d.distribution == "fixed":
        return d.mean_s
    if d.distribution == "uniform":
        return d.mean_s * (1 + rng.uniform(-d.spread, d.spread))
    return rng.expovariate(1.0 / d.mean_s)


class SimulationError(ValueError):
    """The config cannot be simulated (a needed state class or reason code is missing)."""


@dataclass
class _MachineRun:
    """Runtime of one machine; `token` invalidates its scheduled events when a break starts."""

    machine: Machine
    params: MachineSimulation
    index: int
    states: dict[StateClass, int]
    failure_reasons: list[int]
    reasons: dict[str, int]
    rng: random.Random
    rng_process: random.Random
    state_class: StateClass | None = None
    reason: int = -1
    token: int = 0
    holding: bool = False
    wip: bool = False
    in_break: bool = False
    cycle_s: float = 0.0
    run_s: dict[str, float] = field(default_factory=dict)
    due_s: dict[str, float] = field(default_factory=dict)
    good: int = 0
    reject: int = 0
    total: int = 0
    temperature: float = 0.0
    pressure: float = 0.0


class LineModel:
    """Every line of a config; `advance(t)` returns the events up to simulated second `t`."""

    def __init__(
        self,
        cfg: ShopfloorConfig,
        clock: Clock,
        sim: SimulationConfig | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.sim = sim or cfg.simulation or SimulationConfig()
        self.seed = self.sim.seed if seed is None else seed
        self._queue: list[tuple[float, int, str, int, int, int]] = []
        self._seq = itertools.count()
        self._out: list[Event] = []
        self._now = 0.0
        self._lines: list[list[_MachineRun]] = []
        self._buffers: list[list[int]] = []
        self._capacity: list[list[int]] = []
        self._calendar_until: list[dt.datetime] = []
        known = {m.id for line in cfg.lines for m in line.machines}
        for name in self.sim.machines:
            if name not in known:
                raise SimulationError(f"simulation.machines: no machine {name!r} in any line")
        for li, line in enumerate(cfg.lines):
            runs = [self._machine_run(line, m, i) for i, m in enumerate(line.machines)]
            self._lines.append(runs)
            self._buffers.append([0] * (len(runs) - 1))
            self._capacity.append([r.params.buffer_after for r in runs[:-1]])
            for up, down in itertools.pairwise(runs):
                if up.params.buffer_after < down.params.consumes:
                    raise SimulationError(
                        f"simulation.machines.{up.machine.id}.buffer_after must hold the "
                        f"{down.params.consumes} parts {down.machine.id} consumes per cycle"
                    )
            self._calendar_until.append(clock.epoch)
            self._start_line(li, line)

    # -- construction ---------------------------------------------------------------------

    def _machine_run(self, line: Line, machine: Machine, index: int) -> _MachineRun:
        params = self.sim.machine(machine.id)
        states: dict[StateClass, int] = {}
        for value, cls in sorted(machine.state_map.items()):
            states.setdefault(cls, value)
        needed = {StateClass.RUNNING, StateClass.IDLE}
        if params.mtbf is not None:
            needed.add(StateClass.DOWN)
        if params.changeover_every is not None:
            needed.add(StateClass.SETUP)
        if params.maintenance_every is not None or (
            self.sim.follow_calendar and line.calendar is not None
        ):
            needed.add(StateClass.PLANNED_STOP)
        missing = sorted(c.value for c in needed - set(states))
        if missing:
            raise SimulationError(f"machine {machine.id!r}: state_map has no value for {missing}")
        allowed = [
            r
            for r in self.cfg.stop_reasons
            if machine.stop_reasons is None or r.code in machine.stop_reasons
        ]

        def codes(category: ReasonCategory) -> list[int]:
            return [r.code for r in allowed if r.category is category and r.code != 0]

        idle = codes(ReasonCategory.IDLE)
        failure = (
            params.failure_reasons
            if params.failure_reasons is not None
            else codes(ReasonCategory.FAILURE)
        )
        reasons = {
            "starved": _pick(params.starved_reason, idle, 0),
            "blocked": _pick(params.blocked_reason, idle[1:] or idle, 0),
            "changeover": _pick(params.changeover_reason, codes(ReasonCategory.SETUP), 0),
            "maintenance": _pick(params.maintenance_reason, codes(ReasonCategory.PLANNED), 0),
        }
        rng = random.Random(f"{self.seed}/{machine.id}/state")
        run = _MachineRun(
            machine=machine,
            params=params,
            index=index,
            states=states,
            failure_reasons=failure or [0],
            reasons=reasons,
            rng=rng,
            rng_process=random.Random(f"{self.seed}/{machine.id}/process"),
        )
        run.good = run.reject = run.total = params.counter_start
        run.temperature = (params.temperature.min + params.temperature.max) / 2
        run.pressure = (params.pressure.min + params.pressure.max) / 2
        for what, every in (
            ("failure", params.mtbf),
            ("changeover", params.changeover_every),
            ("maintenance", params.maintenance_every),
        ):
            if every is not None:
                run.run_s[what] = 0.0
                run.due_s[what] = draw(rng, every)
        return run

    def _start_line(self, li: int, line: Line) -> None:
        runs = self._lines[li]
        calendar = self.cfg.calendars.get(line.calendar) if line.calendar else None
        planned = True
        if calendar is not None and self.sim.follow_calendar:
            planned = self._schedule_calendar(li)
        for run in runs:
            self._schedule(0.0, "process", li, run.index)
            for at in run.params.counter_reset_at_s:
                self._schedule(at, "reset", li, run.index)
            if not planned:
                run.in_break = True
                self._set_state(run, StateClass.PLANNED_STOP, 0)
            else:
                self._try_start(li, run)

    def _schedule_calendar(self, li: int) -> bool:
        """Schedule the next horizon of calendar changes of line `li`; planned at its start?"""
        line = self.cfg.lines[li]
        assert line.calendar is not None
        start = self._calendar_until[li]
        end = start + CALENDAR_HORIZON
        self._calendar_until[li] = end
        planned, changes = planned_boundaries(self.cfg.calendars[line.calendar], start, end)
        for when, now_planned in changes:
            self._schedule(self.clock.sim(when), "shift_on" if now_planned else "shift_off", li, -1)
        self._schedule(self.clock.sim(end), "calendar", li, -1)
        return planned

    # -- event loop -----------------------------------------------------------------------

    def _schedule(self, t: float, kind: str, li: int, mi: int, token: int = 0) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), kind, li, mi, token))

    def next_time(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def advance(self, until: float) -> list[Event]:
        """Process every event at or before simulated second `until`; return what happened."""
        while self._queue and self._queue[0][0] <= until:
            t, _, kind, li, mi, token = heapq.heappop(self._queue)
            self._now = t
            if mi < 0:
                self._line_event(kind, li)
                continue
            run = self._lines[li][mi]
            if kind == "process":
                self._process(run)
                self._schedule(t + self.sim.process_interval_s, "process", li, mi)
            elif kind == "reset":
                run.good = run.reject = run.total = 0
                self._out.append(CounterReset(t, run.machine.id))
            elif token != run.token:
                continue  # scheduled before a break started
            elif kind == "cycle_end":
                self._cycle_end(li, run)
            elif kind in ("repair_end", "changeover_end", "maintenance_end") or (
                kind == "wake" and run.state_class is StateClass.IDLE and not run.in_break
            ):
                self._try_start(li, run)
        out, self._out = self._out, []
        return out

    def _line_event(self, kind: str, li: int) -> None:
        if kind == "calendar":
            self._schedule_calendar(li)
            return
        for run in self._lines[li]:
            run.token += 1
            if kind == "shift_off":
                if run.state_class is StateClass.RUNNING:
                    run.wip = True  # the part in work restarts after the break
                run.in_break = True
                self._set_state(run, StateClass.PLANNED_STOP, 0)
            else:
                run.in_break = False
        if kind == "shift_on":
            for run in self._lines[li]:
                self._try_start(li, run)

    # -- machine behaviour ----------------------------------------------------------------

    def _set_state(self, run: _MachineRun, cls: StateClass, reason: int) -> None:
        if (cls, reason) != (run.state_class, run.reason):
            run.state_class, run.reason = cls, reason
            self._out.append(StateChange(self._now, run.machine.id, run.states[cls], cls, reason))

    def _try_start(self, li: int, run: _MachineRun) -> None:
        if run.in_break:
            return
        t = self._now
        runs, buffers = self._lines[li], self._buffers[li]
        if run.holding and not self._push(li, run):
            self._set_state(run, StateClass.IDLE, run.reasons["blocked"])
            return
        p = run.params
        for what, cls, every, length in (
            ("failure", StateClass.DOWN, p.mtbf, p.mttr),
            ("changeover", StateClass.SETUP, p.changeover_every, p.changeover),
            ("maintenance", StateClass.PLANNED_STOP, p.maintenance_every, p.maintenance),
        ):
            if what in run.due_s and run.run_s[what] >= run.due_s[what]:
                assert every is not None
                run.run_s[what] = 0.0
                run.due_s[what] = draw(run.rng, every)
                failure = what == "failure"
                reason = run.rng.choice(run.failure_reasons) if failure else run.reasons[what]
                self._set_state(run, cls, reason)
                end = "repair_end" if failure else f"{what}_end"
                self._schedule(t + draw(run.rng, length), end, li, run.index, run.token)
                return
        if not run.wip:
            if run.index > 0:
                if buffers[run.index - 1] < p.consumes:
                    self._set_state(run, StateClass.IDLE, run.reasons["starved"])
                    return
                buffers[run.index - 1] -= p.consumes
                upstream = runs[run.index - 1]
                if upstream.holding:
                    self._schedule(t, "wake", li, upstream.index, upstream.token)
            run.wip = True
        run.cycle_s = run.machine.ideal_cycle_s * (1 + run.rng.uniform(0, p.speed_variation))
        self._set_state(run, StateClass.RUNNING, 0)
        self._schedule(t + run.cycle_s, "cycle_end", li, run.index, run.token)

    def _push(self, li: int, run: _MachineRun) -> bool:
        runs, buffers, capacity = self._lines[li], self._buffers[li], self._capacity[li]
        if run.index == len(runs) - 1:
            run.holding = False
            return True
        if buffers[run.index] >= capacity[run.index]:
            return False
        buffers[run.index] += 1
        run.holding = False
        downstream = runs[run.index + 1]
        if downstream.state_class is StateClass.IDLE:
            self._schedule(self._now, "wake", li, downstream.index, downstream.token)
        return True

    def _cycle_end(self, li: int, run: _MachineRun) -> None:
        run.wip = False
        for what in run.run_s:
            run.run_s[what] += run.cycle_s
        rejected = run.rng.random() < run.params.reject_probability
        run.total += 1
        if rejected:
            run.reject += 1
        else:
            run.good += 1
            run.holding = True
        self._out.append(
            PartDone(
                self._now,
                run.machine.id,
                int(not rejected),
                int(rejected),
                run.good,
                run.reject,
                run.total,
            )
        )
        self._try_start(li, run)

    def _process(self, run: _MachineRun) -> None:
        rng, p = run.rng_process, run.params
        run.temperature = _walk(rng, run.temperature, p.temperature.min, p.temperature.max)
        run.pressure = _walk(rng, run.pressure, p.pressure.min, p.pressure.max)
        running = run.state_class is StateClass.RUNNING and run.cycle_s > 0
        speed = round(60.0 / run.cycle_s, 2) if running else 0.0
        self._out.append(
            ProcessSample(self._now, run.machine.id, run.temperature, run.pressure, speed)
        )


def _walk(rng: random.Random, value: float, low: float, high: float) -> float:
    """Mean-reverting random walk, rounded to 2 decimals so the truth file reads cleanly."""
    mid, width = (low + high) / 2, (high - low) / 2
    value = mid + (value - mid) * 0.8 + rng.gauss(0, width * 0.2)
    return round(min(high, max(low, value)), 2)


def _pick(explicit: int | None, candidates: list[int], fallback: int) -> int:
    if explicit is not None:
        return explicit
    return candidates[0] if candidates else fallback


def simulate(
    cfg: ShopfloorConfig,
    *,
    until_s: float,
    seed: int | None = None,
    speed: float | None = None,
    epoch: dt.datetime | None = None,
) -> list[Event]:
    """Run the model offline (no sockets) for `until_s` simulated seconds; for tests and tools."""
    sim = cfg.simulation or SimulationConfig()
    start = epoch or sim.start or dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC)
    clock = Clock(start, speed if speed is not None else sim.speed)
    return LineModel(cfg, clock, sim, seed=seed).advance(until_s)
