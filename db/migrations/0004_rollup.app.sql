-- Hourly activity per level-2 grid, kept by ingest in the same transaction as the insert
-- (Apache-licensed TimescaleDB and plain PostgreSQL have no continuous aggregates).
-- Only rows actually inserted are counted, so a redelivery never counts twice.
-- grid2_code '' = outside every grid.
CREATE TABLE fix_hourly (
    bucket      timestamptz NOT NULL,
    grid2_code  text        NOT NULL,
    n           bigint      NOT NULL,
    PRIMARY KEY (bucket, grid2_code)
);
CREATE TABLE event_hourly (
    bucket      timestamptz NOT NULL,
    grid2_code  text        NOT NULL,
    kind        text        NOT NULL,
    n           bigint      NOT NULL,
    PRIMARY KEY (bucket, grid2_code, kind)
);
CREATE INDEX event_hourly_kind ON event_hourly (kind, bucket DESC);
