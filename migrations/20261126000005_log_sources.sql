-- Tailed log files: sources (a path or a glob in its last component), and for each file followed
-- its identity (device, inode) and the offset up to which its lines are stored. The offset is
-- committed in the same transaction as the lines, so a restart neither loses nor repeats a line.
CREATE TABLE log_sources (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path        text NOT NULL,
    format      text NOT NULL CHECK (format IN ('json', 'nginx', 'text')),
    service     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (path, service)
);

CREATE TABLE log_files (
    source_id   bigint NOT NULL REFERENCES log_sources (id) ON DELETE CASCADE,
    dev         bigint NOT NULL,
    inode       bigint NOT NULL,
    path        text NOT NULL,
    "offset"    bigint NOT NULL DEFAULT 0,
    lines       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, dev, inode)
);

-- What the tailer last said about a source (shown on the page).
CREATE TABLE log_source_state (
    source_id      bigint PRIMARY KEY REFERENCES log_sources (id) ON DELETE CASCADE,
    tailer         text,
    lines_per_sec  double precision NOT NULL DEFAULT 0,
    last_line_at   timestamptz,
    last_error     text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
