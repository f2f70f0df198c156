-- Incidents: an alert that starts firing opens one or joins an open one (same host, or within
-- `incident_join_minutes` of its last event). It ends when all its alerts have resolved and
-- stays open for notes until someone closes it with a summary.
CREATE TABLE incidents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title         text NOT NULL,
    -- The worst severity of its alerts: critical or warning.
    severity      text NOT NULL CHECK (severity IN ('critical', 'warning')),
    hosts         text[] NOT NULL DEFAULT '{}',
    started_at    timestamptz NOT NULL,
    last_event_at timestamptz NOT NULL,
    -- Set when the last of its alerts resolved; cleared when one fires again.
    ended_at      timestamptz,
    acked_by      text,
    acked_at      timestamptz,
    assignee      text,
    closed_by     text,
    closed_at     timestamptz,
    summary       text
);
CREATE INDEX incidents_started_idx ON incidents (started_at DESC);
CREATE INDEX incidents_open_idx ON incidents (last_event_at DESC) WHERE closed_at IS NULL;

-- The alerts (rule instances) an incident holds, and whether each is still firing.
CREATE TABLE incident_alerts (
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    rule_id     bigint NOT NULL,
    instance    text NOT NULL,
    firing      boolean NOT NULL,
    PRIMARY KEY (incident_id, rule_id, instance)
);
CREATE INDEX incident_alerts_firing_idx ON incident_alerts (rule_id, instance) WHERE firing;

ALTER TABLE alert_events ADD COLUMN incident_id bigint REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX alert_events_incident_idx ON alert_events (incident_id) WHERE incident_id IS NOT NULL;

CREATE TABLE incident_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    author      text NOT NULL,
    text        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_notes_incident_idx ON incident_notes (incident_id, at);

-- Annotations: deploys and other changes, posted by users or by scripts with an ingest token,
-- marked on the charts of their host (every host's when none) and on incident timelines.
CREATE TABLE annotations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts         timestamptz NOT NULL,
    text       text NOT NULL,
    tags       text[] NOT NULL DEFAULT '{}',
    host       text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX annotations_ts_idx ON annotations (ts);
