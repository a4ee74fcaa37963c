"""Issue 13: a stop whose reason the operator acknowledges (the reason tag goes to 0) while the
machine is still stopped.

Rule 3 (docs/kpi.md "Stop reasons"): the reason of a run of one PLC state value is the last
configured code among the one in effect at the run's start and those written during it; 0 is
not in the reason table, so it never overrides the real code. The whole stop is explained by
its reason, whatever part of it a window (or a rollup refresh) looks at. So for windows that
start long after the stop began (a shift starting mid-stop, a window 300 s into the stop), and
for rollup minutes computed by refreshes that start after the stop began (a live collector:
readings written up to `now`, a refresh at `now`, again), down time, failure events, MTTR and the
downtime Pareto must all give the stop's seconds inside the window under its reason, on the raw
path and on the rollup path.

The story (short_stop_s 120, max_gap_s 60, state and reason re-recorded every 30 s as the
collector's heartbeat does; shift 06:00-14:00, Monday):

    05:00        running
    05:55:00     stop A: PLC state STOP, reason R       (300 s before the shift starts)
    05:56:00     operator acknowledges: reason 0        (A still stopped)
    06:02:00     running, reason 0                      (A lasted 420 s, 120 s of it in the shift)
    07:00:00     stop B: PLC state STOP, reason R
    07:01:00     reason 0                               (B still stopped)
    07:07:00     running                                (B lasted 420 s)
    08:30        end of data

Parametrized over (STOP, R): a down state with a failure reason (the class stays down, only
the reason is at stake), a down state with an idle reason (the reason turns the stop into idle
time) and an idle state with a failure reason (the reason turns it into down time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
import pytest

from config import ShopfloorConfig
from kpi import Kpis
from storage import rollups
from storage.engine import DowntimeRow, KpiEngine
from tests.engine.plant import M, plant_config, refresh, setup_db, shift, write
from tests.kpi.builders import DOWN, IDLE, RUN, Sample, at, heartbeat

DAY = "2026-03-02"  # a Monday
FAILURE, STARVED = 10, 20  # tests/engine/plant.py REASONS: 10 jam (failure), 20 starved (idle)
ACK = 0  # not in the reason table: "no reason"


def t(clock: str) -> dt.datetime:
    return at(DAY, clock)


END = t("08:30")  # last data
NOW = t("09:00")
STOPS = [(t("05:55"), t("06:02"), t("05:56")), (t("07:00"), t("07:07"), t("07:01"))]


@dataclass(frozen=True)
class Case:
    stop_state: int
    reason: int
    time_class: str  # what the reason makes of the stop: down or idle

    @property
    def id(self) -> str:
        return f"state{self.stop_state}-reason{self.reason}-{self.time_class}"


CASES = [
    Case(DOWN, FAILURE, "down"),  # the class stays down: only the reason is at stake
    Case(DOWN, STARVED, "idle"),  # an idle reason makes the down state idle time
    Case(IDLE, FAILURE, "down"),  # a failure reason makes the idle state down time
]


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    stop_s: float  # seconds of the stops inside the window's productive time (06:00-14:00)
    starts: int  # stops starting inside it in productive time (failure events when down)
    stops: int  # stops with productive time in it (downtime rows' events)
    why: str


WINDOWS = [
    Window(t("06:00"), t("07:00"), 120, 0, 1, "the shift starts 300 s into stop A"),
    Window(t("07:05"), t("08:00"), 120, 0, 1, "starts 300 s into stop B"),
    Window(t("07:02:30"), t("07:30"), 270, 0, 1, "starts 150 s into B, off the minute"),
    Window(t("06:01"), t("07:06:15"), 60 + 375, 1, 2, "360 s into A, to 375 s into B"),
    Window(t("07:00"), t("08:00"), 420, 1, 1, "the whole of B"),
    Window(t("05:00"), t("09:00"), 120 + 420, 1, 2, "everything (A starts outside the shift)"),
]


def story(case: Case) -> dict[tuple[str, str], list[Sample]]:
    """State and reason readings, each re-recorded every 30 s."""
    state_changes: list[tuple[dt.datetime, int | None]] = [(t("05:00"), RUN)]
    reason_changes: list[tuple[dt.datetime, int | None]] = [(t("05:00"), ACK)]
    for begin, end, ack in STOPS:
        state_changes += [(begin, case.stop_state), (end, RUN)]
        reason_changes += [(begin, case.reason), (ack, ACK)]
    return {
        ("m1", "state"): heartbeat(state_changes, until=END),
        ("m1", "reason"): heartbeat(reason_changes, until=END),
    }


def until(
    series: dict[tuple[str, str], list[Sample]], lo: dt.datetime, hi: dt.datetime
) -> dict[tuple[str, str], list[Sample]]:
    """The readings stamped in [lo, hi): what a live collector has stored by `hi`."""
    return {key: [(ts, v) for ts, v in samples if lo <= ts < hi] for key, samples in series.items()}


def expected(case: Case, w: Window) -> dict[str, object]:
    """The whole-history answer: the stop seconds inside the window, under reason R."""
    down = case.time_class == "down"
    events = w.starts if down else 0
    return {
        "down_time_s": w.stop_s if down else 0.0,
        "idle_time_s": 0.0 if down else w.stop_s,
        "failure_events": events,
        "mttr_s": w.stop_s / events if events else None,
        "downtime": [(case.reason, case.time_class, w.stop_s, w.stops)],
    }


def figures(k: Kpis, rows: list[DowntimeRow]) -> dict[str, object]:
    return {
        "down_time_s": k.down_time_s,
        "idle_time_s": k.idle_time_s,
        "failure_events": k.failure_events,
        "mttr_s": k.mttr_s,
        "downtime": [(r.reason, r.time_class, r.duration_s, r.events) for r in rows],
    }


async def answers(
    conn: psycopg.AsyncConnection,
    cfg: ShopfloorConfig,
    w: Window,
    now: dt.datetime,
    *,
    use_rollups: bool,
) -> tuple[dict[str, object], list[str]]:
    """The window's figures, and where they disagree with each other: the Pareto's down and
    idle rows must add up to the KPIs' down and idle time, and PBT to its parts."""
    engine = KpiEngine(cfg, use_rollups=use_rollups)
    k = await engine.machine(conn, "m1", w.start, w.end, now=now)
    rows = await engine.downtime(conn, "machine", "m1", w.start, w.end, now=now)
    by_class: dict[str, float] = {}
    for r in rows:
        by_class[r.time_class] = by_class.get(r.time_class, 0.0) + r.duration_s
    pairs = {
        "pareto down vs down_time_s": (by_class.get("down", 0.0), k.down_time_s),
        "pareto idle vs idle_time_s": (by_class.get("idle", 0.0), k.idle_time_s),
        "PBT vs run + down + idle + setup": (
            k.planned_busy_time_s,
            k.run_time_s + k.down_time_s + k.idle_time_s + k.setup_time_s,
        ),
    }
    disagree = [f"{name}: {a} != {b}" for name, (a, b) in pairs.items() if abs(a - b) > 1e-6]
    return figures(k, rows), disagree


def path(use_rollups: bool) -> str:
    return "rollups" if use_rollups else "raw"


def compare(
    where: str,
    now: dt.datetime,
    w: Window,
    answer: tuple[dict[str, object], list[str]],
    want: dict[str, object],
) -> list[str]:
    """One line per window whose figures differ from the whole-history answer or from each
    other."""
    got, disagree = answer
    wrong = [f"{k} got {got[k]!r} want {want[k]!r}" for k in want if got[k] != want[k]]
    if not wrong and not disagree:
        return []
    span = f"[{w.start:%H:%M:%S}, {w.end:%H:%M:%S})"
    return [f"{where} now={now:%H:%M:%S} {span} ({w.why}): " + "; ".join(wrong + disagree)]


def report(problems: list[str]) -> str:
    head = problems[:40]
    more = f"\n... and {len(problems) - len(head)} more" if len(problems) > len(head) else ""
    return f"{len(problems)} wrong answers:\n" + "\n".join(head) + more


def mid_stop_windows(now: dt.datetime) -> list[Window]:
    """While a stop is in progress (once it is longer than short_stop_s) and a little after:
    a window from the stop's start (the shift's start for A) and one from 150 s into it."""
    out = []
    for begin, end, _ in STOPS:
        lo = max(begin, t("06:00"))
        late = begin + dt.timedelta(seconds=150)  # > begin + short_stop_s
        if not (late <= now < end + dt.timedelta(seconds=240) and lo < now):
            continue
        so_far = (min(now, end) - lo).total_seconds()
        after = now + dt.timedelta(minutes=5)
        out.append(Window(lo, after, so_far, int(lo == begin), 1, "from the stop's start"))
        if late > lo:
            out.append(Window(late, after, so_far - 150, 0, 1, "from 150 s into the stop"))
    return out


def plant() -> ShopfloorConfig:
    return plant_config([M("m1", counters={})], shifts=[shift("early", "06:00", "14:00")])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_acknowledged_reason_raw_path(database_url: str, case: Case) -> None:
    """Raw samples only: each window's figures are the whole-history answer."""
    cfg = plant()
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, story(case))
    problems: list[str] = []
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for w in WINDOWS:
            got = await answers(conn, cfg, w, NOW, use_rollups=False)
            problems += compare("raw", NOW, w, got, expected(case, w))
    assert not problems, report(problems)


def live_nows() -> list[dt.datetime]:
    """A collector refreshing every 10 s (settings.rollups.interval_s) around both stops, then
    now and then."""
    nows = []
    for begin, end, _ in STOPS:
        n = begin - dt.timedelta(seconds=35)
        while n < end + dt.timedelta(seconds=240):
            nows.append(n)
            n += dt.timedelta(seconds=10)
    return [*nows, t("07:30"), t("08:00:05"), t("08:40"), NOW]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_acknowledged_reason_rollups_refreshed_live(database_url: str, case: Case) -> None:
    """Readings arrive in order and the rollups are refreshed as they come, so most refreshes
    start after the stop began; at every `now` during a stop and at the end, the rollup path
    gives the whole-history answer (and the raw path the same)."""
    cfg = plant()
    ids = setup_db(database_url, cfg)
    data = story(case)
    written = t("00:00")
    during: list[str] = []  # wrong answers while the stops were in progress
    problems: list[str] = []  # wrong answers at the end
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for now in live_nows():
            await write(database_url, ids, until(data, written, now))
            written = now
            await refresh(conn, cfg, now)
            for w in mid_stop_windows(now):
                want = expected(case, w)
                for use_rollups in (False, True):
                    got = await answers(conn, cfg, w, now, use_rollups=use_rollups)
                    during += compare(path(use_rollups), now, w, got, want)
        covered = await rollups.covered_until(conn, ["m1"], kpi=cfg.settings.kpi)
        assert covered["m1"] is not None and covered["m1"] >= t("08:00")  # rollups in use
        for w in WINDOWS:
            for use_rollups in (True, False):
                got = await answers(conn, cfg, w, NOW, use_rollups=use_rollups)
                problems += compare(path(use_rollups), NOW, w, got, expected(case, w))
    assert not problems + during, report(problems + during)
