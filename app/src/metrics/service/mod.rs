//! Metrics storage: ingest (one statement that stores samples and merges them into the 1-minute
//! and 1-hour rollups and the latest values), series queries from the right tier, partitions and
//! retention.

use super::rollup::{self, Bucket};
use super::{
    bucket_secs, choose_tier, validate_batch, HostInfo, IngestBatch, IngestOutcome, Labels,
    LatestValue, Retention, Selector, SeriesData, SeriesPoint, SeriesResponse, Tier,
};
use crate::db::{Conns, Reads};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

mod compact;
mod ingest;
mod pages;
mod query;
mod retention;

pub use compact::*;
pub use ingest::*;
pub use pages::*;
pub use query::*;
pub use retention::*;
