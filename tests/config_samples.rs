//! Every sample configuration in the repository parses and checks cleanly.

use std::path::PathBuf;

use cardhub_core::config::Config;

#[test]
fn every_sample_config_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen > 0, "no sample configs in {}", dir.display());
}
