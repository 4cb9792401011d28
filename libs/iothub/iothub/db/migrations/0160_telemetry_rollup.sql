-- One-minute rollups of the telemetry table, kept in the same statement as every insert into it, so aggregate
-- queries over whole minutes read ~1,440 rows per metric and day instead of unnesting every datagram's JSONB.
-- A statement trigger sees only the rows the INSERT actually added (its transition table): a redelivered datagram
-- that hits the primary key (ON CONFLICT DO NOTHING) is not counted twice. "last" keeps the raw query's order:
-- newest measurement ts, then newest envelope ts, then highest seq. Retention deletes old buckets (collector).
CREATE TABLE IF NOT EXISTS telemetry_1m (
    device_id   text NOT NULL,
    metric      text NOT NULL,
    unit        text NOT NULL,
    bucket      timestamptz NOT NULL,            -- date_bin('1 minute', measurement ts, epoch)
    n           bigint NOT NULL,
    sum         double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    last_ts     timestamptz NOT NULL,
    last_env_ts timestamptz NOT NULL,
    last_seq    bigint NOT NULL,
    last_val    double precision NOT NULL,
    PRIMARY KEY (device_id, bucket, metric, unit)
);
CREATE INDEX IF NOT EXISTS telemetry_1m_bucket_idx ON telemetry_1m USING brin (bucket);

-- The merge of telemetry rows from `source` (a table, or the trigger's transition table) into the rollup, as SQL
-- text: written once, run by the trigger and by the backfill below.
CREATE OR REPLACE FUNCTION telemetry_rollup_sql(source text) RETURNS text LANGUAGE sql IMMUTABLE AS $fn$
SELECT format($q$
    INSERT INTO telemetry_1m AS r (device_id, metric, unit, bucket, n, sum, min, max,
                                   last_ts, last_env_ts, last_seq, last_val)
    SELECT t.device_id, m.type, m.unit, date_bin('1 minute', m.ts, '1970-01-01T00:00:00Z'),
           count(*), sum(m.val), min(m.val), max(m.val),
           (array_agg(m.ts ORDER BY m.ts DESC, t.ts DESC, t.seq DESC))[1],
           (array_agg(t.ts ORDER BY m.ts DESC, t.ts DESC, t.seq DESC))[1],
           (array_agg(t.seq ORDER BY m.ts DESC, t.ts DESC, t.seq DESC))[1],
           (array_agg(m.val ORDER BY m.ts DESC, t.ts DESC, t.seq DESC))[1]
    FROM %I t
    CROSS JOIN LATERAL jsonb_to_recordset(t.measurements)
         AS m(ts timestamptz, type text, val double precision, unit text)
    WHERE m.ts IS NOT NULL AND m.type IS NOT NULL AND m.unit IS NOT NULL AND m.val IS NOT NULL
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 4, 2, 3  -- the primary key's order: one lock order for concurrent writers
    ON CONFLICT (device_id, bucket, metric, unit) DO UPDATE SET
        n = r.n + EXCLUDED.n,
        sum = r.sum + EXCLUDED.sum,
        min = LEAST(r.min, EXCLUDED.min),
        max = GREATEST(r.max, EXCLUDED.max),
        (last_ts, last_env_ts, last_seq, last_val) = (
            SELECT CASE WHEN newer THEN EXCLUDED.last_ts ELSE r.last_ts END,
                   CASE WHEN newer THEN EXCLUDED.last_env_ts ELSE r.last_env_ts END,
                   CASE WHEN newer THEN EXCLUDED.last_seq ELSE r.last_seq END,
                   CASE WHEN newer THEN EXCLUDED.last_val ELSE r.last_val END
            FROM (SELECT (EXCLUDED.last_ts, EXCLUDED.last_env_ts, EXCLUDED.last_seq)
                         > (r.last_ts, r.last_env_ts, r.last_seq) AS newer) c)
$q$, source)
$fn$;

CREATE OR REPLACE FUNCTION telemetry_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE telemetry_rollup_sql('new_rows');  -- dynamic SQL sees the transition table too
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS telemetry_rollup ON telemetry;
CREATE TRIGGER telemetry_rollup AFTER INSERT ON telemetry REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_rollup();

-- Datagrams stored before this migration.
DO $fn$ BEGIN EXECUTE telemetry_rollup_sql('telemetry'); END $fn$;
