"""What /healthz and /metrics report: database, spool, pipeline and every source.

Status: `ok`; `degraded` when readings still reach safety but something needs a look (database
away and the spool taking over, a source disconnected, readings in the spool, a periodic job
that lost the database mid-run); `failing` when readings are being refused or lost (spool at its
budget or its disk failing, nothing taken while a batch has no home) or a task failed on an
unexpected error (until it runs again). /healthz answers 503 only for `failing`.

The report is `config.health.Health` (the JSON itself); `HealthMetrics` turns it into Prometheus
metrics at each scrape, for a prometheus_client registry.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from config.health import Health, SourceHealth

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


def snapshot(c: Collector) -> Health:
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
    sources: list[SourceHealth] = []
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
                "missing_fields": dict(s.missing_fields),
                "extra": dict(s.extra),
            }
        )
    rollups = c.supervisor.tasks.get("rollups")
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
            "last_error": rollups.error if rollups is not None else None,
        },
        "tasks": {name: t.report() for name, t in c.supervisor.tasks.items()},
        "sources": sources,
    }


# One metric per row: the report's key (`sources.` ones per source, labelled {source, protocol}),
# the metric `shopfloor_<name>`, its help. A name ending in _total is a counter (Prometheus'
# convention), any other a gauge. Rendered in this order.
_METRICS = [
    row.split(maxsplit=2)
    for row in """
database.connected       database_up               the collector can write
database.rows_written    rows_written_total        readings stored
database.duplicates      rows_duplicate_total      replayed readings already stored
database.rejected        rows_rejected_total       readings kept in rejected_readings
database.outages         database_outages_total    times the database went away
database.quarantined     rows_quarantined_total    refused input (malformed payloads, implausible readings) kept in rejected_readings
spool.batches            spool_batches             batches waiting in the spool
spool.rows               spool_rows                readings waiting in the spool
spool.bytes              spool_bytes               spool payload bytes
spool.budget_bytes       spool_budget_bytes        spool size budget
spool.full               spool_full                1 while the spool is at its budget (alarm)
spool.dropped_rows       spool_dropped_rows_total  readings dropped at the budget
spool.oldest_age_s       spool_oldest_age_seconds  age of the oldest spooled batch
pipeline.queued_rows     queue_rows                readings queued in memory
pipeline.capacity_rows   queue_capacity_rows       queue bound (backpressure)
pipeline.spooled_rows    spooled_rows_total        readings written to the spool
pipeline.replayed_rows   replayed_rows_total       readings replayed from the spool
pipeline.lost_rows       lost_rows_total           readings lost at shutdown
pipeline.taking_readings taking_readings           0 while a batch has neither database nor spool room
pipeline.heartbeat_late  heartbeat_late_total      state changes later than LAG_S
sources.connected        source_connected          1 while connected
sources.readings         source_readings_total     readings delivered
sources.readings_per_s   source_readings_per_second  recent reading rate
sources.errors           source_errors_total       errors
sources.reconnects       source_reconnects_total   reconnects
sources.malformed        source_malformed_total    malformed messages skipped
sources.unmapped         source_unmapped_total     readings of no configured tag
sources.filtered         source_filtered_total     readings dropped by a deadband
sources.rejected         source_rejected_total     readings refused (implausible time, unstorable text), kept in rejected_readings
sources.last_reading     source_last_reading_timestamp_seconds  last reading (unix time)
""".strip().splitlines()
]


def _number(value: object) -> float:
    """Report values as sample values: None 0, bools 0/1, ISO times as unix seconds."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).timestamp()
    return float(value) if isinstance(value, int | float) else 0.0


def _family(
    name: str,
    text: str,
    samples: Iterable[tuple[Sequence[str], object]],
    labels: Sequence[str] = (),
) -> Metric:
    """One metric `shopfloor_<name>`: a counter when the name ends in _total, else a gauge."""
    kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
    metric = kind(f"shopfloor_{name}", text, labels=labels)
    for values, value in samples:
        metric.add_metric(values, _number(value))
    return metric


class HealthMetrics:
    """The report as Prometheus metrics, taken at each scrape: a prometheus_client collector
    for a registry of the caller's (never the process-wide default one)."""

    def __init__(self, report: Callable[[], Health]) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        health = self.report()
        yield _family("up", "1 unless status is failing", [((), health["status"] != "failing")])
        sections = cast(Mapping[str, Mapping[str, object]], health)
        sources = [cast(Mapping[str, object], s) for s in health.get("sources", [])]
        for where, name, text in _METRICS:
            section, key = where.split(".")
            if section != "sources":
                yield _family(name, text, [((), sections[section][key])])
            else:
                samples = [((str(s["name"]), str(s["protocol"])), s[key]) for s in sources]
                yield _family(name, text, samples, ("source", "protocol"))
        yield _family(
            "source_missing_fields_total",
            "messages for the tag that lacked its field (counted, not malformed)",
            [
                ((str(s["name"]), str(s["protocol"]), tag), n)
                for s in health.get("sources", [])
                for tag, n in s["missing_fields"].items()
            ],
            ("source", "protocol", "tag"),
        )
        tasks = health.get("tasks", {}).items()
        yield _family(
            "task_up",
            "1 while the task runs without an error",
            [((n,), t["running"] and t["error"] is None) for n, t in tasks],
            ("task",),
        )
        yield _family(
            "task_failures_total",
            "unexpected errors of the task (logged with their traceback)",
            [((n,), t["failures"]) for n, t in tasks],
            ("task",),
        )
