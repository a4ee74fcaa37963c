"""KPI formulas of KPI.md §3 (machine) and §4 (serial line), computed from window sums.

Null rules follow KPI.md exactly; a KPI that needs a count that is not measured (fewer than
two of good/reject/total configured) is null too, flagged `counts_incomplete`. OEE is computed
as good x ideal cycle / PBT, which equals A x P x Q whenever all three are defined and stays
defined (with P null, flag `counts_without_run`) when parts were counted without run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from config.plant import Line
from kpi.counts import Counts
from kpi.flags import FlagCounts, add_flags, render
from kpi.sums import Sums, TimeSums

PERFORMANCE_FLAG_ABOVE = 1.05


@dataclass(slots=True)
class Kpis:
    """KPI.md field names; times in seconds, ratios as fractions, None where undefined."""

    planned_time_s: float
    planned_stop_s: float
    unknown_time_s: float
    planned_busy_time_s: float
    unscheduled_run_s: float
    run_time_s: float
    short_stop_s: float
    down_time_s: float
    idle_time_s: float
    setup_time_s: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    throughput_per_hour: float | None
    scrap_ratio: float | None
    mtbf_s: float | None
    mttr_s: float | None
    good_count: int | None
    reject_count: int | None
    total_count: int | None
    failure_events: int
    flags: list[str] = field(default_factory=list)
    flag_counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """= dataclasses.asdict(self), without its deep copy field by field (the API calls it
        per series bucket)."""
        out: dict[str, object] = {name: getattr(self, name) for name in _KPI_FIELDS}
        out["flags"] = list(self.flags)
        out["flag_counts"] = dict(self.flag_counts)
        return out


_KPI_FIELDS = tuple(f.name for f in fields(Kpis))


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den <= 0 else num / den


def _kpis(
    t: TimeSums,
    good: int | None,
    reject: int | None,
    total: int | None,
    ideal_good_s: float | None,
    ideal_total_s: float | None,
    flags: FlagCounts,
) -> Kpis:
    pbt, apt = t.planned_busy_time_s, t.run_time_s
    flags = dict(flags)
    if t.unscheduled_run_s > 0:
        flags["unscheduled_run"] = 1
    if t.unmapped_state_s > 0:
        flags["unmapped_state"] = 1
    performance = _ratio(ideal_total_s, apt)
    if apt <= 0 and total:
        flags["counts_without_run"] = 1
    if performance is not None and performance > PERFORMANCE_FLAG_ABOVE:
        flags["performance_gt_1"] = 1
    events = t.failure_events
    return Kpis(
        planned_time_s=t.planned_time_s,
        planned_stop_s=t.planned_stop_s,
        unknown_time_s=t.unknown_time_s,
        planned_busy_time_s=pbt,
        unscheduled_run_s=t.unscheduled_run_s,
        run_time_s=apt,
        short_stop_s=t.short_stop_s,
        down_time_s=t.down_time_s,
        idle_time_s=t.idle_time_s,
        setup_time_s=t.setup_time_s,
        availability=_ratio(apt, pbt),
        performance=performance,
        quality=_ratio(good, total),
        oee=_ratio(ideal_good_s, pbt),
        throughput_per_hour=_ratio(total, pbt / 3600),
        scrap_ratio=_ratio(reject, total),
        mtbf_s=(apt + t.setup_time_s) / events if events else None,
        mttr_s=t.down_time_s / events if events else None,
        good_count=good,
        reject_count=reject,
        total_count=total,
        failure_events=events,
        flags=render(flags) if flags else [],
        flag_counts={k: v for k, v in sorted(flags.items()) if v} if flags else {},
    )


def machine_kpis(sums: Sums) -> Kpis:
    """KPIs of one machine from its window sums."""
    c = sums.counts.completed()
    flags = add_flags(sums.times.flags, c.flags)
    return _kpis(sums.times, c.good, c.reject, c.total, c.ideal_good_s, c.ideal_total_s, flags)


def _line_cycle(line: Line, counts: Counts) -> float:
    """The constraint's ideal cycle per line unit (KPI.md §4) in the window: its ideal seconds
    per unit counted, so weighted by its output when the cycle time or its units per count
    changed; without output, its configured cycle over its configured units per count."""
    if counts.total_units and counts.ideal_total_s is not None:
        return counts.ideal_total_s / counts.total_units
    m = next(m for m in line.machines if m.id == line.constraint)
    return m.ideal_cycle_s / m.units_per_count


def line_kpis(line: Line, sums: Mapping[str, Sums]) -> Kpis:
    """KPIs of a serial line (KPI.md §4) from the window sums of every machine of the line.

    Times (PBT, APT, setup, down, failure events) are the constraint's, so the line's PBT is the
    line calendar less the constraint's PLC planned stops and unknown time, plus its unscheduled
    run (equal to the bare calendar when those are zero, as in KPI.md example D).
    Counts are in line units (each machine's counts x its units per count): good_line = Σ good
    at the output machines, total_line = good_line + Σ rejects of every machine, ideal cycle =
    the constraint's per line unit. Data flags of all machines are added up.
    """
    # one pass, no generators: it runs once per bucket of a line series (720 for 30 days hourly)
    completed: dict[str, Counts] = {}
    flags: FlagCounts = {}
    reject: int | None = 0
    for m in line.machines:
        s = sums[m.id]
        done = completed[m.id] = s.counts.completed()
        if s.times.flags or done.flags:  # adding empty flags to flags changes nothing
            flags = add_flags(flags, add_flags(s.times.flags, done.flags))
        r = done.reject_units
        reject = None if reject is None or r is None else reject + r
    good: int | None = 0
    for output in line.outputs:
        g = completed[output].good_units
        good = None if good is None or g is None else good + g
    total = None if good is None or reject is None else good + reject
    constraint = line.constraint
    cycle = _line_cycle(line, completed[constraint])
    ideal_good = None if good is None else good * cycle
    ideal_total = None if total is None else total * cycle
    return _kpis(sums[constraint].times, good, reject, total, ideal_good, ideal_total, flags)
