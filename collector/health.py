"""What /healthz and /metrics report: database, spool, pipeline and every source.

Status: `ok`; `degraded` when readings still reach safety but something needs a look (database
away and the spool taking over, a source disconnected, readings in the spool); `failing` when
readings are being refused or lost (spool at its budget). /healthz answers 503 only for `failing`.
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
    status = "ok"
    if not db.up:
        problems.append(f"database unavailable: {db.last_error}")
        status = "degraded"
    if spool.batches:
        problems.append(f"{spool.rows} readings in the spool")
        status = "degraded"
    if spool.full:
        problems.append(
            f"spool at its budget ({spool.bytes} of {c.spool.max_bytes} bytes, "
            f"policy {c.spool.on_full})"
        )
        status = "failing"
    sources = []
    for a in c.adapters:
        s = a.status
        if not s.connected:
            problems.append(f"source {s.source} disconnected")
            status = "failing" if status == "failing" else "degraded"
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
                "extra": dict(s.extra),
            }
        )
    return {
        "status": status,
        "problems": problems,
        "database": {
            "connected": db.up,
            "last_write": _iso(db.last_write),
            "rows_written": db.rows_written,
            "duplicates": db.duplicates,
            "rejected": db.rejected + db.unknown_tag_rows,
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
        },
        "rollups": {"last_run": _iso(c.rollups_at), "last_error": c.rollups_error},
        "sources": sources,
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(snap: dict[str, Any]) -> str:
    """The snapshot in Prometheus text exposition format 0.0.4."""
    out: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP shopfloor_{name} {text}")
        out.append(f"# TYPE shopfloor_{name} {kind}")
        out.extend(f"shopfloor_{name}{labels} {value:g}" for labels, value in samples)

    db, spool, pipe = snap["database"], snap["spool"], snap["pipeline"]
    metric("up", "gauge", "1 unless status is failing", [("", snap["status"] != "failing")])
    metric("database_up", "gauge", "the collector can write", [("", db["connected"])])
    for name, key, text in [
        ("rows_written_total", "rows_written", "readings stored"),
        ("rows_duplicate_total", "duplicates", "replayed readings already stored"),
        ("rows_rejected_total", "rejected", "readings kept in rejected_readings"),
        ("database_outages_total", "outages", "times the database became unavailable"),
    ]:
        metric(name, "counter", text, [("", db[key])])
    for name, key, kind, text in [
        ("spool_batches", "batches", "gauge", "batches waiting in the spool"),
        ("spool_rows", "rows", "gauge", "readings waiting in the spool"),
        ("spool_bytes", "bytes", "gauge", "spool payload bytes"),
        ("spool_budget_bytes", "budget_bytes", "gauge", "spool size budget"),
        ("spool_full", "full", "gauge", "1 while the spool is at its budget (alarm)"),
        ("spool_dropped_rows_total", "dropped_rows", "counter", "readings dropped at the budget"),
    ]:
        metric(name, kind, text, [("", spool[key])])
    metric(
        "spool_oldest_age_seconds",
        "gauge",
        "age of the oldest spooled batch",
        [("", spool["oldest_age_s"] or 0)],
    )
    for name, key, kind, text in [
        ("queue_rows", "queued_rows", "gauge", "readings queued in memory"),
        ("queue_capacity_rows", "capacity_rows", "gauge", "queue bound (backpressure)"),
        ("spooled_rows_total", "spooled_rows", "counter", "readings written to the spool"),
        ("replayed_rows_total", "replayed_rows", "counter", "readings replayed from the spool"),
        ("lost_rows_total", "lost_rows", "counter", "readings lost at shutdown"),
        ("heartbeat_late_total", "heartbeat_late", "counter", "state changes later than LAG_S"),
    ]:
        metric(name, kind, text, [("", pipe[key])])
    sources = snap["sources"]

    def per_source(name: str, kind: str, text: str, key: str) -> None:
        samples = []
        for s in sources:
            labels = f'{{source="{_label(s["name"])}",protocol="{s["protocol"]}"}}'
            samples.append((labels, float(s[key] or 0)))
        metric(name, kind, text, samples)

    per_source("source_connected", "gauge", "1 while connected", "connected")
    per_source("source_readings_total", "counter", "readings delivered", "readings")
    per_source("source_readings_per_second", "gauge", "recent reading rate", "readings_per_s")
    per_source("source_errors_total", "counter", "errors", "errors")
    per_source("source_reconnects_total", "counter", "reconnects", "reconnects")
    per_source("source_malformed_total", "counter", "malformed messages skipped", "malformed")
    per_source("source_unmapped_total", "counter", "readings of no configured tag", "unmapped")
    per_source("source_filtered_total", "counter", "readings dropped by a deadband", "filtered")
    for s in sources:
        last = s["last_reading"]
        s["_last_ts"] = dt.datetime.fromisoformat(last).timestamp() if last else 0
    per_source(
        "source_last_reading_timestamp_seconds", "gauge", "last reading (unix time)", "_last_ts"
    )
    return "\n".join(out) + "\n"
