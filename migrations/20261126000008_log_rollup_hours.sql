-- Log analytics are rolled up per service and UTC hour (5 minutes after the hour ends), and a
-- finished day's hours are merged into its row in log_rollups. A range reads its whole days
-- from log_rollups, the whole hours at its edges from here, and only the rest (the current
-- hour, the minutes at the edges) from log_lines.
CREATE TABLE log_rollup_hours (
    service     text NOT NULL,
    hour        timestamptz NOT NULL,
    lines       bigint NOT NULL,
    data        jsonb NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, hour)
);
CREATE INDEX log_rollup_hours_hour_idx ON log_rollup_hours (hour);

-- The hours whose every service is in log_rollup_hours (a service without a row there had no
-- lines in that hour).
CREATE TABLE log_rollup_hours_done (
    hour        timestamptz PRIMARY KEY,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- Marks now name the hour written into. Days marked before this migration are rolled up anew
-- (from their hours, which the next round computes for every stored day).
DELETE FROM log_rollup_days WHERE day IN (SELECT day FROM log_rollup_pending);
DELETE FROM log_rollup_pending;
ALTER TABLE log_rollup_pending ADD COLUMN hour timestamptz NOT NULL;
CREATE INDEX log_rollup_pending_hour_idx ON log_rollup_pending (hour, service);

-- Reading an hour of a day's partition for every service (the edges of a range) without a
-- pass over the whole day: lines arrive in time order, so a BRIN index stays small and tight.
CREATE INDEX log_lines_ts_brin_idx ON log_lines USING brin (ts);
