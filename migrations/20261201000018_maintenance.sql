-- Maintenance windows: one-off (starts_at, ends_at) or recurring (a cron schedule and a
-- duration in a time zone), over a host pattern, checks and/or rules. The alerts they cover
-- are evaluated and shown but notify no one.
CREATE TABLE maintenance_windows (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL,
    host             text,
    checks           text[] NOT NULL DEFAULT '{}',
    rules            text[] NOT NULL DEFAULT '{}',
    starts_at        timestamptz,
    ends_at          timestamptz,
    schedule         text,
    duration_minutes integer,
    timezone         text,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((starts_at IS NOT NULL AND ends_at > starts_at AND schedule IS NULL)
        OR (schedule IS NOT NULL AND duration_minutes BETWEEN 1 AND 10080 AND starts_at IS NULL AND ends_at IS NULL))
);
CREATE INDEX maintenance_windows_ends_idx ON maintenance_windows (ends_at);
