-- Backups: targets with schedules, every run with its manifest and verification, restore jobs.

CREATE TABLE backup_targets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    -- NULL: Opsdeck's own database, reached with the server's configured DATABASE_URL (so that
    -- secret is never copied here). Otherwise a libpq URL; its password never leaves the server.
    database_url    text,
    schedule        text,
    timezone        text NOT NULL DEFAULT 'UTC',
    keep_days       integer NOT NULL DEFAULT 30 CHECK (keep_days >= 0),
    keep_min        integer NOT NULL DEFAULT 7 CHECK (keep_min >= 0),
    -- test restore of the newest backup every this many hours (default weekly); 0 = only on demand
    verify_every_hours integer NOT NULL DEFAULT 168 CHECK (verify_every_hours >= 0),
    next_run_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backup_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id        bigint NOT NULL REFERENCES backup_targets (id) ON DELETE CASCADE,
    trigger          text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'pre_restore')),
    requested_by     text,
    status           text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- updated while running; a run whose heartbeat stops was cut off (process killed)
    heartbeat_at     timestamptz NOT NULL DEFAULT now(),
    path             text,
    bytes_written    bigint NOT NULL DEFAULT 0,
    size             bigint,
    sha256           text,
    pg_dump_version  text,
    server_version   text,
    -- [{"schema","table","rows"}] counted in the snapshot pg_dump used
    manifest         jsonb NOT NULL DEFAULT '[]',
    stderr_tail      text NOT NULL DEFAULT '',
    error            text,
    verified_at      timestamptz,
    verify_ok        boolean,
    verify_detail    text,
    test_restored_at timestamptz,
    test_restore_ok  boolean,
    test_restore_detail text,
    expired_at       timestamptz
);
CREATE INDEX backup_runs_target_idx ON backup_runs (target_id, started_at DESC);
CREATE INDEX backup_runs_status_idx ON backup_runs (status) WHERE status = 'running';

CREATE TABLE restore_jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backup_id        bigint NOT NULL REFERENCES backup_runs (id) ON DELETE CASCADE,
    target_id        bigint NOT NULL REFERENCES backup_targets (id) ON DELETE CASCADE,
    mode             text NOT NULL CHECK (mode IN ('new_database', 'in_place')),
    database_name    text NOT NULL,
    requested_by     text NOT NULL,
    status           text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    step             text NOT NULL DEFAULT 'queued',
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    heartbeat_at     timestamptz NOT NULL DEFAULT now(),
    pre_restore_backup_id bigint REFERENCES backup_runs (id) ON DELETE SET NULL,
    detail           text,
    stderr_tail      text NOT NULL DEFAULT ''
);
