-- shopfloor schema 4: room for hostile input.
--
-- rollup_state.late_seq counts the batches that brought a machine KPI readings older than a
-- minute (the batch writer bumps it beside dirty_since). Results of a window that ended well
-- before a cache entry was made can change only through such late readings, so the API keeps
-- them cached until late_seq moves (api/cache.py).
ALTER TABLE rollup_state ADD COLUMN late_seq bigint NOT NULL DEFAULT 0;

-- rejected_readings also holds what never became a row: a malformed MQTT payload, a reading
-- whose time is implausible. Where it came from, in the source's own words.
ALTER TABLE rejected_readings ADD COLUMN source text, ADD COLUMN address text;

-- Readings stored before the writer refused times outside 1900..2200 (storage.kpi.limits) broke
-- rollups and every KPI request of their line: moved to rejected_readings, not lost. Chunk
-- exclusion keeps this to the chunks of those years.
WITH moved AS (
    DELETE FROM readings
    WHERE time < '1900-01-01T00:00:00Z' OR time >= '2200-01-01T00:00:00Z'
    RETURNING time, tag_id, value, quality, text_value
)
INSERT INTO rejected_readings (time, tag_id, row_repr, reason)
SELECT time, tag_id, format('(%s, %s, %s, %s, %L)', time, tag_id, value, quality, text_value),
       'time outside 1900-01-01 .. 2200-01-01 (moved by migration 004)'
FROM moved;

-- A mark from those readings lowered computed_until out of range too: such machines are
-- recomputed from their first reading (no earlier than the retention horizon).
UPDATE rollup_state SET computed_until = NULL, dirty_since = NULL
WHERE computed_until < '1900-01-01T00:00:00Z' OR dirty_since < '1900-01-01T00:00:00Z';
