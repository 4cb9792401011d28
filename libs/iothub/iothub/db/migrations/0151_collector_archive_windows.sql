-- Collector archive writer: one row per archive window object, locked while a collector merges into the object
-- (several collectors consume collector.archive) and holding the digest of its last written content, so a
-- collector may trust its cached copy only while nobody else has rewritten the object. Old rows are pruned.
CREATE TABLE IF NOT EXISTS archive_windows (
    key        text PRIMARY KEY,
    digest     text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS archive_windows_updated_idx ON archive_windows (updated_at);
