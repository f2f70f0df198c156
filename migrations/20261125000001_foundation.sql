-- Users, sessions, login throttling and the audit log.

CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    -- argon2id PHC string
    password_hash        text NOT NULL,
    role                 text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    disabled             boolean NOT NULL DEFAULT false,
    -- sessions that signed in before this instant are no longer valid (password reset, disable)
    sessions_valid_after timestamptz NOT NULL DEFAULT '-infinity',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz
);

-- tower-sessions' PostgreSQL store, with the table created here so every schema change is a migration.
CREATE TABLE sessions (
    id          text PRIMARY KEY,
    data        bytea NOT NULL,
    expiry_date timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry_date);

-- One row per user name ('user:<name>') and per client address ('ip:<addr>').
CREATE TABLE login_throttle (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz
);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text,
    action  text NOT NULL,
    target  text,
    success boolean NOT NULL,
    ip      text,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log USING brin (at);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
