"""Issue #17 end to end: three edge collectors (one line each, over OPC UA, Modbus TCP and MQTT)
writing into one central database, and one central API over the whole plant.

Every part is real: the simulators over real sockets, Mosquitto, `shopfloor collect`, `run` and
`serve` processes as a plant runs them, one TimescaleDB. The plant: tests/e2e/central_plant.py.

- Ownership: restarts in any order leave every edge's line active and served (a sync used to
  switch every other edge's lines off), and a config declaring another edge's line is refused at
  start and by `shopfloor check`, naming the owner, with nothing changed.
- The edge link: one edge loses the central database for OUTAGE_S while the two others write on.
  Its readings are then all stored, exactly once (checked against the simulators' truth file on
  the signals whose comparison is exact: MQTT delta counts and source-stamped states); the other
  two never spool, and their readings of the outage are stored before it ends.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from config import load_config
from localenv.mosquitto import Mosquitto, free_port
from simulators import truth as truth_mod
from simulators.runner import SimulatorThread
from tests.e2e.central_plant import (
    EDGES,
    SPEED,
    Shopfloor,
    collector,
    edge_document,
    health,
    plant_document,
    plant_revision,
    query,
    synced_at,
    write_yaml,
)
from tests.edges import line_of
from tests.services import database_link, eventually, run_shopfloor, unique

OUTAGE_S = 120.0  # how long the cut edge has no database
LATENCY = dt.timedelta(seconds=1.5)  # OPC UA publishing 0.5 s, Modbus poll 0.5 s, with margin
MODBUS_TIMEOUT = dt.timedelta(seconds=1)  # a Modbus reading's value may be this younger
SYNC_WITHIN_S = 60.0  # a started collector has synced its plant (hang guard)


# --- the plant ---------------------------------------------------------------------------------


class Plant:
    """The plant's files and processes in `workdir`; everything started is stopped after."""

    def __init__(self, workdir: Path, url: str, broker: Mosquitto) -> None:
        self.workdir, self.url = workdir, url
        ports = {"filler-plc": free_port(), "capper-plc": free_port()}
        ports["packer-gateway"] = broker.port
        self.doc = plant_document(ports, unique("central"))
        self.sim_config = load_config(write_yaml(workdir / "plant.yaml", self.doc))
        self.configs = {
            edge: write_yaml(workdir / f"{edge}.yaml", edge_document(self.doc, edge))
            for edge in EDGES
        }
        self.truth_path = workdir / "truth.jsonl"
        self.sims = SimulatorThread(
            self.sim_config, speed=SPEED, truth_path=self.truth_path, workdir=workdir
        )
        self.processes: list[Shopfloor] = []

    def edge(self, name: str, *, url: str | None = None, api_port: int | None = None) -> Shopfloor:
        p = collector(name, self.configs[name], url or self.url, self.workdir, api_port=api_port)
        self.processes.append(p)
        return p

    def central_api(self, port: int) -> Shopfloor:
        """`shopfloor serve` with a config that declares no lines: the database's plant."""
        config = write_yaml(self.workdir / "central.yaml", {"plant": "Central test plant"})
        args = ["serve", "--config", str(config), "--database-url", self.url, "--port", str(port)]
        p = Shopfloor("central", args, self.workdir / "central.log")
        self.processes.append(p)
        return p

    def logs(self) -> str:
        return "\n".join(f"=== {p.name}\n{p.text()[-6000:]}" for p in self.processes)

    def close(self) -> None:
        for p in self.processes:
            p.kill()
        self.sims.stop()


@contextlib.contextmanager
def plant(workdir: Path, url: str) -> Iterator[Plant]:
    broker = Mosquitto(workdir / "mosquitto").start()
    p = Plant(workdir, url, broker)
    try:
        yield p
    finally:
        p.close()
        broker.stop()


async def started(p: Plant, edge: Shopfloor, name: str) -> None:
    """Start `edge` and wait for its plant sync (a later one than any before, on a restart)."""
    before = synced_at(p.url).get(name)
    edge.start()

    def synced() -> bool:
        assert edge.running(), edge.text()
        now = synced_at(p.url).get(name)
        return now is not None and (before is None or now > before)

    await eventually(synced, SYNC_WITHIN_S, lambda: f"{name} synced\n{edge.text()}")


# --- what the central API serves ---------------------------------------------------------------

LINES = [(line, machine, edge) for edge, (line, machine, _) in EDGES.items()]


def tag_count(p: Plant, edge: str) -> int:
    return sum(len(s["tags"]) for s in edge_document(p.doc, edge)["sources"])


def assert_every_edge_owns_its_line_active(p: Plant) -> None:
    """The database: each edge's line, machine and tags active and its own; nothing else."""
    lines = query(p.url, "SELECT id, edge, active FROM lines ORDER BY id")
    assert lines == [(line, edge, True) for line, _, edge in LINES]
    machines = query(p.url, "SELECT id, line_id, edge, active FROM machines ORDER BY line_id")
    assert machines == [(m, line, edge, True) for line, m, edge in LINES]
    tags = query(
        p.url,
        "SELECT m.edge, count(*) FILTER (WHERE t.active), count(*) FROM tags t "
        "JOIN machines m ON m.id = t.machine_id GROUP BY m.edge ORDER BY m.edge",
    )
    assert tags == [(edge, tag_count(p, edge), tag_count(p, edge)) for edge in EDGES]


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_second(t: dt.datetime, up: bool = False) -> dt.datetime:
    s = math.ceil(t.timestamp()) if up else math.floor(t.timestamp())
    return dt.datetime.fromtimestamp(s, dt.UTC)


async def assert_central_api_serves_every_line(
    p: Plant, client: httpx.AsyncClient, since: dt.datetime
) -> None:
    """After the plant model it read is the database's latest: every line, in the lines list,
    the overview, and a KPI call each (with parts made since `since`)."""
    got: dict[str, Any] = {}

    async def plant_read() -> None:
        got.update((await client.get("/healthz")).json().get("plant") or {})

    await eventually(
        lambda: got.get("revision") == plant_revision(p.url),
        30,
        lambda: f"central API read revision {plant_revision(p.url)}: {got}",
        each=plant_read,
    )
    assert got["edges"] == sorted(EDGES) and got["lines"] == len(LINES), got
    r = await client.get("/api/v1/lines")
    assert r.status_code == 200, r.text
    served = [(x["id"], [m["id"] for m in x["machines"]]) for x in r.json()["data"]]
    assert served == [(line, [m]) for line, m, _ in LINES]
    r = await client.get("/api/v1/overview")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(LINES)
    assert [x["id"] for x in body["data"]] == [line for line, _, _ in LINES]
    end = whole_second(dt.datetime.now(dt.UTC))
    for line, machine, _ in LINES:
        r = await client.get(
            f"/api/v1/lines/{line}/kpis", params={"start": iso(since), "end": iso(end)}
        )
        assert r.status_code == 200, r.text
        k = r.json()
        assert k["line"] == line and list(k["machines"]) == [machine]
        assert k["kpis"]["total_count"] > 0, (line, k)


@contextlib.asynccontextmanager
async def api_client(port: int) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client


async def every_machine_has_a_state(client: httpx.AsyncClient) -> None:
    seen: set[str] = set()

    async def poll() -> None:
        r = await client.get("/api/v1/machines")
        if r.status_code == 200:
            seen.update(m["id"] for m in r.json()["data"] if (m["state"] or {}).get("since"))

    await eventually(lambda: len(seen) == len(LINES), 30, lambda: f"states of {seen}", each=poll)


def stored(url: str, machine: str, tag: str) -> list[tuple[dt.datetime, float]]:
    return [
        (t, v)
        for t, v in query(
            url,
            "SELECT r.time, r.value FROM readings r JOIN tags t ON t.id = r.tag_id "
            "WHERE t.machine_id = %s AND t.name = %s ORDER BY r.time",
            (machine, tag),
        )
    ]


def made_parts(url: str, since: dt.datetime) -> bool:
    """Every machine has stored a part made after `since` (a counter moved, or a case), before
    the last whole second: a line KPI window from `since` to now counts it."""
    end = whole_second(dt.datetime.now(dt.UTC))
    moved = query(
        url,
        "SELECT t.machine_id, count(DISTINCT r.value) FROM readings r "
        "JOIN tags t ON t.id = r.tag_id WHERE t.name = 'good_count' AND r.time >= %s "
        "AND r.time < %s GROUP BY t.machine_id",
        (since, end),
    )
    need = {"filler": 2, "capper": 2, "packer": 1}  # counters: two values; MQTT: one case
    return all(dict(moved).get(m, 0) >= n for m, n in need.items())


def stored_after(url: str, machine: str, t: dt.datetime) -> bool:
    return any(when > t for when, _ in stored(url, machine, "good_count"))


def packer_events(truth: truth_mod.Truth) -> list[dict[str, Any]]:
    return [r for r in truth.records if r["type"] == "count" and r["machine"] == "packer"]


# --- 1. restarts in any order ------------------------------------------------------------------


async def test_three_edges_one_database_every_line_served_after_any_restart_order(
    database_url: str, tmp_path: Path
) -> None:
    with plant(tmp_path, database_url) as p:
        api_port = free_port()
        central = p.central_api(api_port)
        central.start()  # before any edge: the database is still empty
        edges = {name: p.edge(name) for name in EDGES}
        async with api_client(api_port) as client:
            answer: dict[str, Any] = {}

            async def ask() -> None:
                with contextlib.suppress(httpx.TransportError):
                    r = await client.get("/api/v1/lines")
                    answer.update(status=r.status_code, body=r.json())

            await eventually(lambda: "status" in answer, 30, central.text, each=ask)
            # Nothing read yet: "no lines" would be a lie.
            assert answer["status"] == 503, answer
            assert answer["body"]["error"]["code"] == "database_unavailable", answer

            for name in EDGES:  # first order: 1, 2, 3
                await started(p, edges[name], name)
            p.sims.start()
            since = whole_second(dt.datetime.now(dt.UTC), up=True)
            await every_machine_has_a_state(client)
            await eventually(
                lambda: made_parts(p.url, since), 30, lambda: f"parts since {since}\n{p.logs()}"
            )
            assert_every_edge_owns_its_line_active(p)
            await assert_central_api_serves_every_line(p, client, since)

            # Then: stop 2, restart 3, restart 1, start 2. After each, all three active.
            assert await edges["line2-pc"].stop() == 0, edges["line2-pc"].text()
            assert_every_edge_owns_its_line_active(p)
            await assert_central_api_serves_every_line(p, client, since)
            for name in ("line3-pc", "line1-pc"):
                assert await edges[name].stop() == 0, edges[name].text()
                await started(p, edges[name], name)
                assert_every_edge_owns_its_line_active(p)
                await assert_central_api_serves_every_line(p, client, since)
            await started(p, edges["line2-pc"], "line2-pc")
            assert_every_edge_owns_its_line_active(p)
            await assert_central_api_serves_every_line(p, client, since)

            # The MQTT line through its edge's restart: every case counted once (a persistent
            # session: the broker kept what came while the collector was away).
            await asyncio.to_thread(p.sims.stop)
            truth = truth_mod.load(p.truth_path)
            assert truth.end is not None
            events = packer_events(truth)
            await eventually(
                lambda: len(stored(p.url, "packer", "good_count")) == len(events),
                30,
                lambda: f"{len(events)} packer cases stored\n{p.logs()}",
            )
            start = whole_second(truth.records[0]["_ts"])
            end = whole_second(truth.end, up=True) + dt.timedelta(seconds=1)
            await eventually(lambda: dt.datetime.now(dt.UTC) > end, 5, "the window ended")
            want = truth_mod.window(truth, "packer", start, end)
            r = await client.get(
                "/api/v1/lines/line3/kpis", params={"start": iso(start), "end": iso(end)}
            )
            assert r.status_code == 200, r.text
            k = r.json()
            assert k["machines"]["packer"]["good_count"] == want.good > 0
            assert k["machines"]["packer"]["reject_count"] == want.reject
            assert k["kpis"]["good_count"] == want.good * 12  # cases of 12 bottles

        for process in (*edges.values(), central):
            assert await process.stop() == 0, process.text()
        assert_every_edge_owns_its_line_active(p)


# --- 2. a conflicting declaration --------------------------------------------------------------


async def test_a_config_declaring_another_edges_line_is_refused_naming_the_owner(
    database_url: str, tmp_path: Path
) -> None:
    with plant(tmp_path, database_url) as p:
        owner = p.edge("line1-pc")
        await started(p, owner, "line1-pc")
        # An intruder: edge 1's line (and machine) in another edge's config, and a line of its
        # own with edge 1's machine in it.
        doc = edge_document(p.doc, "line1-pc")
        intruder = write_yaml(tmp_path / "intruder.yaml", {**doc, "settings": {"edge": "intruder"}})
        line = dict(doc["lines"][0], id="line9")
        thief = write_yaml(
            tmp_path / "thief.yaml", {**doc, "lines": [line], "settings": {"edge": "intruder"}}
        )
        tables = ("lines", "machines", "tags", "edges", "stop_reasons", "calendars")

        def snapshot() -> dict[str, Any]:
            out: dict[str, Any] = {t: query(p.url, f"SELECT * FROM {t} ORDER BY 1") for t in tables}
            out["revision"] = plant_revision(p.url)
            return out

        before = snapshot()
        assert query(p.url, "SELECT name FROM edges") == [("line1-pc",)]

        line_line = line_of(intruder, "- id: line1")
        machine_line = line_of(intruder, "- id: filler")
        expected = {
            intruder: [
                f"lines[0].id (line {line_line}): line 'line1' belongs to edge 'line1-pc'",
                f"lines[0].machines[0].id (line {machine_line}): machine 'filler' (and its tags) "
                "belongs to edge 'line1-pc'",
            ],
            thief: [
                f"lines[0].machines[0].id (line {line_of(thief, '- id: filler')}): machine "
                "'filler' (and its tags) belongs to edge 'line1-pc'",
            ],
        }
        for config, problems in expected.items():
            spool = tmp_path / f"spool-{config.stem}"
            collect = await asyncio.to_thread(
                run_shopfloor,
                "collect",
                "--config",
                str(config),
                "--database-url",
                p.url,
                "--spool-dir",
                str(spool),
                timeout=60,
            )
            check = await asyncio.to_thread(
                run_shopfloor, "check", str(config), "--database-url", p.url
            )
            for result in (collect, check):
                assert result.returncode == 1, (config.name, result.stderr)
                for problem in problems:
                    assert problem in result.stderr, (config.name, problem, result.stderr)
                assert "shopfloor db release line1-pc" in result.stderr, result.stderr
            if config == thief:  # its line is its own
                assert "lines[0].id " not in collect.stderr, collect.stderr
            assert not spool.exists()  # refused before it began
            assert snapshot() == before  # nothing in the database changed

        # The owner's own config checks clean against the database, and it collects on.
        ok = await asyncio.to_thread(
            run_shopfloor, "check", str(p.configs["line1-pc"]), "--database-url", p.url
        )
        assert ok.returncode == 0, ok.stderr
        assert "edge 'line1-pc' owns it all" in ok.stderr
        assert owner.running()
        assert query(p.url, "SELECT id, edge, active FROM lines") == [("line1", "line1-pc", True)]
        assert await owner.stop() == 0, owner.text()


# --- 3. one edge loses the central database ----------------------------------------------------


async def test_an_edge_without_the_database_for_minutes_loses_nothing_and_slows_no_other(
    database_url: str, tmp_path: Path
) -> None:
    cut_edge, others = "line3-pc", ("line1-pc", "line2-pc")
    ports = {name: free_port() for name in EDGES}
    with plant(tmp_path, database_url) as p, database_link(database_url) as link:
        edges = {
            name: p.edge(name, url=link.url if name == cut_edge else None, api_port=ports[name])
            for name in EDGES
        }
        for name, edge in edges.items():
            await started(p, edge, name)

        reports: dict[str, dict[str, Any]] = {}

        async def healths() -> None:
            for name, port in ports.items():
                with contextlib.suppress(httpx.TransportError):
                    reports[name] = await health(port)

        def report(name: str, *keys: str) -> Any:
            """A figure of the edge's last /healthz; None while it has none."""
            value: Any = reports.get(name)
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            return value

        def sources_connected() -> bool:
            return all(
                [s["connected"] for s in report(name, "sources") or [{"connected": False}]]
                == [True]
                for name in EDGES
            )

        # Every MQTT event is seen: the packer's edge subscribed before the simulators start.
        await eventually(
            lambda: all(report(name, "database", "connected") is True for name in EDGES),
            30,
            lambda: f"edges connected: {reports}",
            each=healths,
        )
        p.sims.start()
        await eventually(sources_connected, 30, lambda: f"sources: {reports}", each=healths)
        await eventually(
            lambda: all(stored(p.url, m, "state") for _, m, _ in LINES),
            30,
            lambda: f"every machine's state stored\n{p.logs()}",
        )

        link.cut()
        cut_at = dt.datetime.now(dt.UTC)
        loop = asyncio.get_running_loop()
        restore_at = loop.time() + OUTAGE_S
        await eventually(
            lambda: (
                report(cut_edge, "database", "outages") == 1
                and (report(cut_edge, "pipeline", "spooled_rows") or 0) > 0
            ),
            60,
            lambda: f"{cut_edge} spools: {reports.get(cut_edge)}",
            each=healths,
        )
        await asyncio.sleep(restore_at - loop.time())  # the outage lasts (the scenario)

        # Before the link is back: the other edges' readings up to now are stored already.
        mark = dt.datetime.now(dt.UTC)
        await eventually(
            lambda: all(stored_after(p.url, m, mark) for m in ("filler", "capper")),
            30,
            lambda: f"readings after {mark}\n{p.logs()}",
        )
        during = {
            m: {
                tag: [(t, v) for t, v in stored(p.url, m, tag) if cut_at <= t <= mark]
                for tag in ("state", "good_count", "reject_count")
            }
            for m in ("filler", "capper")
        }
        await healths()
        assert report(cut_edge, "database", "connected") is False, reports[cut_edge]
        link.restore()
        outage_s = (dt.datetime.now(dt.UTC) - cut_at).total_seconds()

        await eventually(
            lambda: (
                report(cut_edge, "database", "connected") is True
                and report(cut_edge, "spool", "rows") == 0
                and report(cut_edge, "pipeline", "replayed_rows")
                == report(cut_edge, "pipeline", "spooled_rows")
            ),
            90,
            lambda: f"{cut_edge} drained: {reports.get(cut_edge)}",
            each=healths,
        )
        await asyncio.to_thread(p.sims.stop)  # the truth file is complete
        truth = truth_mod.load(p.truth_path)
        events = packer_events(truth)
        await eventually(
            lambda: len(stored(p.url, "packer", "good_count")) >= len(events),
            30,
            lambda: f"{len(events)} packer cases stored\n{p.logs()}",
        )
        await healths()
        for name in others:  # never an outage, nothing spooled
            assert report(name, "database", "outages") == 0, reports[name]
            assert report(name, "pipeline", "spooled_rows") == 0, reports[name]
            assert report(name, "spool", "rows") == 0, reports[name]
        assert report(cut_edge, "database", "outages") == 1, reports[cut_edge]
        for edge in edges.values():
            assert await edge.stop() == 0, edge.text()
        assert link.refused > 0  # it kept trying through the cut

    print(f"\noutage {outage_s:.1f} s; packer cases {len(events)}")
    # The cut edge (MQTT): every case and every state change exactly once, at its own time.
    assert_packer_stored_exactly_once(p.url, truth)
    # The others: what they read during the outage was stored before it ended, and is right.
    filler_states = [
        (r["_ts"], float(r["state"])) for r in changes(truth, "filler") if cut_at <= r["_ts"] < mark
    ]
    assert len(filler_states) >= 2  # the filler changed state during the outage
    assert [s for s in during["filler"]["state"] if s[0] < mark] == filler_states
    for m, late in (("filler", dt.timedelta(0)), ("capper", MODBUS_TIMEOUT)):
        in_force = InForce(truth, m)
        for tag, key in (("good_count", "good_counter"), ("reject_count", "reject_counter")):
            series = during[m][tag]
            assert len(series) >= 2, (m, tag)
            wrap = 65536 if m == "filler" else 2**32
            wrong = [
                (t, v)
                for t, v in series
                if v not in {x % wrap for x in in_force.values(key, t - LATENCY, t + late)}
            ]
            assert not wrong, (m, tag, wrong[:5])
    assert query(database_url, "SELECT count(*) FROM rejected_readings") == [(0,)]


class InForce:
    """The values a PLC value had at some instant of [start, end], from the truth's snapshots
    (simulators.truth.snapshots; as tests/collector/test_outage.py's `in_force`, by bisection:
    thousands of readings against thousands of snapshots)."""

    def __init__(self, truth: truth_mod.Truth, machine: str) -> None:
        self.snaps = truth_mod.snapshots(truth, machine)
        self.times = [ts for ts, _ in self.snaps]

    def values(self, key: str, start: dt.datetime, end: dt.datetime) -> set[Any]:
        lo = bisect.bisect_right(self.times, start)  # snapshots after `start`
        hi = bisect.bisect_right(self.times, end)
        held = [self.snaps[lo - 1][1].get(key)] if lo else []
        return ({snap.get(key) for _, snap in self.snaps[lo:hi]} | set(held)) - {None}


def changes(truth: truth_mod.Truth, machine: str) -> list[dict[str, Any]]:
    """The truth's state records where the state value changed (an OPC UA data change)."""
    out, last = [], None
    for r in truth.state_records(machine):
        if r["state"] != last:
            out.append(r)
            last = r["state"]
    return out


def assert_packer_stored_exactly_once(url: str, truth: truth_mod.Truth) -> None:
    events = packer_events(truth)
    good = stored(url, "packer", "good_count")
    reject = stored(url, "packer", "reject_count")
    assert good == [(r["_ts"], float(r["good"])) for r in events]
    assert reject == [(r["_ts"], float(r["reject"])) for r in events]
    states = stored(url, "packer", "state")
    assert states == [(r["_ts"], float(r["state"])) for r in truth.state_records("packer")]
