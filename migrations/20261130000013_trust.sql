-- Roll-ups now count slow requests (over 5 s) exactly, and count as requests the lines with an
-- HTTP status or a path (as the path and response-time panels do): every stored hour is
-- marked to be rolled up again by the next round (its day merged again with it), and the
-- current hour's live roll-up starts afresh.
INSERT INTO log_rollup_pending (service, day, hour)
SELECT service, (hour AT TIME ZONE 'UTC')::date, hour FROM log_rollup_hours;
DELETE FROM log_rollup_live;
DELETE FROM log_rollup_live_rounds;

-- Names that match no user are no longer kept whole in the audit log.
UPDATE audit_log SET target = left(target, 64), actor = left(actor, 64)
WHERE length(target) > 64 OR length(actor) > 64;

-- The seeding marker is a finished job, not one left half-done.
UPDATE job_runs SET last_finish = last_start WHERE name = 'alerts_seeded' AND last_finish IS NULL;
