//! What each `opsdeck` subcommand does.

use crate::config::{
    self, BackupCommand, Cli, Command, LogsCommand, ServeArgs, TokenCommand, UserCommand,
};
use app::auth::service::{self, FirstAdmin};
use app::components::fmt_time;
use app::state::AppState;
use std::io::Read;
use tower_sessions::ExpiredDeletion;

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
        None => serve(&cli.global, &ServeArgs::default()).await,
        Some(Command::Serve(args)) => serve(&cli.global, &args).await,
        Some(Command::Migrate) => {
            let pool = open(&cli.global).await?;
            let v: Option<i64> =
                sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
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
        Some(Command::Logs(LogsCommand::Import {
            files,
            format,
            service,
        })) => {
            let pool = open(&cli.global).await?;
            crate::logs::import(&pool, &files, &format, &service).await?;
            // Roll up the finished hours just written, so that their analytics are quick at
            // once rather than after the server's next round.
            let t = std::time::Instant::now();
            let report = crate::jobs::run_now_locked(
                &pool,
                "log_rollups",
                true,
                app::logs::service::roll_up(&pool, time::OffsetDateTime::now_utc()),
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

async fn backup(global: &config::GlobalArgs, cmd: BackupCommand) -> Result<(), CliError> {
    use app::backups::service as backups;
    let serve = ServeArgs::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
    let cfg = config::load(global, &serve)?;
    let pool = crate::connect(&cfg).await.map_err(CliError::Connect)?;
    crate::MIGRATOR.run(&pool).await?;
    backups::ensure_own_target(&pool).await?;
    let listen = cfg.listen;
    let state = AppState::new(crate::leptos_options(listen), pool.clone(), cfg);
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
                    "expired".to_string()
                } else {
                    r.status.clone()
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

async fn open(global: &config::GlobalArgs) -> Result<sqlx::PgPool, CliError> {
    let cfg = config::load(global, &ServeArgs::default())?;
    let pool = crate::connect(&cfg).await.map_err(CliError::Connect)?;
    crate::MIGRATOR.run(&pool).await?;
    Ok(pool)
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

async fn user(global: &config::GlobalArgs, cmd: UserCommand) -> Result<(), CliError> {
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

async fn token(global: &config::GlobalArgs, cmd: TokenCommand) -> Result<(), CliError> {
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

async fn serve(global: &config::GlobalArgs, args: &ServeArgs) -> Result<(), CliError> {
    let cfg = config::load(global, args)?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        CliError::Usage(format!(
            "cannot create data directory {}: {e}",
            cfg.data_dir.display()
        ))
    })?;
    let pool = crate::connect(&cfg).await.map_err(CliError::Connect)?;
    crate::MIGRATOR.run(&pool).await?;
    let listen = cfg.listen;
    match service::ensure_first_admin(&pool, args.admin_password.as_deref()).await? {
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
    let deletion = tokio::spawn(
        crate::session_store(&pool)
            .continuously_delete_expired(tokio::time::Duration::from_secs(600)),
    );
    let state = AppState::new(crate::leptos_options(listen), pool.clone(), cfg);
    for (path, format, service) in &state.config.log_sources {
        app::logs::service::add_source(&pool, path, format, service).await?;
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
    let collector = tokio::spawn(crate::metrics::run_local_collector(state.clone()));
    let tailer = tokio::spawn(crate::logs::tail::run(state.clone()));
    let scheduler = tokio::spawn(crate::jobs::run_scheduler(state.clone()));
    let live_rollups = tokio::spawn(crate::jobs::run_live_rollups(state.clone()));
    let scraper = tokio::spawn(crate::services::scraper::run(state.clone()));
    let evaluator = tokio::spawn(crate::alerts::run_evaluator(state.clone()));
    let notifier = tokio::spawn(crate::alerts::notify::run(state.clone()));
    let checker = tokio::spawn(crate::alerts::checks::run(state.clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {listen}: {e}")))?;
    tracing::info!("Opsdeck listening on http://{}", listener.local_addr()?);
    crate::serve(listener, state, crate::shutdown_signal()).await?;
    deletion.abort();
    collector.abort();
    tailer.abort();
    scheduler.abort();
    live_rollups.abort();
    scraper.abort();
    evaluator.abort();
    notifier.abort();
    checker.abort();
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
