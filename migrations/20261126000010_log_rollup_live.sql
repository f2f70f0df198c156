-- The current hour rolled up as it goes: for each service, the partial of [hour, upto), grown
-- every few seconds by the lines since `upto` (log_rollup_live), and the rounds that brought
-- every service with lines to the same `upto` (log_rollup_live_rounds). A range reads the
-- current hour from here up to the last round and only the last seconds from log_lines.
CREATE TABLE log_rollup_live (
    service     text NOT NULL,
    hour        timestamptz NOT NULL,
    upto        timestamptz NOT NULL,
    lines       bigint NOT NULL,
    data        jsonb NOT NULL,
    PRIMARY KEY (service, hour)
);

CREATE TABLE log_rollup_live_rounds (
    hour        timestamptz PRIMARY KEY,
    upto        timestamptz NOT NULL
);

-- A mark from a line old enough to fall into the live rollup (as opposed to one written near
-- the end of its hour): only these make the live rollup of the hour be rebuilt.
ALTER TABLE log_rollup_pending ADD COLUMN live boolean NOT NULL DEFAULT false;
