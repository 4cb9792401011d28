-- Core schema shared by every service: registry, commands/OTA, ingest state, series, rules/events, notifications, users.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE device_types (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    description      text NOT NULL DEFAULT '',
    metrics          jsonb NOT NULL DEFAULT '[]',   -- [{"type", "unit", "min", "max"}]
    send_interval_s  integer NOT NULL DEFAULT 10 CHECK (send_interval_s > 0),
    hello_interval_s integer NOT NULL DEFAULT 60 CHECK (hello_interval_s > 0),
    retention_days   integer NOT NULL DEFAULT 90 CHECK (retention_days > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id         text NOT NULL UNIQUE CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name              text NOT NULL,
    serial_number     text UNIQUE,
    device_type_id    uuid NOT NULL REFERENCES device_types(id),
    location          text,
    status            text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'inactive', 'maintenance', 'decommissioned')),
    metadata          jsonb NOT NULL DEFAULT '{}',
    ingest_token_hash text,                          -- sha256 hex of the optional HTTP ingest token
    connection_status text NOT NULL DEFAULT 'unknown' CHECK (connection_status IN ('online', 'offline', 'unknown')),
    last_seen         timestamptz,
    fw_version        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_type_idx ON devices (device_type_id, created_at);
CREATE INDEX devices_status_idx ON devices (status, created_at);
CREATE INDEX devices_connection_idx ON devices (connection_status, created_at);
CREATE INDEX devices_created_idx ON devices (created_at, id);
CREATE INDEX devices_name_trgm ON devices USING gin (name gin_trgm_ops);
CREATE INDEX devices_serial_trgm ON devices USING gin (serial_number gin_trgm_ops);

CREATE TABLE device_configs (
    device_id        uuid PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    desired          jsonb NOT NULL DEFAULT '{}',
    version          integer NOT NULL DEFAULT 0,
    reported         jsonb,
    reported_version integer,
    reported_at      timestamptz,
    updated_by       text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ota_rollouts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fw_version   text NOT NULL,
    url          text NOT NULL,
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE commands (
    id          uuid PRIMARY KEY,                   -- the cmd_id sent to the device
    device_id   uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    cmd         text NOT NULL CHECK (cmd IN ('update_config', 'start_ota', 'reboot', 'factory_reset', 'request_status')),
    params      jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'accepted', 'rejected', 'error', 'unsupported', 'expired')),
    detail      text,
    bulk_id     uuid,
    rollout_id  uuid REFERENCES ota_rollouts(id) ON DELETE SET NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    acked_at    timestamptz,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX commands_device_idx ON commands (device_id, created_at DESC);
CREATE INDEX commands_open_idx ON commands (expires_at) WHERE status IN ('pending', 'sent');
CREATE INDEX commands_bulk_idx ON commands (bulk_id) WHERE bulk_id IS NOT NULL;

CREATE TABLE ota_device_states (
    rollout_id   uuid NOT NULL REFERENCES ota_rollouts(id) ON DELETE CASCADE,
    device_id    uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    cmd_id       uuid NOT NULL UNIQUE,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'downloading', 'verifying', 'applying', 'success', 'failed')),
    progress_pct real NOT NULL DEFAULT 0,
    detail       text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, device_id)
);

-- Collector: sequence tracking (flushed in batches, not per message).
CREATE TABLE device_seq_tracking (
    device_id        text PRIMARY KEY,
    epoch            integer NOT NULL DEFAULT 0,
    last_seq         bigint NOT NULL,
    window_bits      bigint NOT NULL DEFAULT 0,   -- seen-bitmap of the 64 seqs below last_seq
    gaps_total       bigint NOT NULL DEFAULT 0,
    missing_total    bigint NOT NULL DEFAULT 0,
    duplicates_total bigint NOT NULL DEFAULT 0,
    reboots_total    bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Series on a single node: one row per datagram, partitioned by day on the device timestamp.
CREATE TABLE telemetry (
    device_id    text NOT NULL,
    ts           timestamptz NOT NULL,
    msg_id       uuid NOT NULL,
    device_type  text NOT NULL,
    epoch        integer NOT NULL,
    seq          bigint NOT NULL,
    measurements jsonb NOT NULL,                   -- [{"ts", "type", "val", "unit"}]
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (device_id, ts, msg_id)
) PARTITION BY RANGE (ts);

-- Rules, their runtime state, events and the transactional outbox.
CREATE TABLE rules (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    kind             text NOT NULL DEFAULT 'threshold'
                     CHECK (kind IN ('threshold', 'seq_gap', 'offline', 'ota_failed', 'command_timeout')),
    scope            text NOT NULL DEFAULT 'all' CHECK (scope IN ('device', 'device_type', 'all')),
    device_id        text,
    device_type      text,
    metric           text,
    operator         text CHECK (operator IN ('gt', 'lt', 'gte', 'lte', 'eq', 'neq')),
    threshold        double precision,
    severity         text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    message_template text NOT NULL DEFAULT '{metric} on {device_id} is {value} {unit} (threshold {threshold})',
    for_seconds      integer NOT NULL DEFAULT 0 CHECK (for_seconds >= 0),
    clear_hysteresis double precision NOT NULL DEFAULT 0 CHECK (clear_hysteresis >= 0),
    renotify_seconds integer NOT NULL DEFAULT 0 CHECK (renotify_seconds >= 0),
    cooldown_seconds integer NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
    params           jsonb NOT NULL DEFAULT '{}',  -- built-in kinds' knobs (e.g. offline factor)
    enabled          boolean NOT NULL DEFAULT true,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'threshold' OR (metric IS NOT NULL AND operator IS NOT NULL AND threshold IS NOT NULL)),
    CHECK (scope <> 'device' OR device_id IS NOT NULL),
    CHECK (scope <> 'device_type' OR device_type IS NOT NULL)
);
CREATE INDEX rules_enabled_idx ON rules (enabled, kind);

CREATE TABLE rule_state (
    rule_id          uuid NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id        text NOT NULL,
    pending_since    timestamptz,
    open_event_id    uuid,
    last_value       double precision,
    last_notified_at timestamptz,
    cleared_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, device_id)
);

CREATE TABLE events (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id            uuid REFERENCES rules(id) ON DELETE SET NULL,
    rule_name          text NOT NULL,
    rule_kind          text NOT NULL,
    device_id          text NOT NULL,
    device_type        text,
    severity           text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message            text NOT NULL,
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    first_ts           timestamptz NOT NULL,
    last_ts            timestamptz NOT NULL,
    count              integer NOT NULL DEFAULT 1,
    trigger_values     jsonb NOT NULL DEFAULT '{}',  -- snapshot of the reading(s) that fired it
    last_value         double precision,
    acknowledged_by    text,
    acknowledged_at    timestamptz,
    resolved_by        text,
    resolved_at        timestamptz,
    resolution_comment text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- One unresolved event per (rule, device): repeats update it instead of adding rows.
CREATE UNIQUE INDEX events_one_open ON events (rule_id, device_id) WHERE status <> 'resolved';
CREATE INDEX events_status_idx ON events (status, severity, last_ts DESC);
CREATE INDEX events_device_idx ON events (device_id, last_ts DESC);
CREATE INDEX events_last_ts_idx ON events (last_ts DESC);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    message_id   uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    exchange     text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Notifications.
CREATE TABLE subscriptions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('log', 'webhook', 'email')),
    target       text NOT NULL,
    secret       text,                                 -- webhook HMAC key; never returned by the API
    min_severity text NOT NULL DEFAULT 'info' CHECK (min_severity IN ('info', 'warning', 'critical')),
    device_type  text,
    device_id    text,
    rule_id      uuid REFERENCES rules(id) ON DELETE CASCADE,
    enabled      boolean NOT NULL DEFAULT true,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    change_id       uuid NOT NULL,                     -- the event-change message id (outbox.message_id)
    event_id        uuid NOT NULL,
    subscription_id uuid REFERENCES subscriptions(id) ON DELETE SET NULL,
    channel         text NOT NULL,
    target          text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (change_id, subscription_id)                -- a redelivered event change never notifies twice
);
CREATE INDEX notifications_event_idx ON notifications (event_id);
CREATE INDEX notifications_status_idx ON notifications (status, created_at DESC);

CREATE TABLE notification_attempts (
    id              bigserial PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    response_code   integer,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (notification_id, attempt)
);

-- Dead letters recorded from the broker so operators can list, replay or discard them.
CREATE TABLE dead_letters (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id   text UNIQUE,
    source       text NOT NULL,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    exchange     text,
    routing_key  text,
    headers      jsonb NOT NULL DEFAULT '{}',
    body         bytea NOT NULL,
    status       text NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'replayed', 'discarded')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    handled_by   text,
    handled_at   timestamptz
);
CREATE INDEX dead_letters_status_idx ON dead_letters (status, received_at DESC);

-- Users and revoked tokens.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    is_active     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_idx ON users (lower(email));

CREATE TABLE token_blocklist (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

-- Reference device types and built-in rules (defaults; operators tune them per device type).
INSERT INTO device_types (name, description, metrics, send_interval_s, hello_interval_s) VALUES
  ('power_meter_dc', 'DC traction power meter',
   '[{"type": "voltage_dc", "unit": "V", "min": 0, "max": 1500},
     {"type": "current_dc", "unit": "A", "min": -1000, "max": 1000},
     {"type": "temperature", "unit": "Cel", "min": -40, "max": 125}]', 10, 60),
  ('power_meter_ac', 'AC traction power meter',
   '[{"type": "voltage_ac", "unit": "V", "min": 0, "max": 30000},
     {"type": "current_ac", "unit": "A", "min": 0, "max": 1000},
     {"type": "frequency", "unit": "Hz", "min": 45, "max": 55},
     {"type": "pf", "unit": "", "min": 0, "max": 1},
     {"type": "thd_v", "unit": "%", "min": 0, "max": 100},
     {"type": "thd_i", "unit": "%", "min": 0, "max": 100}]', 10, 60);

INSERT INTO rules (name, kind, severity, message_template, params) VALUES
  ('Sequence gap', 'seq_gap', 'warning', '{device_id} lost {value} message(s)', '{}'),
  ('Device offline', 'offline', 'critical', '{device_id} sent nothing for {value} s', '{"factor": 2}'),
  ('OTA failed', 'ota_failed', 'critical', 'OTA on {device_id} failed: {detail}', '{}'),
  ('Command not acknowledged', 'command_timeout', 'warning', '{device_id} did not acknowledge {cmd}', '{}');
