-- Collector archive writer, shared-object layout (docs/archive.md): one row per object written to
-- raw/date=.../hour=.../msg_type=.../part-*.ndjson[.gz], and one row per archived message naming its object.
-- archive_messages' primary key is what makes the writer idempotent by msg_id across replicas and redeliveries;
-- its (device_id, ts) index is how the device manager finds a device's messages without listing the bucket.
-- No foreign key: retention deletes both tables by object id range (ids grow with time), which a per-row
-- cascade would make slow.
CREATE TABLE IF NOT EXISTS archive_objects (
    id           bigserial PRIMARY KEY,
    key          text NOT NULL UNIQUE,
    window_start timestamptz NOT NULL,
    msg_type     text NOT NULL,
    lines        integer NOT NULL,
    bytes        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS archive_objects_created_idx ON archive_objects (created_at);

CREATE TABLE IF NOT EXISTS archive_messages (
    msg_id    uuid PRIMARY KEY,
    device_id text NOT NULL,
    ts        timestamptz NOT NULL,
    seq       bigint NOT NULL,
    object_id bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS archive_messages_device_ts_idx ON archive_messages (device_id, ts, seq, msg_id);
CREATE INDEX IF NOT EXISTS archive_messages_object_idx ON archive_messages USING brin (object_id);

-- The per-device read-merge-write layout's window locks are no longer used.
DROP TABLE IF EXISTS archive_windows;
