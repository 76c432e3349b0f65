-- History as TimescaleDB hypertables (one chunk per day).
-- Exactly-once key: (terminal_id, seq, ts). A hypertable's unique index must contain its
-- time column; a redelivered message carries the same ts, so this key catches redelivery.
CREATE TABLE gps_fix (
    ts           timestamptz      NOT NULL,
    terminal_id  text             NOT NULL,
    seq          bigint           NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    acc_m        real,
    speed_mps    real,
    heading_deg  real,
    battery_pct  real,
    grid2_code   text,            -- NULL: outside every level-2 grid
    grid1_code   text,
    received_at  timestamptz      NOT NULL,
    extra        jsonb            -- unknown fields, kept, never trusted
);
SELECT create_hypertable('gps_fix', 'ts', chunk_time_interval => interval '1 day');

CREATE TABLE terminal_event (
    ts           timestamptz NOT NULL,
    terminal_id  text        NOT NULL,
    seq          bigint      NOT NULL,
    kind         text        NOT NULL,
    body         jsonb       NOT NULL,
    lat          double precision,
    lon          double precision,
    grid2_code   text,
    grid1_code   text,
    received_at  timestamptz NOT NULL,
    extra        jsonb
);
SELECT create_hypertable('terminal_event', 'ts', chunk_time_interval => interval '7 days');
