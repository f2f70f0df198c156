-- Logs: one row per entry, partitioned by day (retention drops whole partitions), with indexes
-- for time, service and level, trigram search on the message and every other field in jsonb.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE log_lines (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    ts          timestamptz NOT NULL,
    service     text NOT NULL,
    -- 0 trace, 1 debug, 2 info, 3 warn, 4 error, 5 fatal; NULL when the line had none
    level       smallint CHECK (level BETWEEN 0 AND 5),
    message     text NOT NULL,
    fields      jsonb NOT NULL DEFAULT '{}',
    -- The request fields the analytics read, typed at ingest (NULL when a line has none):
    -- plain columns scan far faster than jsonb.
    status      smallint,
    duration    double precision,
    path        text,
    ip          text,
    method      text,
    user_agent  text,
    -- where it came from: a file path, `api`, `import`
    source      text NOT NULL DEFAULT '',
    parse_error text,
    PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);
CREATE INDEX log_lines_service_ts_idx ON log_lines (service, ts DESC);
CREATE INDEX log_lines_level_ts_idx ON log_lines (level, ts DESC) WHERE level >= 3;
CREATE INDEX log_lines_message_trgm_idx ON log_lines USING gin (message gin_trgm_ops);
CREATE INDEX log_lines_status_idx ON log_lines (status, ts DESC) WHERE status >= 400;
