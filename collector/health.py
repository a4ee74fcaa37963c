"""What /healthz and /metrics report: database, spool, pipeline and every source.

Status: `ok`; `degraded` when readings still reach safety but something needs a look (database
away and the spool taking over, a source disconnected, readings in the spool, a periodic job
that lost the database mid-run); `failing` when readings are being refused or lost (spool at its
budget or its disk failing, nothing taken while a batch has no home) or a task failed on an
unexpected error (until it runs again). /healthz answers 503 only for `failing`.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.service import Collector

RATE_WINDOW_S = 10.0


class Rates:
    """Readings per second of each source over the last RATE_WINDOW_S (sampled every second)."""

    def __init__(self) -> None:
        self._samples: dict[str, collections.deque[tuple[float, int]]] = {}

    def sample(self, counts: dict[str, int], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for name, count in counts.items():
            ring = self._samples.setdefault(name, collections.deque())
            ring.append((now, count))
            while len(ring) > 2 and now - ring[0][0] > RATE_WINDOW_S:
                ring.popleft()

    def rate(self, name: str) -> float:
        ring = self._samples.get(name)
        if not ring or len(ring) < 2 or ring[-1][0] <= ring[0][0]:
            return 0.0
        return (ring[-1][1] - ring[0][1]) / (ring[-1][0] - ring[0][0])


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def snapshot(c: Collector) -> dict[str, Any]:
    db, spool, pipe = c.db, c.spool.stats(), c.pipeline
    problems: list[str] = []
    degraded = failing = False
    if not db.up:
        problems.append(f"database unavailable: {db.last_error}")
        degraded = True
    if spool.batches:
        problems.append(f"{spool.rows} readings in the spool")
        degraded = True
    if spool.full:
        problems.append(
            f"spool at its budget ({spool.bytes} of {c.spool.max_bytes} bytes, "
            f"policy {c.spool.on_full})"
        )
        failing = True
    if pipe.spool_error is not None:
        problems.append(f"the spool cannot store batches: {pipe.spool_error}")
        failing = True
    if pipe.homeless:
        problems.append("a batch waits for the database or room in the spool: no readings taken")
        failing = True
    for task in c.supervisor.tasks.values():
        if task.error is not None:
            problems.append(f"{task.name} failed: {task.error}")
            failing = failing or not task.expected
            degraded = True
    sources = []
    for a in c.adapters:
        s = a.status
        if not s.connected:
            problems.append(f"source {s.source} disconnected")
            degraded = True
        sources.append(
            {
                "name": s.source,
                "protocol": s.protocol,
                "connected": s.connected,
                "last_reading": _iso(s.last_reading),
                "readings": s.readings,
                "readings_per_s": round(c.rates.rate(s.source), 3),
                "errors": s.errors,
                "last_error": s.last_error,
                "reconnects": s.reconnects,
                "malformed": s.malformed,
                "unmapped": c.router.unmapped[s.source],
                "filtered": c.router.filtered[s.source],
                "rejected": c.router.rejected[s.source],
                "extra": dict(s.extra),
            }
        )
    return {
        "status": "failing" if failing else "degraded" if degraded else "ok",
        "problems": problems,
        "database": {
            "connected": db.up,
            "last_write": _iso(db.last_write),
            "rows_written": db.rows_written,
            "duplicates": db.duplicates,
            "rejected": db.rejected + db.unknown_tag_rows,
            "quarantined": db.quarantined,
            "outages": db.outages,
            "last_error": db.last_error,
        },
        "spool": {
            "batches": spool.batches,
            "rows": spool.rows,
            "bytes": spool.bytes,
            "budget_bytes": c.spool.max_bytes,
            "oldest_age_s": round(time.time() - spool.oldest_created, 3)
            if spool.oldest_created is not None
            else None,
            "full": spool.full,
            "policy": c.spool.on_full,
            "dropped_rows": spool.dropped_rows,
        },
        "pipeline": {
            "queued_rows": pipe.queued,
            "capacity_rows": pipe.settings.queue_rows,
            "batches": pipe.batches,
            "spooled_rows": pipe.spooled_rows,
            "replayed_rows": pipe.replayed_rows,
            "lost_rows": pipe.lost_rows,
            "heartbeat_late": c.heartbeat.late,
            "taking_readings": not pipe.homeless,
        },
        "rollups": {
            "last_run": _iso(c.rollups_at),
            "last_error": c.supervisor.tasks["rollups"].error
            if "rollups" in c.supervisor.tasks
            else None,
        },
        "tasks": {name: t.as_dict() for name, t in c.supervisor.tasks.items()},
        "sources": sources,
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# (metric, snapshot section, key, type, help): one line each, rendered in this order.
_METRICS = [
    ("database_up", "database", "connected", "gauge", "the collector can write"),
    ("rows_written_total", "database", "rows_written", "counter", "readings stored"),
    (
        "rows_duplicate_total",
        "database",
        "duplicates",
        "counter",
        "replayed readings already stored",
    ),
    (
        "rows_rejected_total",
        "database",
        "rejected",
        "counter",
        "readings kept in rejected_readings",
    ),
    ("database_outages_total", "database", "outages", "counter", "times the database went away"),
    (
        "rows_quarantined_total",
        "database",
        "quarantined",
        "counter",
        "refused input (malformed payloads, implausible readings) kept in rejected_readings",
    ),
    ("spool_batches", "spool", "batches", "gauge", "batches waiting in the spool"),
    ("spool_rows", "spool", "rows", "gauge", "readings waiting in the spool"),
    ("spool_bytes", "spool", "bytes", "gauge", "spool payload bytes"),
    ("spool_budget_bytes", "spool", "budget_bytes", "gauge", "spool size budget"),
    ("spool_full", "spool", "full", "gauge", "1 while the spool is at its budget (alarm)"),
    (
        "spool_dropped_rows_total",
        "spool",
        "dropped_rows",
        "counter",
        "readings dropped at the budget",
    ),
    (
        "spool_oldest_age_seconds",
        "spool",
        "oldest_age_s",
        "gauge",
        "age of the oldest spooled batch",
    ),
    ("queue_rows", "pipeline", "queued_rows", "gauge", "readings queued in memory"),
    ("queue_capacity_rows", "pipeline", "capacity_rows", "gauge", "queue bound (backpressure)"),
    ("spooled_rows_total", "pipeline", "spooled_rows", "counter", "readings written to the spool"),
    (
        "replayed_rows_total",
        "pipeline",
        "replayed_rows",
        "counter",
        "readings replayed from the spool",
    ),
    ("lost_rows_total", "pipeline", "lost_rows", "counter", "readings lost at shutdown"),
    (
        "taking_readings",
        "pipeline",
        "taking_readings",
        "gauge",
        "0 while a batch has neither database nor spool room",
    ),
    (
        "heartbeat_late_total",
        "pipeline",
        "heartbeat_late",
        "counter",
        "state changes later than LAG_S",
    ),
]
_SOURCE_METRICS = [
    ("source_connected", "connected", "gauge", "1 while connected"),
    ("source_readings_total", "readings", "counter", "readings delivered"),
    ("source_readings_per_second", "readings_per_s", "gauge", "recent reading rate"),
    ("source_errors_total", "errors", "counter", "errors"),
    ("source_reconnects_total", "reconnects", "counter", "reconnects"),
    ("source_malformed_total", "malformed", "counter", "malformed messages skipped"),
    ("source_unmapped_total", "unmapped", "counter", "readings of no configured tag"),
    ("source_filtered_total", "filtered", "counter", "readings dropped by a deadband"),
    (
        "source_rejected_total",
        "rejected",
        "counter",
        "readings refused (implausible time, unstorable text), kept in rejected_readings",
    ),
    ("source_last_reading_timestamp_seconds", "last_reading", "gauge", "last reading (unix time)"),
]


def _number(value: object) -> float:
    """Snapshot values as sample values: None 0, bools 0/1, ISO times as unix seconds."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).timestamp()
    return float(value or 0)  # type: ignore[arg-type]


def prometheus(snap: dict[str, Any]) -> str:
    """The snapshot in Prometheus text exposition format 0.0.4."""
    out: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, object]]) -> None:
        out.append(f"# HELP shopfloor_{name} {text}")
        out.append(f"# TYPE shopfloor_{name} {kind}")
        out.extend(f"shopfloor_{name}{labels} {_number(value):g}" for labels, value in samples)

    metric("up", "gauge", "1 unless status is failing", [("", snap["status"] != "failing")])
    for name, section, key, kind, text in _METRICS:
        metric(name, kind, text, [("", snap[section][key])])
    for name, key, kind, text in _SOURCE_METRICS:
        samples = [
            (f'{{source="{_label(s["name"])}",protocol="{s["protocol"]}"}}', s[key])
            for s in snap["sources"]
        ]
        metric(name, kind, text, samples)
    tasks = snap["tasks"].items()
    metric(
        "task_up",
        "gauge",
        "1 while the task runs without an error",
        [(f'{{task="{_label(n)}"}}', t["running"] and t["error"] is None) for n, t in tasks],
    )
    metric(
        "task_failures_total",
        "counter",
        "unexpected errors of the task (logged with their traceback)",
        [(f'{{task="{_label(n)}"}}', t["failures"]) for n, t in tasks],
    )
    return "\n".join(out) + "\n"
