-- shopfloor schema 5: line units and counts across data gaps (KPI.md §2 and §4).
--
-- A machine's units per count over time, like its ideal cycle time: how many line units one of
-- its counts stands for (a case packer counting cases of 12 on a line counted in bottles: 12).
-- A change holds from its valid_from on; the first row of a machine holds from the beginning.
CREATE TABLE machine_units (
    machine_id      text NOT NULL REFERENCES machines (id),
    valid_from      timestamptz NOT NULL,
    units_per_count int NOT NULL CHECK (units_per_count > 0),
    PRIMARY KEY (machine_id, valid_from)
);

-- Rollup rows carry each counter's count in line units (count x units per count valid at the
-- count's time), and the count deltas whose interval overlapped unknown time. Rows made before
-- this schema counted one unit per count; plant sync rescales them when a machine's first
-- units_per_count is not 1 (storage.plant_sync).
ALTER TABLE machine_minutes
    ADD COLUMN good_units bigint, ADD COLUMN reject_units bigint, ADD COLUMN total_units bigint,
    ADD COLUMN counts_span_unknown int NOT NULL DEFAULT 0;
ALTER TABLE machine_hours
    ADD COLUMN good_units bigint, ADD COLUMN reject_units bigint, ADD COLUMN total_units bigint,
    ADD COLUMN counts_span_unknown int NOT NULL DEFAULT 0;
UPDATE machine_minutes SET good_units = good, reject_units = reject, total_units = total;
UPDATE machine_hours SET good_units = good, reject_units = reject, total_units = total;
