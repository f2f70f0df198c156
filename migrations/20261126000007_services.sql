-- Application monitoring: processes watched on each host, and Prometheus endpoints scraped.
CREATE TABLE watched_processes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host       text NOT NULL,
    name       text NOT NULL,
    -- the process name, or a part of its command line (`*` matches anything)
    pattern    text NOT NULL,
    port       integer CHECK (port BETWEEN 1 AND 65535),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (host, name)
);

CREATE TABLE scrape_targets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    url              text NOT NULL,
    -- the host its series are stored under (the server's own by default)
    host             text NOT NULL,
    interval_seconds integer NOT NULL CHECK (interval_seconds BETWEEN 1 AND 86400),
    timeout_seconds  integer NOT NULL CHECK (timeout_seconds BETWEEN 1 AND 300),
    -- sent as `Authorization: Bearer …`; never shown back
    bearer_token     text,
    max_series       integer NOT NULL DEFAULT 10000 CHECK (max_series BETWEEN 1 AND 1000000),
    -- scheduling: whichever process claims a due target (UPDATE … RETURNING) scrapes it
    next_scrape_at   timestamptz NOT NULL DEFAULT now(),
    -- state of the last scrapes
    up               boolean,
    state_since      timestamptz,
    last_scrape_at   timestamptz,
    last_success_at  timestamptz,
    last_error       text,
    last_duration_ms double precision,
    last_samples     integer,
    last_dropped     integer NOT NULL DEFAULT 0,
    -- the cumulative values of the last scrape, for rates
    counters         jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scrape_targets_due_idx ON scrape_targets (next_scrape_at);
