-- Pause and resume without deleting: a paused check, scrape target, watched process, log source
-- or backup schedule is not run, and a paused channel is sent nothing. Alert rules pause with
-- their existing `enabled` column.
ALTER TABLE health_checks ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE alert_channels ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE watched_processes ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE scrape_targets ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE log_sources ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE backup_targets ADD COLUMN paused boolean NOT NULL DEFAULT false;
