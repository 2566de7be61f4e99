//! Hub instances of a fleet on one PostgreSQL database, as separate
//! processes: the test binary re-executed on its ignored test
//! `fleet_child`, which calls [`serve_child`]. A test that uses
//! [`spawn_instance`] must have that test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use cardhub_core::app;
use cardhub_core::config::Config;
use cardhub_core::fleet::Holder;
use cardhub_core::link;
use cardhub_core::store::{PostgresOptions, Store};

use super::{TestBank, start_in};

/// The child reads its config file from this variable.
pub const CONFIG_VAR: &str = "CARDHUB_FLEET_TEST_CONFIG";

/// Writes the config `text` (a test config, its store `path = "hub.db"`)
/// of instance `instance` on database `url` to `dir`, with `fleet` (more
/// `[fleet]` keys) after its number; the file.
pub fn write_config(dir: &Path, text: &str, url: &str, instance: u8, fleet: &str) -> PathBuf {
    let text = text.replace("path = \"hub.db\"", &format!("url = \"{url}\""));
    let text = format!("{text}\n[fleet]\ninstance = {instance}\n{fleet}\n");
    let path = dir.join(format!("instance-{instance}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts a child hub on `config`; it and the address it listens on.
pub fn spawn_instance(config: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fleet_child", "--ignored", "--nocapture"])
        .env(CONFIG_VAR, config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("LISTEN ").map(str::to_string))
        .expect("child hub listening");
    (child, addr)
}

/// The child's part: a hub on the config [`CONFIG_VAR`] names — with the
/// account systems of its adapter files when it names any, else with a
/// [`TestBank`] as bank-a — and the background jobs `cardhub serve` runs
/// (card refresh, SAF replay and probes under their leases, ...); prints
/// `LISTEN <address>` and serves until killed. Returns at once when the
/// variable is not set (the ignored test run on its own).
pub async fn serve_child() {
    let Some(config) = std::env::var_os(CONFIG_VAR) else {
        return;
    };
    let config = Config::load(Path::new(&config)).unwrap();
    let (hub, link, _temp) = if config.institutions.iter().any(|i| i.adapter.is_some()) {
        let (hub, _adapters) = app::open_with_adapters(&config).unwrap();
        let hub = Arc::new(hub);
        let link = link::start(&config.switches, &config.link, hub.clone())
            .await
            .unwrap();
        (hub, link, None)
    } else {
        // The store is the database; nothing is kept in the folder.
        let temp = tempfile::tempdir().unwrap();
        let t = start_in(temp, config.clone(), Arc::new(TestBank::default())).await;
        (t.hub, t.link, Some(t.dir))
    };
    app::spawn_background(
        &hub,
        &config,
        &Holder::new(config.fleet.instance),
        link.shutdown_token(),
    );
    println!("LISTEN {}", link.local_addr("base24").unwrap());
    std::future::pending::<()>().await;
}

/// A store handle on database `url`, as the tests read and set it.
pub fn open_store(url: &str) -> Store {
    Store::open_postgres(url, PostgresOptions::default()).unwrap()
}
