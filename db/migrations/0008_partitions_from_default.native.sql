-- Native mode: a day whose rows already fell into the default partition (ingest was down longer
-- than the partitions made ahead) can still get its own partition: its rows are moved out of the
-- default first, which PostgreSQL otherwise refuses. Day bounds are UTC days, whatever the
-- session's TimeZone.
CREATE OR REPLACE FUNCTION gw_ensure_partitions(parent text, from_day date, days int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    d date;
    lo timestamptz;
    hi timestamptz;
    made int := 0;
    part text;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        part := format('%s_p%s', parent, to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', part, parent);
            EXECUTE format('WITH moved AS (DELETE FROM %I WHERE ts >= %L AND ts < %L RETURNING *)'
                           ' INSERT INTO %I SELECT * FROM moved', parent || '_default', lo, hi, part);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           parent, part, lo, hi);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
