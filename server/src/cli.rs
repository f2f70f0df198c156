//! What each `opsdeck` subcommand does.

use crate::config::{
    self, BackupCommand, Cli, Command, GlobalArgs, LogsCommand, MaintenanceCommand, MetricsCommand,
    ServeFlags, TokenCommand, UserCommand,
};
use app::auth::service::{self, FirstAdmin};
use app::components::fmt_time;
use app::state::AppState;
use std::io::Read;
use std::time::Duration;

/// How long a stopping `opsdeck serve` waits for work under way (a backup, a round of a job).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    App(#[from] app::error::AppError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        None => serve(&cli.global, &ServeFlags::default()).await,
        Some(Command::Serve(flags)) => serve(&cli.global, &flags).await,
        Some(Command::Migrate) => {
            let pool = open(&cli.global).await?;
            let v: Option<i64> =
                sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&pool)
                    .await
                    .map_err(app::error::AppError::from)?;
            println!("migrations applied; schema version {}", v.unwrap_or(0));
            Ok(())
        }
        Some(Command::User(cmd)) => user(&cli.global, cmd).await,
        Some(Command::Token(cmd)) => token(&cli.global, cmd).await,
        Some(Command::Agent(args)) => Ok(crate::agent::run(args).await?),
        Some(Command::Backup(cmd)) => backup(&cli.global, cmd).await,
        Some(Command::Maintenance(cmd)) => maintenance(&cli.global, cmd).await,
        Some(Command::Annotate {
            text,
            host,
            tags,
            at,
        }) => {
            let pool = open(&cli.global).await?;
            let now = time::OffsetDateTime::now_utc();
            let ts = match at.as_deref() {
                Some(s) => Some(app::timestamp::Timestamp(
                    app::metrics::parse_time_param(s, now)
                        .map_err(|e| app::error::AppError::bad_request(format!("--at: {e}")))?,
                )),
                None => None,
            };
            let new = app::incidents::service::NewAnnotation {
                text,
                tags,
                host,
                ts,
            };
            let id = app::incidents::service::add_annotation(&pool, &new, "cli").await?;
            println!("annotation {id} added");
            Ok(())
        }
        Some(Command::Metrics(MetricsCommand::Compact)) => {
            let pool = open(&cli.global).await?;
            let t = std::time::Instant::now();
            let now = time::OffsetDateTime::now_utc();
            // Under the scheduled job's lock: waits for a compaction in progress to end.
            let report = app::locks::run_now_locked(
                &pool,
                "metrics_compaction",
                true,
                app::metrics::service::compact(&pool, now),
            )
            .await?
            .unwrap_or_default();
            println!(
                "compacted: {} samples into {} chunks ({} bytes, {:.2} bytes a sample) in {:.1} s",
                report.samples,
                report.chunks,
                report.bytes,
                report.bytes as f64 / report.samples.max(1) as f64,
                t.elapsed().as_secs_f64()
            );
            if report.dropped_invalid_indexes > 0 {
                println!(
                    "dropped {} index(es) left invalid by an interrupted rebuild",
                    report.dropped_invalid_indexes
                );
            }
            Ok(())
        }
        Some(Command::Logs(LogsCommand::Import {
            files,
            format,
            service,
        })) => {
            let state = open_state(&cli.global).await?;
            crate::logs::import(&state, &files, &format, &service).await?;
            // Roll up the finished hours just written, so that their analytics are quick at
            // once rather than after the server's next round.
            let t = std::time::Instant::now();
            let report = app::locks::run_now_locked(
                &state.pool,
                "log_rollups",
                true,
                app::logs::rollup_jobs::roll_up(&state, time::OffsetDateTime::now_utc()),
            )
            .await?;
            if let Some(report) = report.filter(|r| r.hours > 0) {
                eprintln!(
                    "analytics rolled up: {} service-hours, {} service-days in {:.1} s",
                    report.hours,
                    report.days,
                    t.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
    }
}

async fn maintenance(global: &GlobalArgs, cmd: MaintenanceCommand) -> Result<(), CliError> {
    use app::alerts::service as alerts;
    let pool = open(global).await?;
    let actor = app::auth::service::Actor::system("cli");
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        MaintenanceCommand::Start {
            host,
            checks,
            rules,
            length,
            name,
        } => {
            let secs = app::metrics::parse_duration_secs(&length)
                .map_err(|e| CliError::Usage(format!("--for: {e}")))?;
            let w = app::alerts::maintenance::NewWindow {
                name: name.unwrap_or_else(|| "maintenance".into()),
                host,
                checks,
                rules,
                start: Some(app::timestamp::Timestamp(now)),
                end: Some(app::timestamp::Timestamp(
                    now + time::Duration::seconds(secs),
                )),
                schedule: None,
                duration_minutes: None,
                timezone: None,
            };
            let id = alerts::add_window_by(&pool, &w, &actor).await?;
            println!(
                "maintenance window {id} open until {}",
                app::components::fmt_time(&(now + time::Duration::seconds(secs)))
            );
        }
        MaintenanceCommand::List => {
            let windows = alerts::list_windows(&pool, now).await?;
            if windows.is_empty() {
                println!("no maintenance window");
            }
            for w in windows {
                let when = app::alerts::maintenance::when(&w);
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    w.id,
                    if w.active { "active" } else { "waiting" },
                    w.name,
                    app::alerts::maintenance_view::scope(w.host.as_deref(), &w.checks, &w.rules),
                    when
                );
            }
        }
        MaintenanceCommand::End { id } => {
            alerts::end_window_by(&pool, id, None, &actor).await?;
            println!("maintenance window {id} ended");
        }
    }
    Ok(())
}

async fn backup(global: &GlobalArgs, cmd: BackupCommand) -> Result<(), CliError> {
    use app::backups::service as backups;
    let state = open_state(global).await?;
    let pool = state.pool.clone();
    backups::ensure_own_target(&pool).await?;
    match cmd {
        BackupCommand::Run { target } => {
            eprintln!("backing up `{target}`…");
            let run = backups::run_now(&state, &target, "manual").await?;
            if run.status != "succeeded" {
                return Err(CliError::Usage(format!(
                    "backup {} failed: {}",
                    run.id,
                    run.error.unwrap_or_default()
                )));
            }
            println!(
                "backup {} of `{}` succeeded: {} bytes in {:.1} s, {} tables, sha256 {}",
                run.id,
                run.target,
                run.size.unwrap_or(0),
                run.duration_seconds.unwrap_or(0.0),
                run.manifest.len(),
                run.sha256.unwrap_or_default()
            );
            if let Some(d) = run.verify_detail {
                println!("check: {d}");
            }
        }
        BackupCommand::List { target, limit } => {
            let runs =
                backups::list_runs(&pool, target.as_deref(), None, limit.clamp(1, 1000)).await?;
            println!(
                "{:>6}  {:<16} {:<10} {:<22} {:>12}  VERIFIED",
                "ID", "TARGET", "STATUS", "STARTED", "SIZE"
            );
            for r in runs {
                let status = if r.expired_at.is_some() {
                    "expired"
                } else {
                    r.status.as_str()
                };
                println!(
                    "{:>6}  {:<16} {:<10} {:<22} {:>12}  {}",
                    r.id,
                    r.target,
                    status,
                    fmt_time(&r.started_at),
                    r.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    match r.test_restore_ok {
                        Some(true) => "restorable",
                        Some(false) => "RESTORE FAILED",
                        None if r.verified => "checksum ok",
                        None => "-",
                    }
                );
            }
        }
        BackupCommand::Targets => {
            for t in backups::list_targets(&state).await? {
                println!(
                    "{:<16} {:<40} schedule {:<14} last success {}",
                    t.name,
                    t.database_url,
                    t.schedule.unwrap_or_else(|| "-".into()),
                    t.last_success_at
                        .as_ref()
                        .map(fmt_time)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        BackupCommand::Verify { id, test_restore } => {
            let o = backups::verify(&state, id, test_restore).await?;
            println!("{}", o.detail);
            if !o.ok {
                return Err(CliError::Usage(format!("backup {id} did not verify")));
            }
        }
    }
    pool.close().await;
    Ok(())
}

/// The settings (file, environment and global flags), a migrated pool and the state the
/// product's functions take.
async fn open_state(global: &GlobalArgs) -> Result<AppState, CliError> {
    let cfg = config::load(global, &ServeFlags::default())?;
    let pool = crate::connect(&cfg).await.map_err(CliError::Connect)?;
    crate::MIGRATOR.run(&pool).await?;
    Ok(AppState::new(crate::leptos_options(cfg.listen), pool, cfg))
}

async fn open(global: &GlobalArgs) -> Result<sqlx::PgPool, CliError> {
    Ok(open_state(global).await?.pool)
}

fn read_password(password_stdin: bool) -> Result<String, CliError> {
    if !password_stdin {
        return Err(CliError::Usage(
            "give the password on standard input with --password-stdin (never on the command line)"
                .into(),
        ));
    }
    let mut buf = String::new();
    std::io::stdin().take(4096).read_to_string(&mut buf)?;
    let pw = buf.lines().next().unwrap_or("").to_string();
    app::auth::validate_password(&pw).map_err(CliError::Usage)?;
    Ok(pw)
}

async fn user(global: &GlobalArgs, cmd: UserCommand) -> Result<(), CliError> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            app::auth::validate_username(&name).map_err(CliError::Usage)?;
            let password = read_password(password_stdin)?;
            let pool = open(global).await?;
            service::insert_user(&pool, &name, role, &password).await?;
            service::audit(
                &pool,
                None,
                "user.create",
                Some(&name),
                true,
                None,
                serde_json::json!({"role": role, "via": "cli"}),
            )
            .await?;
            println!("added {name} ({role})");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let pool = open(global).await?;
            service::change_password(&pool, &name, &password).await?;
            service::audit(
                &pool,
                None,
                "user.password",
                Some(&name),
                true,
                None,
                serde_json::json!({"via": "cli"}),
            )
            .await?;
            println!("password changed for {name}; their sessions have ended");
        }
        UserCommand::List => {
            let pool = open(global).await?;
            let users = service::list_users(&pool).await?;
            println!("{:<24} {:<9} {:<9} LAST SIGN-IN", "USER", "ROLE", "STATE");
            for u in users {
                println!(
                    "{:<24} {:<9} {:<9} {}",
                    u.username,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "active" },
                    u.last_login_at
                        .as_ref()
                        .map(fmt_time)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
    }
    Ok(())
}

async fn token(global: &GlobalArgs, cmd: TokenCommand) -> Result<(), CliError> {
    use app::auth::tokens;
    let pool = open(global).await?;
    match cmd {
        TokenCommand::Add { name, scope } => {
            let (info, token) = tokens::create(&pool, &name, &scope, None).await?;
            service::audit(
                &pool,
                None,
                "token.create",
                Some(&name),
                true,
                None,
                serde_json::json!({"scope": scope, "via": "cli"}),
            )
            .await?;
            eprintln!(
                "created token `{}` (scope {}); it is shown once:",
                info.name, info.scope
            );
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:<24} {:<8} {:<11} {:<24} STATE",
                "NAME", "SCOPE", "PREFIX", "LAST USED"
            );
            for t in tokens::list(&pool).await? {
                println!(
                    "{:<24} {:<8} {:<11} {:<24} {}",
                    t.name,
                    t.scope,
                    t.prefix,
                    t.last_used_at
                        .as_ref()
                        .map(fmt_time)
                        .unwrap_or_else(|| "never".into()),
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(&pool, &name).await?;
            service::audit(
                &pool,
                None,
                "token.revoke",
                Some(&name),
                true,
                None,
                serde_json::json!({"via": "cli"}),
            )
            .await?;
            println!("revoked {name}");
        }
    }
    Ok(())
}

async fn serve(global: &GlobalArgs, flags: &ServeFlags) -> Result<(), CliError> {
    let cfg = config::load(global, flags)?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        CliError::Usage(format!(
            "cannot create data directory {}: {e}",
            cfg.data_dir.display()
        ))
    })?;
    let pool = crate::connect(&cfg).await.map_err(CliError::Connect)?;
    crate::MIGRATOR.run(&pool).await?;
    let listen = cfg.listen;
    let admin_password = cfg.admin_password.as_ref().map(|p| p.expose().to_string());
    match service::ensure_first_admin(&pool, admin_password.as_deref()).await? {
        FirstAdmin::Created {
            generated_password: Some(pw),
        } => {
            println!("\nFirst start: created user `admin` with password\n\n    {pw}\n\nSign in at http://{listen}/login and keep this password safe; it is not shown again.\n");
        }
        FirstAdmin::Created {
            generated_password: None,
        } => {
            println!(
                "First start: created user `admin` with the password from OPSDECK_ADMIN_PASSWORD."
            );
        }
        FirstAdmin::Existing => {}
    }
    app::backups::service::ensure_own_target(&pool).await?;
    let state = AppState::new(crate::leptos_options(listen), pool.clone(), cfg);
    for source in &state.config.log_sources {
        app::logs::sources::add_checked(&state, source)
            .await
            .map_err(|e| CliError::Usage(format!("log source {}: {e}", source.path)))?;
    }
    app::services::service::apply_config(&state).await?;
    let own_health = format!(
        "http://{}/api/v1/health",
        if listen.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
        } else {
            listen
        }
    );
    if app::alerts::service::seed(&pool, &own_health).await? {
        tracing::info!("seeded the runbook's alert rules and a health check of {own_health}");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {listen}: {e}")))?;
    tracing::info!("Opsdeck listening on http://{}", listener.local_addr()?);
    let mut tasks = crate::tasks::Tasks::start(&state);
    let stop = state.runtime.stop.clone();
    let server = async {
        let stopping = stop.clone();
        let r = crate::serve(listener, state.clone(), async move {
            tokio::select! {
                _ = crate::shutdown_signal() => {}
                _ = stopping.cancelled() => {}
            }
            stopping.cancel();
        })
        .await;
        // However the server ended, the tasks stop with it.
        stop.cancel();
        r
    };
    let (served, ()) = tokio::join!(server, tasks.supervise());
    tracing::info!("stopping background tasks");
    tasks.stop(SHUTDOWN_GRACE).await;
    pool.close().await;
    served?;
    tracing::info!("stopped");
    Ok(())
}
