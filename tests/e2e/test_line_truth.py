"""Issue #6 end to end: the demo line's simulators -> Mosquitto -> collector -> TimescaleDB ->
HTTP API, compared with the simulators' truth file (`simulators.truth`, which shares no code with
the collector or the KPI engine).

Every part is real and runs as in `shopfloor demo`; the collector gets the demo config with
three deliberate changes, each so that the truth can be compared exactly (see TOLERANCES below):
- `settings.kpi.short_stop_s = 0`: at speed 20 every stop is far shorter than 120 wall seconds
  and would be moved into run time; with 0, `run_time_s` is the running seconds.
- each machine's `ideal_cycle_s` divided by the speed, as `shopfloor demo --speed` does
  (`collector.demo.at_speed`): the simulators make parts `speed` times faster on the wall clock,
  and the counter plausibility check (KPI.md §2) and performance use the ideal cycle against
  wall time.
- no calendar on line1: the simulators ignore it (`follow_calendar=False`, the test runs at any
  hour), so the whole window is planned time and a break at the hour the test runs cannot turn
  measured time into planned stop (flag `calendar_missing`).

TOLERANCES. All times are wall-clock seconds on both sides (truth `ts` and stored readings), so
latency is not multiplied by the speed here; it is one bound per protocol:
- OPC UA (filler) and MQTT (packer) readings carry the simulator's own timestamp
  (`SourceTimestamp`, payload `ts`), equal to the truth's: their state times and failure events
  must match exactly (1 ms for float sums of microsecond timestamps). MQTT sends every part as a
  delta message: its counts must match exactly.
- OPC UA counters: the subscription queue (10 per item per 0.5 s publishing interval, discard
  oldest) drops intermediate counter values when the filler makes ~20 parts per interval, so the
  last stored value before an edge may be up to one publishing interval old: the count is the
  truth's over [a, b) with a, b at most LATENCY_S before the window's edges.
- Modbus (capper, labeler): a poll every 0.5 s, stamped with the answer's arrival. The value in
  force at instant x was read in [x - LATENCY_S, x] (one poll interval plus slack for the
  simulators' publishing and the shared event loop, 0.25 s; measured delays, printed, stay
  below 0.45 s). So the stored state differs from the truth
  only within LATENCY_S after a truth transition: each class's error is at most the measure of
  those instants (computed from the truth file, not guessed). Capper and labeler flicker between
  running and starved every cycle (~25 ms wall), far below the poll period: their running/idle
  split is a sample, so only running + idle is compared against down/setup/planned. Counts are
  the truth's over [a, b) with a, b at most LATENCY_S before the edges, bounded by the truth's
  parts in those LATENCY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from collector.demo import at_speed
from config import ShopfloorConfig, load_config
from config.sources import ModbusSource, MqttSource, OpcUaSource
from localenv.mosquitto import Mosquitto, free_port
from simulators import truth as truth_mod
from simulators.runner import SimulatorThread, with_ports, with_simulation
from tests.services import eventually, services_running

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
SPEED = 20.0
SEED = 7
RUN_S = 18.0  # wall seconds inside the compared window
LATENCY_S = 0.75  # Modbus poll 0.5 s + 0.25 s slack (seen: <= 0.45 s); also OPC UA counter age
EXACT_S = 0.001
ZONE = zoneinfo.ZoneInfo("Europe/Berlin")
CLASSES = ("running", "down", "idle", "setup", "planned_stop")

# Busier than the demo (simulated seconds), so that failures, a changeover and a planned
# maintenance happen within a few hundred simulated seconds.
BUSY: dict[str, dict[str, Any]] = {
    "filler": {"mtbf": {"mean_s": 120}, "mttr": {"mean_s": 30}},
    "capper": {"mtbf": {"mean_s": 150}, "mttr": {"mean_s": 30}},
    "labeler": {
        "changeover_every": {"mean_s": 150, "distribution": "uniform", "spread": 0.2},
        "changeover": {"mean_s": 40, "distribution": "uniform", "spread": 0.3},
    },
    "packer": {
        "maintenance_every": {"mean_s": 200, "distribution": "fixed"},
        "maintenance": {"mean_s": 40, "distribution": "fixed"},
    },
}


def simulation_config(cfg: ShopfloorConfig) -> ShopfloorConfig:
    assert cfg.simulation is not None
    machines = cfg.simulation.model_dump()["machines"]
    for machine, changes in BUSY.items():
        machines[machine] = {**machines.get(machine, {}), **changes}
    return with_simulation(cfg, follow_calendar=False, machines=machines)


def collector_config(cfg: ShopfloorConfig, api_port: int) -> ShopfloorConfig:
    """The demo as the collector sees it for an exact comparison (module docstring)."""
    cfg = at_speed(cfg, SPEED)
    lines = [line.model_copy(update={"calendar": None}) for line in cfg.lines]
    s = cfg.settings
    settings = s.model_copy(
        update={
            "api": s.api.model_copy(update={"port": api_port}),
            "kpi": s.kpi.model_copy(update={"short_stop_s": 0}),
            "rollups": s.rollups.model_copy(update={"interval_s": 2}),
        }
    )
    return cfg.model_copy(update={"lines": lines, "settings": settings})


# --- truth helpers --------------------------------------------------------------------------

Interval = tuple[dt.datetime, dt.datetime, str]


def intervals(t: truth_mod.Truth, machine: str) -> list[Interval]:
    """The truth's classified intervals of `machine` (the rules of `truth.window`)."""
    recs = t.state_records(machine)
    assert t.end is not None
    out = []
    for i, rec in enumerate(recs):
        end = recs[i + 1]["_ts"] if i + 1 < len(recs) else t.end
        out.append(
            (rec["_ts"], end, truth_mod.classify(t.header, machine, rec["state"], rec["reason"]))
        )
    return out


def utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def truth_timeline(
    t: truth_mod.Truth, machine: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[str, str, str, int | None]]:
    """The truth's intervals in [start, end) as the timeline endpoint shows them: equal
    neighbours merged, cut at the edges, reason 0 ("no reason") as null."""
    out: list[list[Any]] = []
    for rec_i, rec in enumerate(recs := t.state_records(machine)):
        e = recs[rec_i + 1]["_ts"] if rec_i + 1 < len(recs) else t.end
        assert e is not None
        cls = truth_mod.classify(t.header, machine, rec["state"], rec["reason"])
        reason = rec["reason"] or None
        lo, hi = max(rec["_ts"], start), min(e, end)
        if hi <= lo:
            continue
        if out and out[-1][2:] == [cls, reason] and out[-1][1] == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi, cls, reason])
    return [(utc(a), utc(b), c, r) for a, b, c, r in out]


def blur(
    ivs: list[Interval], group: set[str], start: dt.datetime, end: dt.datetime, w: float
) -> float:
    """Seconds of [start, end) lying within `w` after a truth change into or out of `group`:
    the only instants where a reading up to `w` old can disagree with the truth about it."""
    if w <= 0:
        return 0.0
    step = dt.timedelta(seconds=w)
    spans = [
        (max(b[0], start), min(b[0] + step, end))
        for a, b in itertools.pairwise(ivs)
        if (a[2] in group) != (b[2] in group)
    ]
    total, reach = 0.0, start
    for lo, hi in sorted(spans):
        lo = max(lo, reach)
        if hi > lo:
            total += (hi - lo).total_seconds()
            reach = hi
    return total


def failure_slack(ivs: list[Interval], start: dt.datetime, end: dt.datetime, w: float) -> int:
    """Down intervals whose count a reading up to `w` late may change: starting within `w` of an
    edge, or so short (or so briefly interrupted) that polls can miss or merge them."""
    if w <= 0:
        return 0
    step = dt.timedelta(seconds=w)
    n = 0
    for i, (s, e, cls) in enumerate(ivs):
        if cls != "down":
            continue
        near_edge = any(abs((s - edge).total_seconds()) <= w for edge in (start, end))
        gap_before = next((s - p[1] for p in reversed(ivs[:i]) if p[2] == "down"), dt.timedelta.max)
        if start - step <= s < end + step and (near_edge or e - s < step or gap_before < step):
            n += 1
    return n


# --- services --------------------------------------------------------------------------------


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(workdir).start()
    try:
        yield b
    finally:
        b.stop()


def iso(t: dt.datetime) -> str:
    """ISO 8601 with the plant's UTC offset (+01:00/+02:00): the API must honour offsets."""
    return t.astimezone(ZONE).isoformat()


async def test_kpis_from_the_api_match_the_simulators_truth(
    database_url: str, tmp_path: Path
) -> None:
    demo = load_config(DEMO)
    truth_path = tmp_path / "truth.jsonl"
    with broker(tmp_path / "mosquitto") as mqtt:
        ports = {
            s.name: mqtt.port if isinstance(s, MqttSource) else free_port() for s in demo.sources
        }
        live = collector_config(with_ports(demo, ports), free_port())
        # Seconds a stored state may lag the truth (0: stamped by the simulator itself), and how
        # far before a window edge the last stored counter value may be (0: one message a part).
        by_source = {tag.machine: src for src in live.sources for tag in src.tags}
        time_lag = {
            m: 0.0 if isinstance(src, OpcUaSource | MqttSource) else LATENCY_S
            for m, src in by_source.items()
        }
        count_lag = {
            m: 0.0 if isinstance(src, MqttSource) else LATENCY_S for m, src in by_source.items()
        }
        assert [m for m, w in time_lag.items() if w] == ["capper", "labeler"]
        assert isinstance(by_source["capper"], ModbusSource)

        sims = SimulatorThread(
            simulation_config(demo),
            speed=SPEED,
            seed=SEED,
            ports=ports,
            truth_path=truth_path,
            workdir=tmp_path,
        )
        sims.start()
        api = f"http://127.0.0.1:{live.settings.api.port}/api/v1"
        try:
            async with (
                services_running(live, database_url, tmp_path / "spool"),
                httpx.AsyncClient(base_url=api, timeout=30) as client,
            ):
                known: set[str] = set()

                async def poll_states() -> None:
                    r = await client.get("/machines")
                    r.raise_for_status()
                    known.update(
                        m["id"] for m in r.json()["data"] if (m["state"] or {}).get("since")
                    )

                await eventually(
                    lambda: len(known) == 4, 30, lambda: f"states of {known}", each=poll_states
                )
                now = dt.datetime.now(dt.UTC)
                start = now.replace(microsecond=0) + dt.timedelta(seconds=2)
                end = start + dt.timedelta(seconds=RUN_S)
                await asyncio.sleep((end - now).total_seconds() + 1.5)
                await asyncio.to_thread(sims.stop)  # the truth file is complete now
                stopped = dt.datetime.now(dt.UTC)
                await stored_beyond(database_url, end, client)
                print(
                    f"\nstored {(dt.datetime.now(dt.UTC) - stopped).total_seconds():.1f} s after stop"
                )
                delays = await modbus_delays(database_url, truth_mod.load(truth_path))
                print(f"Modbus state delays (s, per truth change): max {max(delays):.3f}")
                t = truth_mod.load(truth_path)
                assert t.end is not None and t.end > end
                params = {"start": iso(start), "end": iso(end)}
                machines = {}
                for m in ("filler", "capper", "labeler", "packer"):
                    r = await client.get(f"/machines/{m}/kpis", params=params)
                    assert r.status_code == 200, r.text
                    body = r.json()
                    assert body["window"]["start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
                    assert body["window"]["end"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
                    machines[m] = body["kpis"]
                timelines = {}
                for m in ("filler", "packer"):
                    r = await client.get(f"/machines/{m}/timeline", params=params)
                    assert r.status_code == 200, r.text
                    timelines[m] = r.json()["intervals"]
                r = await client.get("/lines/line1/kpis", params=params)
                assert r.status_code == 200, r.text
                line = r.json()
        finally:
            sims.stop()

    report = []
    for m, k in machines.items():
        report.append(check_machine(t, live, m, k, start, end, time_lag[m], count_lag[m]))
    print("\n".join(report))
    for m, got in timelines.items():
        assert [(i["start"], i["end"], i["class"], i["reason_code"]) for i in got] == (
            truth_timeline(t, m, start, end)
        ), m
    check_line(t, live, line, machines, start, end, count_lag)


async def modbus_delays(url: str, t: truth_mod.Truth) -> list[float]:
    """Diagnostic, printed: for each truth state change of a Modbus machine lasting more than
    a poll, seconds until the first stored reading showing the new state value."""
    out = []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for m in ("capper", "labeler"):
            cur = await conn.execute(
                "SELECT r.time, r.value FROM readings r JOIN tags t ON t.id = r.tag_id"
                " WHERE t.machine_id = %s AND t.name = 'state' ORDER BY r.time",
                (m,),
            )
            rows = await cur.fetchall()
            recs = t.state_records(m)
            for a, b in itertools.pairwise(recs):
                if a["state"] == b["state"] or not rows or a["_ts"] < rows[0][0]:
                    continue
                nxt = recs[recs.index(b) + 1]["_ts"] if b is not recs[-1] else t.end
                if nxt is None or (nxt - b["_ts"]).total_seconds() < 0.6:
                    continue
                seen = next((r[0] for r in rows if r[0] >= b["_ts"] and r[1] == b["state"]), None)
                if seen is not None:
                    out.append((seen - b["_ts"]).total_seconds())
    return out


async def stored_beyond(url: str, end: dt.datetime, client: httpx.AsyncClient) -> None:
    """Wait until every machine has a stored reading after `end`: the collector has written
    what bounds the window (readings of one source are stored in arrival order)."""

    async def machines_done() -> set[str]:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute(
                "SELECT DISTINCT t.machine_id FROM readings r JOIN tags t ON t.id = r.tag_id"
                " WHERE r.time > %s",
                (end + dt.timedelta(seconds=LATENCY_S),),
            )
            return {row[0] for row in await cur.fetchall()}

    done: set[str] = set()

    async def each() -> None:
        done.update(await machines_done())

    await eventually(
        lambda: len(done) == 4, 30, lambda: f"readings after the window: {done}", each=each
    )


def class_seconds(k: dict[str, Any]) -> dict[str, float]:
    """A KPI answer's seconds by the truth file's class names."""
    return {
        "running": k["run_time_s"],
        "down": k["down_time_s"],
        "idle": k["idle_time_s"],
        "setup": k["setup_time_s"],
        "planned_stop": k["planned_stop_s"],
    }


def check_machine(
    t: truth_mod.Truth,
    cfg: ShopfloorConfig,
    m: str,
    k: dict[str, Any],
    start: dt.datetime,
    end: dt.datetime,
    w: float,
    count_w: float,
) -> str:
    want = truth_mod.window(t, m, start, end)
    ivs = intervals(t, m)
    window_s = (end - start).total_seconds()
    got = class_seconds(k)
    line = f"{m}: window {window_s:g} s; truth {want.seconds} good {want.good} reject {want.reject} failures {want.failures}; got {got} {k['good_count']}/{k['reject_count']} failures {k['failure_events']}"
    # The whole window is planned time (no calendar) and every instant had a known state.
    assert k["planned_time_s"] == pytest.approx(window_s, abs=EXACT_S), line
    assert k["unknown_time_s"] == pytest.approx(0, abs=EXACT_S), line
    assert k["short_stop_s"] == 0, line
    assert k["unscheduled_run_s"] == 0, line
    assert sum(want.seconds.values()) == pytest.approx(window_s, abs=EXACT_S), line
    # Times: exact for source-stamped protocols, within the truth's blur for polled ones.
    groups = (
        [{c} for c in CLASSES]
        if w == 0
        else [{"running", "idle"}, {"down"}, {"setup"}, {"planned_stop"}]
    )
    for g in groups:
        tol = blur(ivs, g, start, end, w) + EXACT_S
        assert sum(got[c] for c in g) == pytest.approx(sum(want.seconds[c] for c in g), abs=tol), (
            f"{sorted(g)} +-{tol:.3f}",
            line,
        )
    slack = failure_slack(ivs, start, end, w)
    assert abs(k["failure_events"] - want.failures) <= slack, (f"failures +-{slack}", line)
    # Counts: the truth's over [a, b), a and b at most `count_w` before the window's edges.
    lead = truth_mod.window(t, m, start - dt.timedelta(seconds=count_w), start)
    tail = truth_mod.window(t, m, end - dt.timedelta(seconds=count_w), end)
    for name, truth_n, extra, missing in (
        ("good", want.good, lead.good, tail.good),
        ("reject", want.reject, lead.reject, tail.reject),
        ("total", want.total, lead.total, tail.total),
    ):
        n = k[f"{name}_count"]
        assert truth_n - missing <= n <= truth_n + extra, (
            f"{name}: {n} not in [{truth_n - missing}, {truth_n + extra}]",
            line,
        )
    # The KPIs follow from the returned sums (KPI.md §3), with this machine's ideal cycle.
    ideal = cfg.machines()[m][1].ideal_cycle_s
    pbt = k["planned_busy_time_s"]
    assert pbt == pytest.approx(window_s - k["planned_stop_s"], abs=EXACT_S), line
    assert pbt == pytest.approx(
        k["run_time_s"] + k["down_time_s"] + k["idle_time_s"] + k["setup_time_s"], abs=EXACT_S
    ), line
    assert k["good_count"] + k["reject_count"] == k["total_count"], line
    assert k["availability"] == pytest.approx(k["run_time_s"] / pbt, rel=1e-9), line
    assert k["performance"] == pytest.approx(
        ideal * k["total_count"] / k["run_time_s"], rel=1e-9
    ), line
    assert k["quality"] == pytest.approx(k["good_count"] / k["total_count"], rel=1e-9), line
    assert k["oee"] == pytest.approx(k["good_count"] * ideal / pbt, rel=1e-9), line
    # ... and match the truth's OEE within the count and time tolerances above.
    truth_pbt = window_s - want.seconds["planned_stop"]
    tol_pbt = blur(ivs, {"planned_stop"}, start, end, w) + EXACT_S
    lo = (want.good - tail.good) * ideal / (truth_pbt + tol_pbt)
    hi = (want.good + lead.good) * ideal / (truth_pbt - tol_pbt)
    assert lo - 1e-12 <= k["oee"] <= hi + 1e-12, (f"oee {k['oee']} not in [{lo}, {hi}]", line)
    flags = set(k["flags"])
    assert "calendar_missing" in flags, line
    bad = {
        f
        for f in flags
        if f.split(":")[0]
        in (
            "counter_glitches",
            "count_mismatch",
            "unmapped_state",
            "counts_incomplete",
            "counter_resets",
        )
    }
    assert not bad, (bad, line)
    return line


def check_line(
    t: truth_mod.Truth,
    cfg: ShopfloorConfig,
    body: dict[str, Any],
    machines: dict[str, dict[str, Any]],
    start: dt.datetime,
    end: dt.datetime,
    count_lag: dict[str, float],
) -> None:
    k = body["kpis"]
    assert body["line"] == "line1"
    # The line's per-machine KPIs are the machine endpoint's.
    assert body["machines"] == machines
    # KPI.md §4: the constraint's (filler) times, the output's (packer) good count, in line
    # units: the packer counts cases of 12 bottles (units_per_count 12), the rest bottles.
    filler, packer = machines["filler"], machines["packer"]
    upc = {m: cfg.machines()[m][1].units_per_count for m in machines}
    assert upc == {"filler": 1, "capper": 1, "labeler": 1, "packer": 12}
    for f in ("planned_busy_time_s", "run_time_s", "down_time_s", "setup_time_s", "failure_events"):
        assert k[f] == filler[f], f
    assert k["good_count"] == packer["good_count"] * 12
    assert k["reject_count"] == sum(x["reject_count"] * upc[m] for m, x in machines.items())
    assert k["total_count"] == k["good_count"] + k["reject_count"]
    ideal_c = cfg.machines()["filler"][1].ideal_cycle_s
    assert k["oee"] == pytest.approx(k["good_count"] * ideal_c / k["planned_busy_time_s"], rel=1e-9)
    assert k["availability"] == pytest.approx(k["run_time_s"] / k["planned_busy_time_s"], rel=1e-9)
    # Issue #13: the line's OEE lies in the range of its machines' (it was 0.05 against
    # 0.53-0.71 when cases and bottles were added up as one unit).
    oees = [x["oee"] for x in machines.values()]
    print(f"line OEE {k['oee']:.3f}, machines {min(oees):.3f} .. {max(oees):.3f}")
    assert min(oees) <= k["oee"] <= max(oees)
    # Against the truth: filler (OPC UA) and packer (MQTT) are exact; rejects within tolerance.
    window_s = (end - start).total_seconds()
    wf = truth_mod.window(t, "filler", start, end)
    wp = truth_mod.window(t, "packer", start, end)
    truth_pbt = window_s - wf.seconds["planned_stop"]
    assert k["planned_busy_time_s"] == pytest.approx(truth_pbt, abs=EXACT_S)
    assert k["good_count"] == wp.good * 12
    assert k["oee"] == pytest.approx(wp.good * 12 * ideal_c / truth_pbt, rel=1e-6)
    lo = hi = 0
    for m in machines:
        w = truth_mod.window(t, m, start, end).reject
        lead = truth_mod.window(t, m, start - dt.timedelta(seconds=LATENCY_S), start).reject
        tail = truth_mod.window(t, m, end - dt.timedelta(seconds=LATENCY_S), end).reject
        edge = count_lag[m] > 0
        lo += (w - (tail if edge else 0)) * upc[m]
        hi += (w + (lead if edge else 0)) * upc[m]
    assert lo <= k["reject_count"] <= hi
