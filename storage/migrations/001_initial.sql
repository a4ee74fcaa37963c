-- shopfloor schema 1: plant model, the readings hypertable, rejected readings.
-- Applied once by storage.migrate inside one transaction; never edited after release.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE calendars (
    name        text PRIMARY KEY,
    timezone    text NOT NULL,
    shifts      jsonb NOT NULL          -- [{name, days, start, end, breaks:[{name,start,end}]}]
);

CREATE TABLE lines (
    id                  text PRIMARY KEY,
    name                text,
    calendar            text REFERENCES calendars (name) ON UPDATE CASCADE,
    constraint_machine  text NOT NULL,
    output_machines     text[] NOT NULL,
    active              boolean NOT NULL DEFAULT true
);

CREATE TABLE machines (
    id              text PRIMARY KEY,
    line_id         text NOT NULL REFERENCES lines (id),
    name            text,
    position        int NOT NULL,       -- order in the line
    state_map       jsonb NOT NULL,     -- {"1": "running", ...}
    active          boolean NOT NULL DEFAULT true
);

-- Ideal cycle time per machine with its validity start (KPI.md §3: product changes).
CREATE TABLE machine_ideal_cycles (
    machine_id      text NOT NULL REFERENCES machines (id),
    valid_from      timestamptz NOT NULL,
    ideal_cycle_s   double precision NOT NULL CHECK (ideal_cycle_s > 0),
    PRIMARY KEY (machine_id, valid_from)
);

CREATE TABLE stop_reasons (
    code        int PRIMARY KEY,
    text        text NOT NULL,
    category    text NOT NULL CHECK (category IN ('failure', 'idle', 'setup', 'planned'))
);

CREATE TABLE tags (
    id              serial PRIMARY KEY,
    machine_id      text NOT NULL REFERENCES machines (id),
    name            text NOT NULL,
    signal          text NOT NULL CHECK (signal IN ('state', 'stop_reason', 'good_count',
                                                    'reject_count', 'total_count', 'measurement')),
    source          text NOT NULL,
    protocol        text NOT NULL,
    address         text NOT NULL,
    unit            text,
    counter_mode    text CHECK (counter_mode IN ('cumulative', 'delta')),
    counter_wrap    numeric,
    active          boolean NOT NULL DEFAULT true,
    UNIQUE (machine_id, name)
);

-- Narrow readings table. No foreign key to tags: the writer checks tag ids itself, and an FK
-- check per row would cost ingest speed. Tags are never deleted, only deactivated.
CREATE TABLE readings (
    time        timestamptz NOT NULL,
    tag_id      int NOT NULL,
    value       double precision,
    quality     smallint NOT NULL DEFAULT 0,
    text_value  text,
    UNIQUE (tag_id, time)
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'));

-- Rows the writer could not store as readings (bad data), kept with the reason: never dropped.
CREATE TABLE rejected_readings (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    time        timestamptz,
    tag_id      int,
    row_repr    text NOT NULL,
    reason      text NOT NULL
);
