-- shopfloor schema 8: several edges (one collector per line or cell) on one database.
-- Each config names its edge (settings.edge); the lines and machines it declares belong to it,
-- and their tags with them (storage.plant_sync, docs/scale.md). Rows from before have no owner:
-- the first edge that declares them takes them. Stop reasons and calendars stay plant-wide by
-- code and name; the edge that first declared one owns it, and another edge may declare it
-- only alike.

CREATE TABLE edges (
    name        text PRIMARY KEY,
    host        text NOT NULL,          -- the host name of its last sync
    synced_at   timestamptz NOT NULL,
    revision    bigint NOT NULL,        -- plant_revision at its last sync or release
    kpi         jsonb NOT NULL          -- its settings.kpi: a central API should use the same
);

-- Bumped by every sync and release: a central API reloads the plant model when it moves.
CREATE SEQUENCE plant_revision;

ALTER TABLE lines ADD COLUMN edge text;
ALTER TABLE lines ADD COLUMN position int NOT NULL DEFAULT 0;   -- order in its config
ALTER TABLE machines ADD COLUMN edge text;
ALTER TABLE machines ADD COLUMN stop_reasons int[];             -- NULL: every code of the plant
ALTER TABLE calendars ADD COLUMN edge text;
ALTER TABLE stop_reasons ADD COLUMN edge text;

-- Plant-wide jobs (retention): when one last ran and where, so several collectors on one
-- database run it once per interval, under an advisory lock (storage.maintenance).
CREATE TABLE maintenance_runs (
    job         text PRIMARY KEY,
    edge        text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz
);
