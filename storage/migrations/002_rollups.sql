-- shopfloor schema 2: per-machine rollups (ours: the Apache build has no continuous aggregates).
-- One row per machine and UTC minute (and per hour, the sum of its minutes): the calendar-free
-- seconds per time class of KPI.md §1 (storage.kpi.StateSeconds) and the count sums of §2
-- (storage.kpi.Counts). Intervals are classified whole before they are cut into minutes, so
-- adding rows gives exactly what the raw timeline gives for the same minutes.

CREATE TABLE machine_minutes (
    machine_id      text NOT NULL,
    minute          timestamptz NOT NULL,       -- start of the UTC minute
    running_s       double precision NOT NULL DEFAULT 0,
    short_stop_s    double precision NOT NULL DEFAULT 0,
    down_s          double precision NOT NULL DEFAULT 0,
    idle_s          double precision NOT NULL DEFAULT 0,
    setup_s         double precision NOT NULL DEFAULT 0,
    planned_stop_s  double precision NOT NULL DEFAULT 0,
    unknown_s       double precision NOT NULL DEFAULT 0,
    unmapped_s      double precision NOT NULL DEFAULT 0,   -- part of unknown_s
    down_starts     int NOT NULL DEFAULT 0,                -- non-short down intervals starting here
    good            bigint,                                -- NULL: counter not configured
    reject          bigint,
    total           bigint,
    ideal_good_s    double precision,
    ideal_reject_s  double precision,
    ideal_total_s   double precision,
    counter_resets  int NOT NULL DEFAULT 0,
    counter_wraps   int NOT NULL DEFAULT 0,
    counter_glitches int NOT NULL DEFAULT 0,
    PRIMARY KEY (machine_id, minute)
);
SELECT create_hypertable('machine_minutes', by_range('minute', INTERVAL '7 days'));

CREATE TABLE machine_hours (LIKE machine_minutes INCLUDING DEFAULTS);
ALTER TABLE machine_hours RENAME COLUMN minute TO hour;
ALTER TABLE machine_hours ADD PRIMARY KEY (machine_id, hour);
SELECT create_hypertable('machine_hours', by_range('hour', INTERVAL '30 days'));

-- Per machine: rollups are exact for every minute before computed_until (less the
-- classification margin, see storage.rollups.covered_until), except from dirty_since on, where
-- readings arrived late. The batch writer lowers dirty_since in the transaction that stores the
-- readings (dirty_seq counts those marks). The refresher takes the mark atomically by lowering
-- computed_until to it and clearing dirty_since in one UPDATE, so a crash mid-refresh loses
-- nothing: the next refresh starts from the lowered computed_until.
CREATE TABLE rollup_state (
    machine_id      text PRIMARY KEY,
    computed_until  timestamptz,
    dirty_since     timestamptz,
    dirty_seq       bigint NOT NULL DEFAULT 0
);
