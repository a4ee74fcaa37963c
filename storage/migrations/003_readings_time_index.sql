-- readings: drop the index TimescaleDB's create_hypertable() adds by default on (time DESC).
--
-- Every query of readings names its tags (the KPI engine, the rollup refresh, tag series: all by
-- tag_id and a time range, served by UNIQUE (tag_id, time)); a scan by time alone is served by
-- chunk exclusion. The second index only cost ingest: a binary COPY of 300k rows into the
-- hypertable ran at ~220-230k rows/s with it and ~275-325k rows/s without it (2 cores, load ~2.7).
-- On a hypertable, dropping the root's index drops it on every chunk.
DROP INDEX IF EXISTS readings_time_idx;
