//! The tailer: follows the files of every log source (a path, or a glob in its last component)
//! and stores their new lines.
//!
//! - Files are tracked by identity (device, inode), not by name: after a rename rotation
//!   (logrotate `create`) the old file is read to its end through the handle already open, then
//!   the new file from its start. A file that shrinks below the stored offset was truncated
//!   (`copytruncate`) and is read again from the start.
//! - The offset up to which a file's lines are stored is committed in the same transaction as
//!   the lines: a restart resumes exactly there (also in a rotated file found by its inode).
//! - Only whole lines are read; an unfinished last line waits for its newline. In the text format
//!   an entry still collecting continuation lines is stored once the next entry starts or the
//!   file has been quiet for two seconds; the committed offset stays at its start until then.
//! - Each source is followed by one process at a time (advisory lock `opsdeck.tail.<id>`).
//! - Every file is checked against `log_source_dirs` when it is opened (after symlinks are
//!   resolved), so a symlink changed after the source was added leads nowhere else.

use app::config::Config;
use app::error::{AppError, AppResult};
use app::locks::HeldLock;
use app::logs::parse::{parse_text_start, Format, Record, Records};
use app::logs::{sources, store};
use app::state::AppState;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const TICK: Duration = Duration::from_millis(250);
const READ_CHUNK: usize = 4 << 20;
const QUIET_FLUSH: Duration = Duration::from_secs(2);
/// A rotated-away file with nothing new for this long is let go.
const ROTATED_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, sqlx::FromRow)]
struct SourceRow {
    id: i64,
    path: String,
    format: String,
    service: String,
}

struct Followed {
    dev: u64,
    ino: u64,
    path: PathBuf,
    file: std::fs::File,
    /// Bytes consumed (whole lines).
    offset: u64,
    /// The offset stored for this file as this process last saw or wrote it (None: no row).
    /// A commit only goes through if the row still holds it, so two processes that both
    /// believe they follow the file (a lock lost with a database restart) never store the
    /// same lines twice.
    stored: Option<u64>,
    /// Where the text entry still open started (what a restart must re-read).
    open_entry_start: Option<u64>,
    records: Records,
    last_data: Instant,
    /// The name no longer leads to this file (rotated away).
    rotated: bool,
    lines: u64,
}

struct Source {
    row: SourceRow,
    format: Format,
    lock: HeldLock,
    files: HashMap<(u64, u64), Followed>,
    window_start: Instant,
    window_lines: u64,
    last_error: Option<String>,
}

/// `*` and `?` in the last path component.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The files a source's path names now.
fn expand(path: &str) -> Vec<PathBuf> {
    let p = Path::new(path);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if p.is_file() {
            vec![p.to_path_buf()]
        } else {
            vec![]
        };
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Finds a file in `dir` by its identity (a file rotated while Opsdeck was down).
fn find_by_inode(dir: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let m = e.metadata().ok()?;
            (m.is_file() && m.dev() == dev && m.ino() == ino).then(|| e.path())
        })
}

impl Source {
    async fn stored_offset(&self, state: &AppState, dev: u64, ino: u64) -> AppResult<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT \"offset\" FROM log_files WHERE source_id = $1 AND dev = $2 AND inode = $3",
        )
        .bind(self.row.id)
        .bind(dev as i64)
        .bind(ino as i64)
        .fetch_optional(&state.pool)
        .await?;
        Ok(v.map(|o| o.max(0) as u64))
    }

    fn open(
        &mut self,
        config: &Config,
        path: &Path,
        stored: Option<u64>,
        rotated: bool,
    ) -> Result<(), String> {
        sources::allowed_path(config, path)?;
        let offset = stored.unwrap_or(0);
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let m = file
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let offset = if offset > m.len() { 0 } else { offset };
        self.files.insert(
            (m.dev(), m.ino()),
            Followed {
                dev: m.dev(),
                ino: m.ino(),
                path: path.to_path_buf(),
                file,
                offset,
                stored,
                open_entry_start: None,
                records: Records::new(self.format),
                last_data: Instant::now(),
                rotated,
                lines: 0,
            },
        );
        Ok(())
    }

    /// On taking a source: files rotated away while nobody followed them, still holding lines
    /// after their stored offset.
    async fn resume_rotated(&mut self, state: &AppState) -> AppResult<()> {
        let rows = sqlx::query!(
            r#"SELECT dev, inode, path, "offset" FROM log_files
               WHERE source_id = $1 AND updated_at > now() - interval '7 days'"#,
            self.row.id
        )
        .fetch_all(&state.pool)
        .await?;
        for r in rows {
            let (dev, ino, path, offset) = (r.dev as u64, r.inode as u64, r.path, r.offset);
            let current = std::fs::metadata(&path)
                .ok()
                .is_some_and(|m| m.dev() == dev && m.ino() == ino);
            if current {
                continue;
            }
            let dir = Path::new(&path).parent().unwrap_or(Path::new("."));
            if let Some(found) = find_by_inode(dir, dev, ino) {
                let len = std::fs::metadata(&found).map(|m| m.len()).unwrap_or(0);
                if len > offset as u64 {
                    if let Err(e) = self.open(&state.config, &found, Some(offset as u64), true) {
                        self.last_error = Some(e);
                    }
                }
            }
        }
        Ok(())
    }

    async fn tick(&mut self, state: &AppState) -> AppResult<()> {
        // New names, and names that now lead to another file (rotation).
        let current = expand(&self.row.path);
        let mut live: Vec<(u64, u64)> = vec![];
        for path in &current {
            let Ok(m) = std::fs::metadata(path) else {
                continue;
            };
            let key = (m.dev(), m.ino());
            live.push(key);
            if !self.files.contains_key(&key) {
                let stored = self.stored_offset(state, key.0, key.1).await?;
                if let Err(e) = self.open(&state.config, path, stored, false) {
                    self.last_error = Some(e);
                }
            }
        }
        for (key, f) in self.files.iter_mut() {
            if !live.contains(key) {
                f.rotated = true;
            }
        }
        let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
        for key in keys {
            self.read_file(state, key).await?;
        }
        self.files.retain(|_, f| {
            !(f.rotated && f.last_data.elapsed() > ROTATED_GRACE && f.open_entry_start.is_none())
        });
        Ok(())
    }

    async fn read_file(&mut self, state: &AppState, key: (u64, u64)) -> AppResult<()> {
        let format = self.format;
        let Some(f) = self.files.get_mut(&key) else {
            return Ok(());
        };
        let len = f.file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < f.offset {
            // copytruncate: the file was emptied in place; start again from its beginning.
            tracing::info!(file = %f.path.display(), "log file truncated; reading from the start");
            f.offset = 0;
            f.open_entry_start = None;
            f.records.reset();
        }
        let mut records: Vec<Record> = vec![];
        let mut lines_read = 0u64;
        if len > f.offset {
            let want = ((len - f.offset) as usize).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            f.file
                .seek(SeekFrom::Start(f.offset))
                .and_then(|_| f.file.read_exact(&mut buf))
                .map_err(|e| AppError::Unavailable(format!("{}: {e}", f.path.display())))?;
            // Whole lines only; a line longer than a chunk is taken as it is.
            let end = match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if want == READ_CHUNK => want,
                None => 0,
            };
            let mut pos = f.offset;
            for raw in buf[..end].split_inclusive(|b| *b == b'\n') {
                let line_start = pos;
                pos += raw.len() as u64;
                let text = String::from_utf8_lossy(raw);
                let line = text.trim_end_matches(['\n', '\r']);
                if line.trim().is_empty() {
                    continue;
                }
                lines_read += 1;
                if format == Format::Text && parse_text_start(line).is_some() {
                    f.open_entry_start = Some(line_start);
                }
                f.records.push(line, &mut records);
            }
            if end > 0 {
                f.offset += end as u64;
                f.last_data = Instant::now();
            }
        }
        if format == Format::Text && f.last_data.elapsed() >= QUIET_FLUSH {
            f.records.finish(&mut records);
            f.open_entry_start = None;
        }
        if records.is_empty() && lines_read == 0 {
            return Ok(());
        }
        // What a restart must start from: the open text entry, else everything read.
        let committed = f
            .open_entry_start
            .filter(|_| format == Format::Text)
            .unwrap_or(f.offset);
        let (dev, ino, path) = (f.dev, f.ino, f.path.to_string_lossy().into_owned());
        let source = format!("tail:{path}");
        let mut tx = state.pool.begin().await?;
        store::write(
            &mut tx,
            state,
            &self.row.service,
            &source,
            &records,
            OffsetDateTime::now_utc(),
        )
        .await?;
        let query = match f.stored {
            Some(prev) => sqlx::query(
                "UPDATE log_files SET path = $4, \"offset\" = $5, lines = lines + $6, updated_at = now()
                 WHERE source_id = $1 AND dev = $2 AND inode = $3 AND \"offset\" = $7",
            )
            .bind(self.row.id)
            .bind(dev as i64)
            .bind(ino as i64)
            .bind(&path)
            .bind(committed as i64)
            .bind(lines_read as i64)
            .bind(prev as i64),
            None => sqlx::query(
                "INSERT INTO log_files (source_id, dev, inode, path, \"offset\", lines, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (source_id, dev, inode) DO NOTHING",
            )
            .bind(self.row.id)
            .bind(dev as i64)
            .bind(ino as i64)
            .bind(&path)
            .bind(committed as i64)
            .bind(lines_read as i64),
        };
        let done = query.execute(&mut *tx).await?.rows_affected();
        if done != 1 {
            // Rolled back with the transaction: the lines go in once, by the other process.
            return Err(AppError::conflict(format!(
                "{path}: another process stored lines of this file first; leaving the source to it"
            )));
        }
        // (Not counted in `store::committed`: lines of now, which ranges ending now may show a
        // second later, like those of another process.)
        tx.commit().await?;
        f.stored = Some(committed);
        f.lines += lines_read;
        self.window_lines += lines_read;
        Ok(())
    }

    async fn report(&mut self, state: &AppState, host: &str) {
        let secs = self.window_start.elapsed().as_secs_f64();
        if secs < 2.0 {
            return;
        }
        let rate = self.window_lines as f64 / secs;
        let _ = sqlx::query(
            "INSERT INTO log_source_state (source_id, tailer, lines_per_sec, last_line_at, last_error, updated_at)
             VALUES ($1, $2, $3, CASE WHEN $4 > 0 THEN now() END, $5, now())
             ON CONFLICT (source_id) DO UPDATE SET tailer = excluded.tailer, lines_per_sec = excluded.lines_per_sec,
                last_line_at = coalesce(excluded.last_line_at, log_source_state.last_line_at),
                last_error = excluded.last_error, updated_at = now()",
        )
        .bind(self.row.id)
        .bind(host)
        .bind(rate)
        .bind(self.window_lines as i64)
        .bind(&self.last_error)
        .execute(&state.pool)
        .await;
        self.window_start = Instant::now();
        self.window_lines = 0;
    }
}

/// Follows every log source this process can take, until the task is dropped.
pub async fn run(state: AppState) {
    let host = state.config.host_name.clone();
    let mut sources: HashMap<i64, Source> = HashMap::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refresh = Instant::now() - Duration::from_secs(60);
    while app::runtime::next_turn(&mut ticker, &state.runtime.stop).await {
        if last_refresh.elapsed() >= Duration::from_secs(5) {
            last_refresh = Instant::now();
            match sqlx::query_as::<_, SourceRow>(
                "SELECT id, path, format, service FROM log_sources WHERE NOT paused",
            )
            .fetch_all(&state.pool)
            .await
            {
                Ok(rows) => {
                    sources.retain(|id, _| rows.iter().any(|r| r.id == *id));
                    // A lock whose connection died (the database restarted) is no lock: let
                    // the source go and take it again below, if nobody else took it meanwhile.
                    let mut dead = vec![];
                    for (id, s) in sources.iter_mut() {
                        if !s.lock.alive().await {
                            dead.push(*id);
                        }
                    }
                    for id in dead {
                        tracing::info!(source = id, "lost the log source's lock; taking it again");
                        sources.remove(&id);
                    }
                    for row in rows {
                        if sources.contains_key(&row.id) {
                            continue;
                        }
                        let Ok(format) = Format::parse(&row.format) else {
                            continue;
                        };
                        match HeldLock::try_take(&state, &format!("opsdeck.tail.{}", row.id)).await
                        {
                            Ok(Some(lock)) => {
                                let mut s = Source {
                                    row,
                                    format,
                                    lock,
                                    files: HashMap::new(),
                                    window_start: Instant::now(),
                                    window_lines: 0,
                                    last_error: None,
                                };
                                if let Err(e) = s.resume_rotated(&state).await {
                                    tracing::warn!(error = %e, "could not look for rotated log files");
                                }
                                tracing::info!(source = s.row.id, path = %s.row.path, "following log source");
                                sources.insert(s.row.id, s);
                            }
                            Ok(None) => {} // another process follows it
                            Err(e) => {
                                tracing::warn!(error = %e, "log tailer cannot reach the database")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "log tailer cannot list sources; retrying"),
            }
        }
        let mut dropped = vec![];
        for (id, s) in sources.iter_mut() {
            match s.tick(&state).await {
                Ok(()) => {
                    if s.last_error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("database"))
                    {
                        s.last_error = None;
                    }
                }
                // Nothing was committed: the same lines are read again, by this process or
                // another. The source is let go (with its lock, whose connection may have died
                // with the database) and taken again at the next refresh, from the stored
                // offsets (rotated files are found again by their inode).
                Err(e) => {
                    tracing::warn!(source = s.row.id, error = %e, "log tailing failed; will retry");
                    s.last_error = Some(format!("database: {e}"));
                    dropped.push(*id);
                }
            }
            s.report(&state, &host).await;
        }
        for id in dropped {
            sources.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*.log", "app.log", true),
            ("*.log", "app.log.1", false),
            ("app-?.log", "app-1.log", true),
            ("app-?.log", "app-12.log", false),
            ("access*", "access.log", true),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(glob_match(p, n), want, "{p} {n}");
        }
    }
}
