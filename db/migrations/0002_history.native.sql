-- History as native range partitions by day (no TimescaleDB). Same columns and keys as the
-- hypertable variant; gw_ensure_partitions() creates days ahead, the default partition
-- catches anything outside them so no row is ever refused.
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
    grid2_code   text,
    grid1_code   text,
    received_at  timestamptz      NOT NULL,
    extra        jsonb
) PARTITION BY RANGE (ts);
CREATE TABLE gps_fix_default PARTITION OF gps_fix DEFAULT;

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
) PARTITION BY RANGE (ts);
CREATE TABLE terminal_event_default PARTITION OF terminal_event DEFAULT;

-- Create one partition per local day for [from_day, from_day + days) if missing.
CREATE OR REPLACE FUNCTION gw_ensure_partitions(parent text, from_day date, days int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    d date;
    made int := 0;
    part text;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        part := format('%s_p%s', parent, to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, parent, d::timestamptz, (d + 1)::timestamptz);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

-- Drop whole day partitions older than the cutoff: retention without DELETE.
CREATE OR REPLACE FUNCTION gw_drop_partitions_before(parent text, cutoff date)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped int := 0;
BEGIN
    FOR r IN SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = parent AND c.relname ~ '_p[0-9]{8}$'
    LOOP
        IF to_date(right(r.relname, 8), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', r.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

SELECT gw_ensure_partitions('gps_fix', current_date - 31, 31 + 8);
SELECT gw_ensure_partitions('terminal_event', current_date - 31, 31 + 8);
