-- Notifications a team keeps trusting: what rules announce waits in an outbox and goes out per
-- channel as one message (grouped for `group_wait`, then batched every `group_interval`, at
-- most `max_per_hour` messages and then one digest an hour). Alerts of a silent host's checks,
-- processes and metrics are suppressed and listed under the host instead. Checks may name the
-- host they depend on.
ALTER TABLE alert_channels
    ADD COLUMN group_wait_seconds integer NOT NULL DEFAULT 30
        CHECK (group_wait_seconds BETWEEN 0 AND 3600),
    ADD COLUMN group_interval_seconds integer NOT NULL DEFAULT 300
        CHECK (group_interval_seconds BETWEEN 0 AND 86400),
    ADD COLUMN max_per_hour integer NOT NULL DEFAULT 20
        CHECK (max_per_hour BETWEEN 1 AND 1000);

-- One row per notice and channel. outcome: waiting, sent (in a message), suppressed (its host is
-- silent or its own alert fires), dropped (the channel was paused or deleted meanwhile).
CREATE TABLE alert_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    event_id        bigint REFERENCES alert_events (id) ON DELETE CASCADE,
    notice          jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL DEFAULT 'waiting',
    reason          text,
    notification_id bigint REFERENCES alert_notifications (id) ON DELETE SET NULL,
    flushed_at      timestamptz
);
CREATE INDEX alert_outbox_waiting_idx ON alert_outbox (channel_id, created_at) WHERE outcome = 'waiting';
CREATE INDEX alert_outbox_created_idx ON alert_outbox (created_at DESC);

-- A message: how many alerts it lists, and whether it is an hourly digest (the cap was reached).
ALTER TABLE alert_notifications
    ADD COLUMN alerts integer NOT NULL DEFAULT 1,
    ADD COLUMN digest boolean NOT NULL DEFAULT false;
CREATE INDEX alert_notifications_channel_idx ON alert_notifications (channel_id, created_at DESC);

ALTER TABLE health_checks ADD COLUMN host text;
