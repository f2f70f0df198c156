-- A default channel is notified by every rule that names no channel (the built-in rules
-- among them), so a new installation's rules reach someone once one channel is marked.
ALTER TABLE alert_channels ADD COLUMN is_default boolean NOT NULL DEFAULT false;
