-- `opsdeck logs import` remembers how far it got in each file, committed with each batch, so an
-- import that is killed resumes where it stopped (never storing a line twice), and a file that
-- is imported again only adds the lines appended since.
CREATE TABLE log_imports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service     text NOT NULL,
    format      text NOT NULL,
    -- sha256 of the file's first 64 KiB as stored (compressed or not): the same file under
    -- another name, or grown since, is recognised; another file is not.
    fingerprint text NOT NULL,
    path        text NOT NULL,
    -- Non-empty lines of the file whose entries are stored (the next import starts after them).
    lines_done  bigint NOT NULL DEFAULT 0,
    stored      bigint NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (service, format, fingerprint)
);
