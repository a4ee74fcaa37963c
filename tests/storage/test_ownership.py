"""Several edges on one database (issue 17): each sync touches only what its edge owns; what
another edge owns is refused, naming it; a released edge's lines can move; the database's plant
model reads back as the configs declared it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from localenv.cluster import LocalCluster
from storage import plant_model, rollups
from storage.migrate import migrate
from storage.ownership import OwnershipConflict, UnknownEdge, conflicts, release
from storage.plant_sync import sync_plant
from tests.api.conftest import plant_database
from tests.api.plant import plant
from tests.edges import edge_config

PLANT = plant()
EDGE_1 = edge_config(PLANT, "line1-pc", {"la", "lb"})
EDGE_2 = edge_config(PLANT, "line2-pc", {"ld", "le"})


@pytest.fixture
def url(pg_cluster: LocalCluster) -> Iterator[str]:
    """A migrated database where no edge has synced yet (plant_database syncs the whole plant as
    edge "default"; released here)."""
    with plant_database(pg_cluster, "own") as url, psycopg.connect(url) as conn:
        release(conn, "default")
        yield url


def active(conn: psycopg.Connection) -> dict[str, str]:
    """Active line -> its edge."""
    return dict(conn.execute("SELECT id, edge FROM lines WHERE active ORDER BY id").fetchall())


def test_each_sync_keeps_the_other_edges_lines(url: str) -> None:
    with psycopg.connect(url) as conn:
        sync_plant(conn, EDGE_1)
        sync_plant(conn, EDGE_2)
        sync_plant(conn, EDGE_1)  # before schema 8 this switched line2-pc's lines off
        assert active(conn) == {
            "la": "line1-pc",
            "lb": "line1-pc",
            "ld": "line2-pc",
            "le": "line2-pc",
        }
        tags = conn.execute(
            "SELECT m.edge, count(*) FROM tags t JOIN machines m ON m.id = t.machine_id "
            "WHERE t.active GROUP BY m.edge ORDER BY 1"
        ).fetchall()
        assert tags == [("line1-pc", 8), ("line2-pc", 15)]
        # A line leaving edge 1's config goes inactive; edge 2's stay.
        sync_plant(conn, edge_config(PLANT, "line1-pc", {"la"}))
        assert active(conn) == {"la": "line1-pc", "ld": "line2-pc", "le": "line2-pc"}
        edges = conn.execute("SELECT name, revision FROM edges ORDER BY revision").fetchall()
        assert [name for name, _ in edges] == ["line2-pc", "line1-pc"]


def test_a_line_of_another_edge_is_refused_with_its_owner(url: str) -> None:
    intruder = edge_config(PLANT, "intruder", {"ld", "lx"})
    with psycopg.connect(url) as conn:
        sync_plant(conn, EDGE_2)
        before = conn.execute("SELECT id, edge, active FROM lines ORDER BY id").fetchall()
        with pytest.raises(OwnershipConflict) as raised:
            sync_plant(conn, intruder)
        # Nothing changed: not even lx, which nobody owns.
        assert conn.execute("SELECT id, edge, active FROM lines ORDER BY id").fetchall() == before
    found = raised.value.conflicts
    assert [c.path for c in found] == [
        "lines[0].id",
        "lines[0].machines[0].id",
        "lines[0].machines[1].id",
    ]
    assert found[0].message.startswith("line 'ld' belongs to edge 'line2-pc' (host ")
    assert "shopfloor db release line2-pc" in found[0].message
    assert "machine 'm1' (and its tags) belongs to edge 'line2-pc'" in found[1].message
    assert "on its line 'ld'" in found[1].message
    assert str(raised.value).startswith("3 declaration(s) belong to another edge:\n  lines[0].id")


def test_a_machine_moved_into_another_edges_line_is_refused(url: str) -> None:
    with psycopg.connect(url) as conn:
        sync_plant(conn, EDGE_1)
        moved = EDGE_2.model_copy(
            update={
                "lines": [
                    EDGE_2.lines[0].model_copy(
                        update={"machines": [*EDGE_2.lines[0].machines, PLANT.lines[0].machines[0]]}
                    ),
                    EDGE_2.lines[1],
                ]
            }
        )
        found = conflicts(conn, moved)
    assert [c.path for c in found] == ["lines[0].machines[2].id"]
    assert "machine 'ma' (and its tags) belongs to edge 'line1-pc'" in found[0].message


def test_stop_reasons_and_calendars_are_shared_alike_or_refused(url: str) -> None:
    other_reasons = PLANT.model_copy(
        update={
            "stop_reasons": [
                PLANT.stop_reasons[0],
                PLANT.stop_reasons[1].model_copy(update={"text": "no bottles"}),
            ]
        }
    )
    cal = PLANT.calendars["cal-d"]
    other_cal = cal.model_copy(update={"timezone": "Europe/Berlin"})
    with psycopg.connect(url) as conn:
        sync_plant(conn, EDGE_1)
        sync_plant(conn, EDGE_2)  # the same reasons and calendars: no conflict
        owners = conn.execute("SELECT code, edge FROM stop_reasons ORDER BY code").fetchall()
        assert owners == [(10, "line1-pc"), (20, "line1-pc")]
        found = conflicts(
            conn,
            edge_config(other_reasons, "line2-pc", {"ld"}).model_copy(
                update={"calendars": {**PLANT.calendars, "cal-d": other_cal}}
            ),
        )
        assert [c.path for c in found] == ["calendars.cal-d", "stop_reasons[1]"]
        assert "calendar 'cal-d' of edge 'line1-pc'" in found[0].message
        assert "other time zone" in found[0].message
        assert "code 20 is 'starved' (idle) at edge 'line1-pc'" in found[1].message
        # Once edge 1 no longer declares them, edge 2 may change them.
        sync_plant(
            conn,
            EDGE_1.model_copy(update={"stop_reasons": [], "calendars": {}}).model_copy(
                update={
                    "lines": [line.model_copy(update={"calendar": None}) for line in EDGE_1.lines]
                }
            ),
        )
        sync_plant(conn, edge_config(other_reasons, "line2-pc", {"ld", "le"}))
        rows = conn.execute("SELECT code, text, edge FROM stop_reasons ORDER BY code").fetchall()
        assert rows == [(10, "jam", "line2-pc"), (20, "no bottles", "line2-pc")]


def test_a_released_edges_lines_move_to_another(url: str) -> None:
    with psycopg.connect(url) as conn:
        sync_plant(conn, EDGE_1)
        with pytest.raises(OwnershipConflict):
            sync_plant(conn, edge_config(PLANT, "new-pc", {"la", "lb"}))
        released = release(conn, "line1-pc")
        assert (sorted(released.lines), released.machines) == (["la", "lb"], 2)
        assert active(conn) == {}
        sync_plant(conn, edge_config(PLANT, "new-pc", {"la", "lb"}))
        assert active(conn) == {"la": "new-pc", "lb": "new-pc"}
        with pytest.raises(UnknownEdge, match="no edge 'line1-pc' has synced here; edges: new-pc"):
            release(conn, "line1-pc")


def test_rows_from_before_schema_8_are_claimed_or_retired(pg_cluster: LocalCluster) -> None:
    with plant_database(pg_cluster, "own") as url, psycopg.connect(url) as conn:
        # As a database from before schema 8 holds them: no owner, no edge row.
        for table in ("lines", "machines", "calendars", "stop_reasons"):
            conn.execute(f"UPDATE {table} SET edge = NULL")
        conn.execute("DELETE FROM edges")
        sync_plant(conn, EDGE_1)
        # Edge 1 claims its lines and retires the rest, which edge 2 then claims.
        assert active(conn) == {"la": "line1-pc", "lb": "line1-pc"}
        sync_plant(conn, EDGE_2)
        assert active(conn) == {
            "la": "line1-pc",
            "lb": "line1-pc",
            "ld": "line2-pc",
            "le": "line2-pc",
        }


async def test_the_revision_moves_from_0_at_the_first_sync(pg_cluster: LocalCluster) -> None:
    base = pg_cluster.url.rsplit("/", 1)[0]
    name = f"rev_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"{base}/{name}") as conn:
            migrate(conn)
            conn.commit()
            async with await psycopg.AsyncConnection.connect(f"{base}/{name}") as aconn:
                assert await plant_model.revision(aconn) == 0
                sync_plant(conn, EDGE_1)
                assert await plant_model.revision(aconn) == 1
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_plant_model_reads_back_as_declared(url: str) -> None:
    with psycopg.connect(url) as conn:
        sync_plant(conn, EDGE_2, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        sync_plant(conn, EDGE_1, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    async with await psycopg.AsyncConnection.connect(url) as conn:
        model = await plant_model.load(conn)
        assert await plant_model.revision(conn) == model.revision
    # Edge by edge, each in its config's order; machines, cycle times, units, state maps, and
    # the roles as the config resolves them (default: the last machine).
    assert model.lines == [
        line.model_copy(
            update={"constraint_machine": line.constraint, "output_machines": line.outputs}
        )
        for line in [*EDGE_1.lines, *EDGE_2.lines]
    ]
    assert model.calendars == PLANT.calendars
    assert model.stop_reasons == PLANT.stop_reasons
    assert model.edge_kpi == {"line1-pc": PLANT.settings.kpi, "line2-pc": PLANT.settings.kpi}
    packer = model.lines[-1].machines[-1]
    assert (packer.id, packer.units_per_count, packer.ideal_cycle_s) == ("packer", 12, 6.0)
    assert json.loads(json.dumps(model.lines[0].machines[0].state_map)) == {
        "1": "running",
        "2": "down",
        "3": "idle",
        "4": "planned_stop",
        "5": "setup",
    }


async def test_each_edge_refreshes_the_rollups_of_its_own_machines(url: str) -> None:
    with psycopg.connect(url) as conn:
        for cfg in (EDGE_1, EDGE_2):
            sync_plant(conn, cfg)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await rollups.refresh(conn, EDGE_1, now=dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC))
        cur = await conn.execute("SELECT machine_id FROM rollup_state ORDER BY machine_id")
        assert [r[0] for r in await cur.fetchall()] == ["ma", "mb"]


def test_a_sync_from_another_host_names_the_last_one(url: str) -> None:
    t0 = dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC)
    with psycopg.connect(url) as conn:
        first = sync_plant(conn, EDGE_1, now=t0, host="pc-a")
        assert first.other_host is None and first.plant_changed
        again = sync_plant(conn, EDGE_1, now=t0, host="pc-a")
        assert again.other_host is None and not again.plant_changed
        other = sync_plant(conn, EDGE_1, now=t0, host="pc-b")
        assert other.other_host == ("pc-a", t0) and not other.plant_changed
        # one tag fewer is a change (a line fewer too, below)
        fewer = EDGE_1.model_copy(
            update={"sources": [s.model_copy(update={"tags": s.tags[1:]}) for s in EDGE_1.sources]}
        )
        assert sync_plant(conn, fewer, now=t0, host="pc-b").plant_changed
        assert sync_plant(conn, edge_config(PLANT, "line1-pc", {"la"}), now=t0).plant_changed
