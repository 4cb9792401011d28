-- Rule engine: who owns each partition. A replica that acquires a partition bumps its generation (the row lock
-- waits for the previous owner's transaction in flight); every batch and sweep transaction re-reads the
-- generations of its partitions FOR SHARE and aborts when one moved on, so a deposed owner can never write.
CREATE TABLE rule_engine_partitions (
    partition   integer PRIMARY KEY,
    generation  bigint NOT NULL,
    owner       text NOT NULL,                  -- replica that acquired it last (host:pid), for operators
    acquired_at timestamptz NOT NULL DEFAULT now()
);
