-- Compression and retention as TimescaleDB policies (Timescale License). The retention
-- period comes from Settings.retention_days, passed by the migration runner.
ALTER TABLE gps_fix SET (timescaledb.compress, timescaledb.compress_segmentby = 'terminal_id',
                         timescaledb.compress_orderby = 'ts DESC, seq');
SELECT add_compression_policy('gps_fix', compress_after => interval '7 days');
SELECT add_retention_policy('gps_fix',
       drop_after => make_interval(days => current_setting('gridwatch.retention_days')::int));
ALTER TABLE terminal_event SET (timescaledb.compress, timescaledb.compress_segmentby = 'terminal_id',
                                timescaledb.compress_orderby = 'ts DESC, seq');
SELECT add_compression_policy('terminal_event', compress_after => interval '30 days');
