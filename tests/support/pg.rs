//! A throwaway PostgreSQL cluster for the tests that run cardhub on
//! PostgreSQL: `scripts/pg-env` starts it in `$CARGO_TARGET_TMPDIR/pg` once
//! per run of a test binary (it is left running for the next run:
//! `scripts/pg-env stop DIR` stops it); each test has its own database.

use std::process::Command;
use std::sync::OnceLock;

/// The cluster's directory.
pub fn cluster_dir() -> String {
    format!("{}/pg", env!("CARGO_TARGET_TMPDIR"))
}

/// `scripts/pg-env ARGS`, which must succeed; its stdout.
pub fn pg_env(args: &[&str]) -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-env"))
        .args(args)
        .output()
        .expect("run scripts/pg-env");
    assert!(
        out.status.success(),
        "scripts/pg-env {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// The running cluster's URL (database `postgres`), started on first use.
pub fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| pg_env(&["start", &cluster_dir()]))
}

/// A new, empty database for one test; its URL.
pub fn database(name: &str) -> String {
    let server = cluster_url();
    let db = format!("store_{name}");
    pg_env(&[
        "psql",
        &cluster_dir(),
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        "-c",
        &format!("CREATE DATABASE {db}"),
    ]);
    let base = server
        .strip_suffix("/postgres")
        .expect("a .../postgres URL");
    format!("{base}/{db}")
}
