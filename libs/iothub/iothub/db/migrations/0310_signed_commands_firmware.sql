-- Signed commands: each device's HMAC-SHA256 command key, encrypted at rest (AES-256-GCM under COMMAND_KEY_KEK, bound
-- to the device_id; iothub.command_keys). A table of its own so no device listing can ever select it.
CREATE TABLE IF NOT EXISTS device_command_keys (
    device_id   uuid PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    wrapped_key bytea NOT NULL,
    version     integer NOT NULL DEFAULT 1,           -- +1 on every rotation
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz
);

-- Firmware images uploaded through the API into the object store; the server computed sha256 and size.
CREATE TABLE IF NOT EXISTS firmware_images (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fw_version  text NOT NULL,
    filename    text,
    object_key  text NOT NULL UNIQUE,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes  bigint NOT NULL CHECK (size_bytes > 0),
    uploaded_by text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS firmware_images_created_idx ON firmware_images (created_at DESC, id DESC);

-- A rollout of an uploaded image: its url column then holds the pre-signed URL that was sent (it expires).
ALTER TABLE ota_rollouts ADD COLUMN IF NOT EXISTS firmware_id uuid REFERENCES firmware_images(id) ON DELETE RESTRICT;
