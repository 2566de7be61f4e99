//! Watched drop folders: a bank (or its file transfer) puts balance files
//! into its institution's folder; cardhub applies each once it has stopped
//! growing, then moves it to `processed/`, or to `rejected/` with an error
//! report (`<name>.errors.txt`) beside it. Names starting with `.` or
//! ending in `.part` or `.tmp` are still being written and are left alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::balance_file::BalanceFormat;
use super::balances::{self, BalanceError};
use super::shadow::ShadowBook;
use crate::store::Store;

/// How often a drop folder is looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// One institution's drop folder.
pub struct DropFolder {
    pub institution: String,
    pub folder: PathBuf,
    pub format: BalanceFormat,
    pub store: Store,
    pub book: Arc<ShadowBook>,
}

impl DropFolder {
    /// Watches the folder until shutdown.
    pub fn spawn(self, shutdown: CancellationToken) {
        if let Err(e) = std::fs::create_dir_all(&self.folder) {
            warn!(folder = %self.folder.display(), error = %e, "drop folder cannot be created");
        }
        tokio::spawn(async move {
            let me = Arc::new(self);
            // Size and modification time seen at the last look, per file.
            let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = shutdown.cancelled() => return,
                }
                let ready = match ready_files(&me.folder, &mut seen) {
                    Ok(ready) => ready,
                    Err(e) => {
                        warn!(folder = %me.folder.display(), error = %e, "drop folder not readable");
                        continue;
                    }
                };
                for path in ready {
                    let worker = me.clone();
                    let done = tokio::task::spawn_blocking(move || worker.process(&path)).await;
                    if let Err(e) = done {
                        warn!(error = %e, "drop folder file processing stopped");
                    }
                }
            }
        });
    }

    /// Applies one file and moves it to `processed/` or `rejected/`.
    pub fn process(&self, path: &Path) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                balances::apply(
                    &self.store,
                    &self.book,
                    &self.institution,
                    &self.format,
                    std::io::BufReader::new(file),
                    None,
                    &format!("drop:{name}"),
                )
                .map_err(|e| report(&e))
            });
        let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let (folder, report_text) = match &result {
            Ok(applied) => {
                info!(institution = %self.institution, file = %name, rows = applied.rows, unchanged = applied.unchanged, "balance file applied");
                ("processed", None)
            }
            Err(report) => {
                warn!(institution = %self.institution, file = %name, "balance file rejected");
                ("rejected", Some(report.clone()))
            }
        };
        let target_dir = self.folder.join(folder);
        let target = target_dir.join(format!("{stamp}-{name}"));
        let moved =
            std::fs::create_dir_all(&target_dir).and_then(|()| std::fs::rename(path, &target));
        if let Err(e) = moved {
            warn!(file = %path.display(), error = %e, "balance file could not be moved");
            return;
        }
        if let Some(text) = report_text {
            let report_path = target_dir.join(format!("{stamp}-{name}.errors.txt"));
            if let Err(e) = std::fs::write(&report_path, text) {
                warn!(file = %report_path.display(), error = %e, "error report not written");
            }
        }
    }
}

/// The error report written beside a rejected file.
fn report(e: &BalanceError) -> String {
    match e {
        BalanceError::File(f) => f.report(),
        other => format!("{other}\n"),
    }
}

/// Files that have not changed since the last look (and are not being written).
fn ready_files(
    folder: &Path,
    seen: &mut HashMap<PathBuf, (u64, SystemTime)>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut ready = Vec::new();
    let mut now_seen = HashMap::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !meta.is_file()
            || name.starts_with('.')
            || name.ends_with(".part")
            || name.ends_with(".tmp")
        {
            continue;
        }
        let path = entry.path();
        let stamp = (meta.len(), meta.modified()?);
        if seen.get(&path) == Some(&stamp) {
            ready.push(path);
        } else {
            now_seen.insert(path, stamp);
        }
    }
    *seen = now_seen;
    ready.sort();
    Ok(ready)
}
