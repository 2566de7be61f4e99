//! Applying a balance file: all or nothing.
//!
//! The file is read and checked whole (see `balance_file`) while its rows
//! are staged under a new file id in chunks — invisible to stand-in, and
//! never holding the store's writer for long. Only when the whole file is
//! good does one small transaction make it the institution's current file;
//! a bad file's staged rows are discarded and the previous file stays in
//! use. The same file twice is a no-op; a file older than the current one
//! is refused.

use std::io::Read;

use crate::store::sql::{OptionalExtension, params};
use jiff::Timestamp;
use serde::Serialize;

use super::balance_file::{self, BalanceFileError, BalanceFormat, BalanceRow};
use super::shadow::ShadowBook;
use crate::store::{Store, StoreError};

/// Rows written per staging transaction.
const CHUNK: usize = 5_000;

/// What applying a file came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Applied {
    pub file_id: i64,
    pub rows: u64,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub as_of: Timestamp,
    /// The same file was already applied: nothing changed.
    pub unchanged: bool,
}

/// Why a balance file was not applied (the previous balances stay in use).
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error("{0}")]
    File(#[from] BalanceFileError),
    #[error("file as of {as_of} is older than the current balances as of {current}")]
    Older {
        as_of: Timestamp,
        current: Timestamp,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Reads, checks and applies one balance file of an institution. Blocking:
/// call it from a blocking thread (`spawn_blocking`, the CLI).
///
/// # Errors
/// [`BalanceError`]: the file's problems (every line), an older as-of, or
/// the store's error. Nothing is changed then.
pub fn apply(
    store: &Store,
    book: &ShadowBook,
    institution: &str,
    format: &BalanceFormat,
    input: impl Read,
    supplied_as_of: Option<Timestamp>,
    source: &str,
) -> Result<Applied, BalanceError> {
    let now = Timestamp::now().as_microsecond();
    let (inst, src) = (institution.to_string(), source.to_string());
    let file_id = store.write_blocking(move |c| {
        c.query_row(
            "INSERT INTO balance_files (institution, sha256, as_of_us, source, state, received_us) \
             VALUES (?1, x'', 0, ?2, 'staging', ?3) RETURNING file_id",
            params![inst, src, now],
            |r| r.get::<i64>(0),
        )
    })?;
    let mut chunk: Vec<BalanceRow> = Vec::with_capacity(CHUNK);
    let read = balance_file::read(format, input, supplied_as_of, |row| {
        chunk.push(row);
        if chunk.len() == CHUNK {
            stage(store, file_id, std::mem::take(&mut chunk))?;
        }
        Ok(())
    });
    let summary = match read.map_err(BalanceError::from).and_then(|summary| {
        stage(store, file_id, chunk)?;
        Ok(summary)
    }) {
        Ok(summary) => summary,
        Err(e) => {
            discard(store, file_id)?;
            return Err(e);
        }
    };
    let inst = institution.to_string();
    let sha = summary.sha256.to_vec();
    let as_of_us = summary.as_of.as_microsecond();
    let rows = summary.rows;
    let outcome = store.write_blocking(move |c| {
        let same: Option<i64> = c
            .query_row(
                "SELECT file_id FROM balance_files WHERE institution = ?1 AND sha256 = ?2 \
                 AND state IN ('current', 'superseded') ORDER BY file_id DESC LIMIT 1",
                params![inst, sha],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = same {
            return Ok(Flip::Same(existing));
        }
        let current: Option<i64> = c
            .query_row(
                "SELECT as_of_us FROM balance_files WHERE institution = ?1 AND state = 'current'",
                params![inst],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(current) = current.filter(|c| *c > as_of_us) {
            return Ok(Flip::Older(current));
        }
        c.execute(
            "UPDATE balance_files SET state = 'superseded' WHERE institution = ?1 AND state = 'current'",
            params![inst],
        )?;
        c.execute(
            "UPDATE balance_files SET state = 'current', sha256 = ?2, as_of_us = ?3, rows = ?4, \
             applied_us = ?5 WHERE file_id = ?1",
            params![file_id, sha, as_of_us, rows as i64, Timestamp::now().as_microsecond()],
        )?;
        Ok(Flip::Applied)
    })?;
    match outcome {
        Flip::Applied => {
            book.file_applied(institution);
            prune(store, institution)?;
            Ok(Applied {
                file_id,
                rows,
                as_of: summary.as_of,
                unchanged: false,
            })
        }
        Flip::Same(existing) => {
            discard(store, file_id)?;
            Ok(Applied {
                file_id: existing,
                rows,
                as_of: summary.as_of,
                unchanged: true,
            })
        }
        Flip::Older(current) => {
            discard(store, file_id)?;
            Err(BalanceError::Older {
                as_of: summary.as_of,
                current: Timestamp::from_microsecond(current).unwrap_or(Timestamp::UNIX_EPOCH),
            })
        }
    }
}

fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

enum Flip {
    Applied,
    Same(i64),
    Older(i64),
}

fn stage(store: &Store, file_id: i64, rows: Vec<BalanceRow>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    store.write_blocking(move |c| {
        let mut insert = c.prepare_cached(
            "INSERT INTO file_balances (file_id, account, available_minor, currency) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for row in &rows {
            insert.execute(params![file_id, row.account, row.available_minor, row.currency.numeric])?;
        }
        Ok(())
    })
}

/// Drops a staged file's rows, a chunk per transaction.
fn discard(store: &Store, file_id: i64) -> Result<(), StoreError> {
    delete_rows(store, file_id)?;
    store.write_blocking(move |c| {
        c.execute(
            "UPDATE balance_files SET state = 'discarded' WHERE file_id = ?1 AND state = 'staging'",
            params![file_id],
        )
        .map(|_| ())
    })
}

/// Discards files left half-staged by a hub that stopped while reading
/// them (only a running hub stages files: call it at start). Returns how
/// many there were.
///
/// # Errors
/// The store's error.
pub fn discard_abandoned(store: &Store) -> Result<usize, StoreError> {
    let staging: Vec<i64> = store.read(|c| {
        c.prepare_cached("SELECT file_id FROM balance_files WHERE state = 'staging'")?
            .query_map(params![], |r| r.get(0))?
            .collect()
    })?;
    for file_id in &staging {
        discard(store, *file_id)?;
    }
    Ok(staging.len())
}

/// Drops the rows of files no longer current (their header rows stay, for
/// the same-file check and history).
fn prune(store: &Store, institution: &str) -> Result<(), StoreError> {
    let inst = institution.to_string();
    let old: Vec<i64> = store.read(move |c| {
        c.prepare_cached(
            "SELECT file_id FROM balance_files f WHERE institution = ?1 AND state = 'superseded' \
             AND EXISTS (SELECT 1 FROM file_balances b WHERE b.file_id = f.file_id)",
        )?
        .query_map(params![inst], |r| r.get(0))?
        .collect()
    })?;
    for file_id in old {
        delete_rows(store, file_id)?;
    }
    Ok(())
}

fn delete_rows(store: &Store, file_id: i64) -> Result<(), StoreError> {
    loop {
        let deleted = store.write_blocking(move |c| {
            c.execute(
                "DELETE FROM file_balances WHERE file_id = ?1 AND account IN \
                 (SELECT account FROM file_balances WHERE file_id = ?1 LIMIT ?2)",
                params![file_id, CHUNK as i64],
            )
        })?;
        if deleted == 0 {
            return Ok(());
        }
    }
}

/// An institution's current balance file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentFile {
    pub institution: String,
    pub as_of_us: i64,
    pub rows: i64,
    pub applied_us: Option<i64>,
}

/// The current balance file of each institution.
///
/// # Errors
/// The store's error.
pub fn current_files(store: &Store) -> Result<Vec<CurrentFile>, StoreError> {
    store.read(|c| {
        c.prepare_cached(
            "SELECT institution, as_of_us, rows, applied_us FROM balance_files WHERE state = 'current' \
             ORDER BY institution",
        )?
        .query_map(params![], |r| {
            Ok(CurrentFile {
                institution: r.get(0)?,
                as_of_us: r.get(1)?,
                rows: r.get(2)?,
                applied_us: r.get(3)?,
            })
        })?
        .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> BalanceFormat {
        toml::from_str(
            "format = \"csv\"\naccount = \"account\"\navailable = \"available\"\ncurrency_code = \"USD\"\nas_of_line = \"#as_of=\"",
        )
        .unwrap()
    }

    fn apply_text(store: &Store, book: &ShadowBook, text: &str) -> Result<Applied, BalanceError> {
        apply(
            store,
            book,
            "bank-a",
            &format(),
            text.as_bytes(),
            None,
            "test",
        )
    }

    fn count(store: &Store, sql: &'static str) -> i64 {
        store.read(|c| c.query_row(sql, [], |r| r.get(0))).unwrap()
    }

    #[test]
    fn files_apply_whole_once_and_never_older_and_half_read_ones_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("b.db")).unwrap();
        let book = ShadowBook::new(store.clone());
        let first = "#as_of=2026-11-21T22:00:00Z\naccount,available\nA-1,10.00\nA-2,20.00\n";
        let applied = apply_text(&store, &book, first).unwrap();
        assert_eq!((applied.rows, applied.unchanged), (2, false));
        assert!(apply_text(&store, &book, first).unwrap().unchanged);
        let older = "#as_of=2026-11-20T22:00:00Z\naccount,available\nA-1,1.00\n";
        assert!(matches!(
            apply_text(&store, &book, older),
            Err(BalanceError::Older { .. })
        ));
        let bad = "#as_of=2026-11-22T22:00:00Z\naccount,available\nA-1,1.00\nA-2,x\n";
        assert!(matches!(
            apply_text(&store, &book, bad),
            Err(BalanceError::File(_))
        ));
        // Only the first file's rows remain, and it is the current one.
        assert_eq!(count(&store, "SELECT COUNT(*) FROM file_balances"), 2);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM balance_files WHERE state = 'current'"
            ),
            1
        );

        // A hub stopped while staging: its rows are dropped at the next start.
        store
            .write_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO balance_files (file_id, institution, sha256, as_of_us, source, state, received_us) \
                     VALUES (99, 'bank-a', x'', 0, 'upload', 'staging', 0); \
                     INSERT INTO file_balances VALUES (99, 'A-9', 1, 840);",
                )
            })
            .unwrap();
        assert_eq!(discard_abandoned(&store).unwrap(), 1);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM file_balances WHERE file_id = 99"
            ),
            0
        );
        assert_eq!(discard_abandoned(&store).unwrap(), 0);
    }
}
