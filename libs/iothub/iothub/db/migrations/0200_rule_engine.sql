-- Rule engine: per-device progress (idempotency on redelivery, gap-notice dedup, last heard for the offline rule).
CREATE TABLE rule_engine_devices (
    device_id   text PRIMARY KEY,
    device_type text,
    epoch       integer NOT NULL DEFAULT -1,
    seq         bigint NOT NULL DEFAULT -1,
    window_bits bigint NOT NULL DEFAULT 0,      -- processed-bitmap of the 64 seqs below seq
    last_seen   timestamptz,                    -- collector received_at of the newest message (wall clock)
    gap_epoch   integer NOT NULL DEFAULT -1,
    gap_seq     bigint NOT NULL DEFAULT -1,     -- received_seq of the newest gap notice handled
    updated_at  timestamptz NOT NULL DEFAULT now()
);
