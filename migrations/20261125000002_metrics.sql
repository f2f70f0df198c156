-- Host metrics: a dictionary of series, raw samples partitioned by day, mergeable rollups at
-- 1 minute and 1 hour, the latest value of each series, and ingest tokens for agents.

CREATE TABLE metric_series (
    id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host   text NOT NULL,
    metric text NOT NULL,
    labels jsonb NOT NULL DEFAULT '{}',
    UNIQUE (host, metric, labels)
);
CREATE INDEX metric_series_metric_idx ON metric_series (metric, host);

-- Narrow rows (series, time, value): one row is 28 bytes of data. Daily partitions are created
-- ahead of time and dropped whole by the retention job.
CREATE TABLE metric_samples (
    series_id integer NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (series_id, ts)
) PARTITION BY RANGE (ts);

-- Rollups keep sum and count (so averages merge exactly), min, max and the last value.
CREATE TABLE metric_rollup_1m (
    series_id  integer NOT NULL,
    bucket     timestamptz NOT NULL,
    sum        double precision NOT NULL,
    count      integer NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    last_ts    timestamptz NOT NULL,
    last_value double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE INDEX metric_rollup_1m_bucket_idx ON metric_rollup_1m USING brin (bucket);

CREATE TABLE metric_rollup_1h (
    series_id  integer NOT NULL,
    bucket     timestamptz NOT NULL,
    sum        double precision NOT NULL,
    count      integer NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    last_ts    timestamptz NOT NULL,
    last_value double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE INDEX metric_rollup_1h_bucket_idx ON metric_rollup_1h USING brin (bucket);

CREATE TABLE metric_latest (
    series_id integer PRIMARY KEY,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL
);

CREATE TABLE hosts (
    name        text PRIMARY KEY,
    -- 'local' for the server's own collector, 'agent' for pushed samples
    source      text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL
);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    scope        text NOT NULL CHECK (scope IN ('ingest', 'metrics')),
    -- SHA-256 of the token; the token itself is shown once at creation
    token_hash   text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Which scheduled job ran last, and how it went (jobs take an advisory lock to run once).
CREATE TABLE job_runs (
    name        text PRIMARY KEY,
    last_start  timestamptz,
    last_finish timestamptz,
    last_error  text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
