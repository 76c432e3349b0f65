-- The one name shared queries read, whatever the store mode: (bucket, grid2_code, kind, n),
-- kind 'gps' for fixes, else the event kind.
CREATE VIEW activity_hourly AS
SELECT bucket, grid2_code, 'gps'::text AS kind, n FROM fix_hourly
UNION ALL
SELECT bucket, grid2_code, kind, n FROM event_hourly;
