-- Compressed chunks: the samples of one series over one closed hour, packed (app::metrics::chunk)
-- into one row. The compaction job moves an hour's rows from metric_samples here and deletes them
-- in one transaction; samples arriving later for a packed hour land as rows again, and the next
-- compaction merges them in.
CREATE TABLE metric_chunks (
    series_id integer NOT NULL,
    hour      timestamptz NOT NULL,
    samples   integer NOT NULL CHECK (samples > 0),
    data      bytea NOT NULL,
    PRIMARY KEY (series_id, hour)
);
CREATE INDEX metric_chunks_hour_idx ON metric_chunks USING brin (hour);
-- A chunk (a few KiB) stays in its row rather than in TOAST, and is not compressed again.
ALTER TABLE metric_chunks SET (toast_tuple_target = 8160);
ALTER TABLE metric_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
