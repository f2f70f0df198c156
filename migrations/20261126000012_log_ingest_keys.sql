-- Idempotency keys of HTTP log ingest (`Idempotency-Key` header): a batch sent again with the
-- same key after a lost answer is answered from here instead of being stored twice. Stored in
-- the transaction that stores the batch; kept 24 hours.
CREATE TABLE log_ingest_keys (
    token       text NOT NULL,
    key         text NOT NULL,
    body_sha256 bytea NOT NULL,
    accepted    integer NOT NULL,
    unparsed    integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token, key)
);
CREATE INDEX log_ingest_keys_created_idx ON log_ingest_keys (created_at);
