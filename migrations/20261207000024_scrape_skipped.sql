-- Series a scrape left out because they were stored here already: the scraped endpoint is an
-- Opsdeck storing into this same database (its own /metrics, or a sibling serve's), whose
-- /metrics re-exports the latest value of every stored series. Only that process's own
-- metrics are kept from such a scrape.
ALTER TABLE scrape_targets ADD COLUMN last_skipped integer NOT NULL DEFAULT 0;
