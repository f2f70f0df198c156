//! Services on the server side: the process watcher used by the collectors, and the scraper of
//! Prometheus endpoints.

pub mod scraper;
pub mod watch;
