//! What the benchmark binaries share: the scratch database they are pointed at, and how their
//! figures are read.

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The pool and state of the scratch database named by `DATABASE_URL` (migrated by the
/// bench script), with statements allowed half an hour.
pub async fn scratch() -> Res<(sqlx::PgPool, app::state::AppState)> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to an empty scratch database")?;
    let mut cfg = app::config::Config::with_database_url(url);
    // Setting up takes long statements (millions of rows at once).
    cfg.statement_timeout = app::config::Interval(1800);
    let pool = server::connect(&cfg).await?;
    let state = app::state::AppState::new(
        server::leptos_options(cfg.listen),
        pool.clone(),
        cfg.clone(),
    );
    Ok((pool, state))
}

/// The `p` quantile (0 to 1) of sorted figures, NaN for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
