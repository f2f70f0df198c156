-- The minutes of rolled-up hours, per service, written with the hour's row: a range that starts
-- or ends inside a past hour (the "last 6 hours" of a busy service) reads that hour's whole
-- minutes from here and only the seconds at its very edges from log_lines. A minute keeps the
-- 100 most frequent keys of each kind (paths, IPs, agents, error messages).
CREATE TABLE log_rollup_minutes (
    service     text NOT NULL,
    minute      timestamptz NOT NULL,
    lines       bigint NOT NULL,
    data        jsonb NOT NULL,
    PRIMARY KEY (service, minute)
);
CREATE INDEX log_rollup_minutes_minute_idx ON log_rollup_minutes (minute);

-- Hours marked done from now on have their minutes stored as they are rolled up; those done
-- before have none, and ranges keep reading their edges from the lines.
ALTER TABLE log_rollup_hours_done ADD COLUMN minutes boolean NOT NULL DEFAULT false;
ALTER TABLE log_rollup_hours_done ALTER COLUMN minutes SET DEFAULT true;
