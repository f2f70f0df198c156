//! What a user declares, as plain data: a watched process, a scrape target, a log source. The
//! JSON API, the configuration file and the pages all take these shapes. A leaf module: it
//! depends on nothing in the product, so the configuration can hold them without depending on
//! the areas that act on them.

use serde::{Deserialize, Serialize};

/// A process to watch (the body of `POST /api/v1/processes`, a `[[processes]]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProcess {
    pub name: String,
    pub pattern: String,
    #[serde(default)]
    pub port: Option<i64>,
    /// Defaults to the server's own host.
    #[serde(default)]
    pub host: Option<String>,
}

/// An endpoint to scrape (the body of `POST /api/v1/scrape-targets`, a `[[scrape_targets]]`
/// table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    pub name: String,
    pub url: String,
    #[serde(default = "default_interval")]
    pub interval_seconds: i64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: i64,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub max_series: Option<i64>,
    /// Sent as `Authorization: Bearer …` (e.g. another Opsdeck's `metrics` token). Stored,
    /// never shown back.
    #[serde(default)]
    pub bearer_token: Option<String>,
}

fn default_interval() -> i64 {
    15
}

fn default_timeout() -> i64 {
    10
}

/// A file to follow (a `[[log_sources]]` table, Admin › Log sources).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewLogSource {
    /// An absolute path; a `*` is allowed in the file name.
    pub path: String,
    /// `json`, `nginx` or `text`.
    pub format: String,
    pub service: String,
}
