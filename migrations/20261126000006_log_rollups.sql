-- Log analytics rolled up per service and UTC day (see app/src/logs/rollup.rs): a range's
-- figures read the finished days from here and only the unfinished edges from log_lines.
CREATE TABLE log_rollups (
    service     text NOT NULL,
    day         date NOT NULL,
    lines       bigint NOT NULL,
    data        jsonb NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, day)
);

-- The days whose every service is in log_rollups (a day with no row there had no lines).
CREATE TABLE log_rollup_days (
    day         date PRIMARY KEY,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- Lines written into a day that was (or was about to be) rolled up: that service's day is read
-- from log_lines again until the job has rolled it up anew. One row per writing transaction, no
-- unique key, so that a writer never waits on another and the job deletes only marks whose
-- lines are committed.
CREATE TABLE log_rollup_pending (
    service text NOT NULL,
    day     date NOT NULL
);
CREATE INDEX log_rollup_pending_day_idx ON log_rollup_pending (day, service);
