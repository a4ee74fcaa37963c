-- shopfloor schema 7: stop time by reason per machine and UTC minute (and hour), so the downtime
-- Pareto over long windows sums rollups instead of building the raw timeline of the whole
-- window (storage.reason_rollups, docs/rollups.md "Downtime by reason"). Written by the rollup
-- refresh in the transaction that writes the same minutes of machine_minutes, so
-- rollup_state.computed_until covers both. Calendar-free like machine_minutes.

-- One row per machine, minute and stop key (reason, class) with stop time in the minute.
CREATE TABLE downtime_minutes (
    machine_id  text NOT NULL,
    minute      timestamptz NOT NULL,   -- start of the UTC minute
    reason      int,                    -- stop reason code; NULL: the PLC gave no known reason
    time_class  text NOT NULL
                CHECK (time_class IN ('down', 'idle', 'setup', 'planned_stop', 'short_stop')),
    duration_us bigint NOT NULL,        -- the key's stop time inside the minute, in
                                        -- microseconds: sums and differences are exact
    starts      int NOT NULL,           -- the key's intervals starting inside the minute
    carried     boolean NOT NULL        -- the interval in effect at the minute's start is of
                                        -- this key and began before it
);
SELECT create_hypertable('downtime_minutes', by_range('minute', INTERVAL '7 days'),
                         create_default_indexes => false);
CREATE INDEX downtime_minutes_machine_minute ON downtime_minutes (machine_id, minute);

-- The sums of an hour's minute rows per key (no `carried`: it holds at one instant).
CREATE TABLE downtime_hours (
    machine_id  text NOT NULL,
    hour        timestamptz NOT NULL,   -- start of the UTC hour
    reason      int,
    time_class  text NOT NULL
                CHECK (time_class IN ('down', 'idle', 'setup', 'planned_stop', 'short_stop')),
    duration_us bigint NOT NULL,
    starts      int NOT NULL
);
SELECT create_hypertable('downtime_hours', by_range('hour', INTERVAL '30 days'),
                         create_default_indexes => false);
CREATE INDEX downtime_hours_machine_hour ON downtime_hours (machine_id, hour);

-- Minutes computed before this schema have no rows here: every machine with minute rows is
-- recomputed from its first reading kept (no earlier than the raw retention horizon), and until
-- a minute is, it is not covered, so the engine reads it raw. (A machine without minute rows
-- has nothing to fill in.)
UPDATE rollup_state s SET computed_until = NULL
WHERE EXISTS (SELECT FROM machine_minutes m WHERE m.machine_id = s.machine_id);
