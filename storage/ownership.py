"""Who owns what on a database several edges share (schema 8, docs/scale.md).

An edge (`settings.edge`) owns the lines it declares, their machines and the machines' tags,
while they are active. Declaring an active line or machine of another edge is a conflict, named
with the owner: two collectors must never switch each other's lines off or write into each
other's machines. Stop reasons and calendars are plant-wide (one downtime vocabulary across
lines); another edge may declare one only exactly as its owner does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from config import ShopfloorConfig

PLANT_SYNC_LOCK = 7_464_023  # pg_advisory_xact_lock key: plant syncs of several edges take turns


@dataclass(frozen=True)
class Conflict:
    path: str  # the config key that declares it
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class OwnershipConflict(RuntimeError):
    """The config declares what another edge owns; nothing was changed."""

    def __init__(self, found: list[Conflict]) -> None:
        self.conflicts = found
        super().__init__(
            f"{len(found)} declaration(s) belong to another edge:\n"
            + "\n".join(f"  {c}" for c in found)
        )


def _owner(edge: str, edges: dict[str, tuple[str, dt.datetime]]) -> str:
    host, synced = edges.get(edge, ("?", None))
    when = f", synced {synced.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if synced else ""
    return f"edge {edge!r} (host {host}{when})"


_MOVE = "; take it out of this config, or out of that edge's (or `shopfloor db release {edge}`)"


def conflicts(conn: psycopg.Connection, cfg: ShopfloorConfig) -> list[Conflict]:
    """What `cfg` declares that another edge owns, in config order."""
    me = cfg.settings.edge
    edges = {
        name: (host, synced)
        for name, host, synced in conn.execute("SELECT name, host, synced_at FROM edges")
    }
    lines: dict[str, str] = dict(
        conn.execute(
            "SELECT id, edge FROM lines WHERE active AND edge <> %s AND id = ANY(%s::text[])",
            (me, [line.id for line in cfg.lines]),
        ).fetchall()
    )
    machines = {
        m: (edge, line)
        for m, edge, line in conn.execute(
            "SELECT id, edge, line_id FROM machines WHERE active AND edge <> %s "
            "AND id = ANY(%s::text[])",
            (me, list(cfg.machines())),
        )
    }
    found: list[Conflict] = []
    for i, line in enumerate(cfg.lines):
        if line.id in lines:
            owner = lines[line.id]
            found.append(
                Conflict(
                    f"lines[{i}].id",
                    f"line {line.id!r} belongs to {_owner(owner, edges)}"
                    + _MOVE.format(edge=owner),
                )
            )
        for j, m in enumerate(line.machines):
            if m.id in machines:
                owner, their_line = machines[m.id]
                found.append(
                    Conflict(
                        f"lines[{i}].machines[{j}].id",
                        f"machine {m.id!r} (and its tags) belongs to {_owner(owner, edges)}, "
                        f"on its line {their_line!r}" + _MOVE.format(edge=owner),
                    )
                )
    found += _shared_conflicts(conn, cfg, edges)
    return found


def _shared_conflicts(
    conn: psycopg.Connection, cfg: ShopfloorConfig, edges: dict[str, tuple[str, dt.datetime]]
) -> list[Conflict]:
    me = cfg.settings.edge
    found: list[Conflict] = []
    calendars = {
        name: (edge, tz, shifts)
        for name, edge, tz, shifts in conn.execute(
            "SELECT name, edge, timezone, shifts FROM calendars WHERE edge <> %s "
            "AND name = ANY(%s::text[])",
            (me, list(cfg.calendars)),
        )
    }
    for name, cal in cfg.calendars.items():
        if name not in calendars:
            continue
        owner, tz, shifts = calendars[name]
        ours = cal.model_dump(mode="json")["shifts"]  # as jsonb reads back
        if tz != cal.timezone or shifts != ours:
            what = "time zone" if tz != cal.timezone else "shifts"
            found.append(
                Conflict(
                    f"calendars.{name}",
                    f"calendar {name!r} of {_owner(owner, edges)} has other {what}: calendars "
                    "are plant-wide by name; declare it alike, or give this one another name",
                )
            )
    reasons = {
        code: (edge, text, category)
        for code, edge, text, category in conn.execute(
            "SELECT code, edge, text, category FROM stop_reasons WHERE edge <> %s "
            "AND code = ANY(%s::int[])",
            (me, [r.code for r in cfg.stop_reasons]),
        )
    }
    for i, reason in enumerate(cfg.stop_reasons):
        if reason.code not in reasons:
            continue
        owner, text, category = reasons[reason.code]
        if (text, category) != (reason.text, reason.category.value):
            found.append(
                Conflict(
                    f"stop_reasons[{i}]",
                    f"code {reason.code} is {text!r} ({category}) at {_owner(owner, edges)}: "
                    "stop reasons are plant-wide by code (one downtime vocabulary across "
                    "lines); declare it alike",
                )
            )
    return found


@dataclass(frozen=True)
class Released:
    lines: list[str]
    machines: int


def release(conn: psycopg.Connection, edge: str) -> Released:
    """Retire an edge that will not sync again (a replaced PC): its lines, machines and tags go
    inactive, so another edge may declare them; its stop reasons and calendars have no owner."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PLANT_SYNC_LOCK,))
        known = [r[0] for r in conn.execute("SELECT name FROM edges ORDER BY name")]
        if edge not in known:
            raise UnknownEdge(
                f"no edge {edge!r} has synced here; edges: {', '.join(known) or 'none'}"
            )
        lines = [
            r[0]
            for r in conn.execute(
                "UPDATE lines SET active = false WHERE edge = %s AND active RETURNING id", (edge,)
            )
        ]
        machines = conn.execute(
            "UPDATE machines SET active = false WHERE edge = %s AND active", (edge,)
        ).rowcount
        conn.execute(
            "UPDATE tags SET active = false WHERE machine_id IN "
            "(SELECT id FROM machines WHERE edge = %s)",
            (edge,),
        )
        conn.execute("UPDATE calendars SET edge = NULL WHERE edge = %s", (edge,))
        conn.execute("UPDATE stop_reasons SET edge = NULL WHERE edge = %s", (edge,))
        conn.execute("DELETE FROM edges WHERE name = %s", (edge,))
        conn.execute("SELECT nextval('plant_revision')")
    return Released(lines=lines, machines=machines)


def check_against(url: str, cfg: ShopfloorConfig, *, timeout_s: int = 5) -> list[Conflict]:
    """`conflicts` on the database at `url`, read only. Raises NotChecked saying why not."""
    try:
        with psycopg.connect(url, connect_timeout=timeout_s) as conn:
            if conn.execute("SELECT to_regclass('edges')").fetchone() == (None,):
                raise NotChecked("its schema is older than 8 (the collector migrates it)")
            return conflicts(conn, cfg)
    except psycopg.Error as exc:
        raise NotChecked(f"{type(exc).__name__}: {str(exc).strip()}") from exc


class UnknownEdge(LookupError):
    """No edge of that name has synced with this database."""


class NotChecked(Exception):
    """The database could not say who owns what."""
