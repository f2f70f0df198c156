-- The public status page: checks marked public (under a public name), incidents given a public
-- title, and each check's daily uptime kept for 90 days after its results expire (30 days).
ALTER TABLE health_checks
    ADD COLUMN public boolean NOT NULL DEFAULT false,
    ADD COLUMN public_name text;
ALTER TABLE incidents ADD COLUMN public_title text;

-- Results (maintenance excluded) of each check per UTC day, added as the results expire.
CREATE TABLE health_daily (
    check_id bigint NOT NULL REFERENCES health_checks (id) ON DELETE CASCADE,
    day      date NOT NULL,
    up       bigint NOT NULL,
    total    bigint NOT NULL,
    PRIMARY KEY (check_id, day)
);
