-- Notifier: event changes stored before the broker ack, and the delivery schedule of each notification.

-- One row per accepted event change; notifications are delivered from it after the message is acked.
CREATE TABLE notification_changes (
    change_id   uuid PRIMARY KEY,                    -- AMQP message_id = outbox.message_id
    event_id    uuid NOT NULL,
    change      text NOT NULL,
    routing_key text NOT NULL DEFAULT '',
    payload     jsonb NOT NULL,                      -- the event change exactly as decoded from the wire
    occurred_at timestamptz NOT NULL,                -- start of delivery latency (event last_ts or receipt)
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_changes_event_idx ON notification_changes (event_id);

-- When the scheduler may next attempt a pending notification; a claim pushes it out by a lease.
ALTER TABLE notifications ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE notifications ADD COLUMN sent_at timestamptz;
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';
