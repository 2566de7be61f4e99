//! The adapters of a folder, reloaded when their files change. The hub holds
//! an [`AdapterHandle`] per institution; each call uses the adapter current
//! at that moment. A changed file is compiled in full first: a broken edit
//! is refused with a log line and the previous version keeps serving.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::AdapterError;
use super::engine::Adapter;
use super::file::Operation;
use crate::account::{AccountAnswer, AccountError, AccountRequest, AccountSystem};

/// How often files are checked for changes.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

struct Loaded {
    adapter: Arc<Adapter>,
    /// Fingerprint of the file's bytes when it was compiled.
    fingerprint: u64,
}

/// The adapters of one folder, by name (the file name without `.toml`).
pub struct Adapters {
    dir: PathBuf,
    current: RwLock<HashMap<String, Loaded>>,
}

/// What a reload did to one file.
#[derive(Debug)]
pub enum Reload {
    /// The file changed and its new version now serves.
    Replaced(String),
    /// The file changed but does not compile; the previous version serves.
    Refused(String, AdapterError),
}

impl Adapters {
    /// Compiles every `*.toml` directly in `dir`.
    ///
    /// # Errors
    /// Every file's problems; nothing is loaded then.
    pub fn load(dir: &Path) -> Result<Adapters, Vec<AdapterError>> {
        let mut loaded = HashMap::new();
        let mut errors = Vec::new();
        for path in adapter_files(dir).map_err(|e| vec![e])? {
            match compile(&path) {
                Ok((name, entry)) => {
                    loaded.insert(name, entry);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Adapters {
            dir: dir.to_path_buf(),
            current: RwLock::new(loaded),
        })
    }

    /// The adapter now serving under a name.
    pub fn get(&self, name: &str) -> Option<Arc<Adapter>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.get(name).map(|l| l.adapter.clone())
    }

    /// An account system that always calls the current version of `name`.
    pub fn handle(self: &Arc<Self>, name: &str) -> Option<AdapterHandle> {
        self.get(name).map(|_| AdapterHandle {
            adapters: self.clone(),
            name: name.to_string(),
        })
    }

    /// Recompiles the files whose content changed since they were loaded.
    pub fn reload_changed(&self) -> Vec<Reload> {
        let files = match adapter_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                warn!(error = %e, "adapter folder unreadable; adapters unchanged");
                return Vec::new();
            }
        };
        let mut outcomes = Vec::new();
        for path in files {
            let Some(name) = stem(&path) else { continue };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let unchanged = {
                let current = self.current.read().unwrap_or_else(|p| p.into_inner());
                current
                    .get(&name)
                    .is_some_and(|l| l.fingerprint == fingerprint(&bytes))
            };
            if unchanged {
                continue;
            }
            match compile(&path) {
                Ok((name, entry)) => {
                    info!(adapter = name, file = %path.display(), "adapter reloaded");
                    let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                    current.insert(name.clone(), entry);
                    outcomes.push(Reload::Replaced(name));
                }
                Err(e) => {
                    warn!(adapter = name, error = %e, "adapter edit refused; the previous version keeps serving");
                    outcomes.push(Reload::Refused(name, e));
                }
            }
        }
        outcomes
    }

    /// Checks the folder every [`WATCH_EVERY`] until shutdown.
    pub fn spawn_watch(self: &Arc<Self>, shutdown: CancellationToken) {
        let adapters = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let a = adapters.clone();
                        let _ = tokio::task::spawn_blocking(move || a.reload_changed()).await;
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
        });
    }
}

/// The institutions' view of an adapter: the current version, per call.
#[derive(Clone)]
pub struct AdapterHandle {
    adapters: Arc<Adapters>,
    name: String,
}

impl AccountSystem for AdapterHandle {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(
        &'a self,
        operation: Operation,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        let adapter = self.adapters.get(&self.name);
        Box::pin(async move {
            match adapter {
                Some(a) => a.call(operation, request).await,
                None => Err(AccountError::Unreachable(format!(
                    "adapter {} is gone",
                    self.name
                ))),
            }
        })
    }
}

/// The `*.toml` files directly in a folder, sorted.
fn adapter_files(dir: &Path) -> Result<Vec<PathBuf>, AdapterError> {
    let entries = std::fs::read_dir(dir).map_err(|source| AdapterError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn stem(path: &Path) -> Option<String> {
    path.file_stem().map(|s| s.to_string_lossy().into_owned())
}

fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Compiles one file; its `name` must be its file name.
fn compile(path: &Path) -> Result<(String, Loaded), AdapterError> {
    let bytes = std::fs::read(path).map_err(|source| AdapterError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let adapter = Adapter::load(path)?;
    let name = stem(path).unwrap_or_default();
    if adapter.name() != name {
        return Err(AdapterError::Invalid {
            origin: path.display().to_string(),
            problems: vec![format!(
                "name {:?} must be the file's name {name:?}",
                adapter.name()
            )],
        });
    }
    Ok((
        name,
        Loaded {
            adapter: Arc::new(adapter),
            fingerprint: fingerprint(&bytes),
        },
    ))
}
