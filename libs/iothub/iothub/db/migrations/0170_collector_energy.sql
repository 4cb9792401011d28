-- Energy (collector energy writer, docs/metering.md). Each power sample stores the energy of the segment ending at it
-- (trapezoid from the previous sample; zero across a gap): `own_*` inside the sample's bucket, `carry_*` before that
-- bucket's start. A bucket row is the sum of its samples' own parts plus the next bucket's carry, recomputed whenever
-- a sample lands in or next to it, so it is idempotent and order-independent. Register readings sum buckets and
-- the own parts of the current bucket's samples.
CREATE TABLE IF NOT EXISTS energy_samples (
    device_id            text NOT NULL,
    ts                   timestamptz NOT NULL,
    p                    double precision,          -- active W (negative: regeneration)
    s                    double precision,          -- apparent VA (AC only)
    q                    double precision,          -- reactive var (AC only)
    own_consumed_wh      double precision NOT NULL DEFAULT 0,
    own_regenerated_wh   double precision NOT NULL DEFAULT 0,
    own_apparent_vah     double precision NOT NULL DEFAULT 0,
    own_reactive_varh    double precision NOT NULL DEFAULT 0,
    own_covered_s        double precision NOT NULL DEFAULT 0,
    carry_consumed_wh    double precision NOT NULL DEFAULT 0,
    carry_regenerated_wh double precision NOT NULL DEFAULT 0,
    carry_apparent_vah   double precision NOT NULL DEFAULT 0,
    carry_reactive_varh  double precision NOT NULL DEFAULT 0,
    carry_covered_s      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, ts)
);

CREATE TABLE IF NOT EXISTS energy_buckets (
    device_id      text NOT NULL,
    bucket         timestamptz NOT NULL,            -- epoch-aligned start (METERING_BUCKET_S)
    bucket_end     timestamptz NOT NULL,
    device_type    text NOT NULL,
    consumed_wh    double precision NOT NULL,
    regenerated_wh double precision NOT NULL,       -- returned energy, as a positive figure
    apparent_vah   double precision NOT NULL,
    reactive_varh  double precision NOT NULL,
    covered_s      double precision NOT NULL,       -- seconds of the bucket integrated from samples
    samples        integer NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, bucket)
);
CREATE INDEX IF NOT EXISTS energy_buckets_type_idx ON energy_buckets (device_type, bucket);

-- Hourly sums of the buckets, re-summed with them: energy reports read 720 rows for a month instead of 8,640.
CREATE TABLE IF NOT EXISTS energy_hours (
    device_id      text NOT NULL,
    hour           timestamptz NOT NULL,
    device_type    text NOT NULL,
    consumed_wh    double precision NOT NULL,
    regenerated_wh double precision NOT NULL,
    apparent_vah   double precision NOT NULL,
    reactive_varh  double precision NOT NULL,
    covered_s      double precision NOT NULL,
    samples        integer NOT NULL,
    PRIMARY KEY (device_id, hour)
);
CREATE INDEX IF NOT EXISTS energy_hours_type_idx ON energy_hours (device_type, hour);
