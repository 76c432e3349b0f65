-- Hourly activity per level-2 grid as continuous aggregates (Timescale License), with
-- real-time aggregation so the newest hour is always current.
CREATE MATERIALIZED VIEW fix_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(interval '1 hour', ts) AS bucket, coalesce(grid2_code, '') AS grid2_code, count(*) AS n
FROM gps_fix GROUP BY 1, 2 WITH NO DATA;

CREATE MATERIALIZED VIEW event_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(interval '1 hour', ts) AS bucket, coalesce(grid2_code, '') AS grid2_code, kind, count(*) AS n
FROM terminal_event GROUP BY 1, 2, 3 WITH NO DATA;

SELECT add_continuous_aggregate_policy('fix_hourly', start_offset => interval '3 days',
       end_offset => interval '1 hour', schedule_interval => interval '15 minutes');
SELECT add_continuous_aggregate_policy('event_hourly', start_offset => interval '3 days',
       end_offset => interval '1 hour', schedule_interval => interval '15 minutes');
