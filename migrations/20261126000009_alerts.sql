-- Alerts: notification channels, rules (seeded from the runbook), the state of every rule
-- instance (rule × host × series), the history of firings, silences, a delivery queue with
-- retries, and HTTP health checks with their results.
CREATE TABLE alert_channels (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    kind       text NOT NULL CHECK (kind IN ('webhook', 'email')),
    -- webhook: the URL (a secret: shown redacted); email: the addresses.
    target     text NOT NULL,
    format     text NOT NULL DEFAULT 'json',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_rules (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    kind       text NOT NULL,
    spec       jsonb NOT NULL,
    enabled    boolean NOT NULL DEFAULT true,
    builtin    boolean NOT NULL DEFAULT false,
    -- forecast rules are evaluated every 10 minutes, not every round
    last_evaluated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per rule instance that is or was pending or firing.
CREATE TABLE alert_states (
    rule_id     bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    instance    text NOT NULL,
    host        text,
    phase       text NOT NULL,
    since       timestamptz NOT NULL,
    notified_at timestamptz,
    seen_at     timestamptz NOT NULL,
    value       double precision,
    summary     text NOT NULL DEFAULT '',
    acked_by    text,
    acked_at    timestamptz,
    evaluated_at timestamptz NOT NULL,
    PRIMARY KEY (rule_id, instance)
);
CREATE INDEX alert_states_phase_idx ON alert_states (phase) WHERE phase <> 'ok';

CREATE TABLE alert_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id   bigint REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name text NOT NULL,
    instance  text NOT NULL,
    host      text,
    status    text NOT NULL,
    value     double precision,
    summary   text NOT NULL DEFAULT '',
    silenced  boolean NOT NULL DEFAULT false,
    at        timestamptz NOT NULL
);
CREATE INDEX alert_events_at_idx ON alert_events (at DESC);

CREATE TABLE alert_silences (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL: every rule.
    rule_id    bigint REFERENCES alert_rules (id) ON DELETE CASCADE,
    -- A host pattern (`*` for any); NULL: any host.
    host       text,
    ends_at    timestamptz NOT NULL,
    comment    text NOT NULL DEFAULT '',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The delivery queue: claimed with SKIP LOCKED, so that one process sends each notification.
CREATE TABLE alert_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    event_id        bigint REFERENCES alert_events (id) ON DELETE CASCADE,
    body            jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'queued',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_notifications_due_idx ON alert_notifications (next_attempt_at) WHERE status = 'queued';

CREATE TABLE health_checks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    url              text NOT NULL,
    interval_seconds integer NOT NULL,
    timeout_seconds  integer NOT NULL,
    expected_status  integer,
    expected_body    text,
    builtin          boolean NOT NULL DEFAULT false,
    next_check_at    timestamptz NOT NULL DEFAULT now(),
    up               boolean,
    state_since      timestamptz,
    last_checked_at  timestamptz,
    last_latency_ms  double precision,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE health_results (
    check_id   bigint NOT NULL REFERENCES health_checks (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL,
    up         boolean NOT NULL,
    latency_ms double precision,
    status     integer,
    error      text,
    PRIMARY KEY (check_id, at)
);
