//! The store's files on disk: created private, checked at start-up, and the
//! lock that keeps a second hub off a store that is being served.
//!
//! The database holds hashed and encrypted card numbers, balances and the
//! journal; its `-wal` and `-shm` hold the same pages. So cardhub creates the
//! database `0600` whatever the umask (SQLite gives `-wal` and `-shm` the
//! database file's mode), and warns at start-up about a file that group or
//! others may read.
//!
//! `<database>.lock` is held (an advisory `flock`, exclusive) by the one
//! `cardhub serve` on a store for as long as the process lives; the kernel
//! releases it when the process ends, `kill -9` included. The CLI's other
//! commands do not take it: they read and write the store through SQLite's
//! own locking while the hub runs. The file stays behind (deleting it
//! could let two hubs lock two different files) and names the last holder's
//! process id.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Permission bits cardhub gives the files it creates.
#[cfg(unix)]
const PRIVATE: u32 = 0o600;

/// The exclusive lock of a served store; released when dropped or when the
/// process ends.
#[derive(Debug)]
pub struct ServeLock {
    /// The locked file, kept open: the lock lives with it.
    _file: File,
}

impl ServeLock {
    /// Locks the store at `db` for this process: the hub's own opener
    /// (`cardhub serve`). Creates `<db>.lock` (`0600`) if needed and
    /// writes this process's id into it.
    ///
    /// # Errors
    /// [`StoreError::InUse`] when another process holds it (with that
    /// process's id when the file names one), [`StoreError::File`] when the
    /// lock file cannot be created, locked or written.
    pub fn acquire(db: &Path) -> Result<ServeLock, StoreError> {
        let path = lock_path(db);
        let error = |source| StoreError::File {
            path: path.clone(),
            source,
        };
        let mut file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .map_err(error)?;
        warn_if_shared(&path);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder's id is a courtesy: a file that cannot be read
                // still means the store is in use.
                let holder = file
                    .read_to_string(&mut holder)
                    .ok()
                    .and_then(|_| holder.trim().parse().ok());
                return Err(StoreError::InUse {
                    path: db.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(error(e)),
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(error)?;
        Ok(ServeLock { _file: file })
    }
}

/// `<db>.lock`.
fn lock_path(db: &Path) -> PathBuf {
    sibling(db, ".lock")
}

/// `db` with `suffix` appended to its file name (`-wal`, `-shm`, `.lock`).
pub(crate) fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the database file `0600` when it does not exist yet, so SQLite
/// opens it (and creates its `-wal` and `-shm`) with that mode; warns about
/// the existing files group or others may read.
pub(crate) fn prepare_database(db: &Path) -> io::Result<()> {
    match private_options().write(true).create_new(true).open(db) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            for path in [db.to_path_buf(), sibling(db, "-wal"), sibling(db, "-shm")] {
                warn_if_shared(&path);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Writes `contents` to a new or existing file at `path`, created `0600`:
/// for files cardhub writes with keys or card numbers in them.
///
/// # Errors
/// The file cannot be created or written.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    warn_if_shared(path);
    file.write_all(contents)
}

/// Open options that create files `0600` (umask permitting less).
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE);
    options
}

/// The permission bits of an existing file at `path` when group or others
/// have any of them; `None` for a private or missing file.
pub(crate) fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Warns (once per call: callers check at start-up) when group or others
/// may use the file at `path`.
fn warn_if_shared(path: &Path) {
    if let Some(mode) = shared_mode(path) {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{mode:o}"),
            "file open to group or others; it holds card data: chmod 600"
        );
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn shared_mode_names_group_and_other_bits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        assert_eq!(shared_mode(&path), None, "missing file");
        std::fs::write(&path, "x").expect("write");
        for (mode, shared) in [
            (0o600, None),
            (0o400, None),
            (0o640, Some(0o640)),
            (0o604, Some(0o604)),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(shared_mode(&path), shared, "mode {mode:o}");
        }
    }

    #[test]
    fn write_private_creates_0600_and_replaces_contents() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cardhub.toml");
        write_private(&path, b"first, longer").expect("write");
        write_private(&path, b"second").expect("rewrite");
        let meta = std::fs::metadata(&path).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
    }

    #[test]
    fn a_second_lock_names_the_holder_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("cardhub.db");
        let lock = ServeLock::acquire(&db).expect("first lock");
        match ServeLock::acquire(&db) {
            Err(StoreError::InUse { path, holder }) => {
                assert_eq!(path, db);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        let meta = std::fs::metadata(lock_path(&db)).expect("lock file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(lock);
        ServeLock::acquire(&db).expect("free again");
    }
}
