//! The hub instances a scenario floods: one `cardhub serve` child, or
//! several on one PostgreSQL database, each with its own switch listener
//! and API port, its own folder and log. The simulator spreads its
//! connections over their switch listeners. A hub instance's config is the
//! loopback one with its ports, its `[fleet] instance` and the shared store.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::process::{Child, free_addresses};
use crate::loopback::{self, Setup};
use cardhub_core::config::Config;

/// Where one instance will listen and keep its files, before it starts.
pub(super) struct Slot {
    /// The `[fleet] instance` number, 0 upwards.
    pub(super) number: usize,
    /// The child's name in the report and of its log: `<kind>`, or
    /// `<kind>-<number>` when there are several.
    pub(super) name: String,
    /// Its config and log (the bench's folder itself for one instance).
    pub(super) folder: PathBuf,
    pub(super) switch: SocketAddr,
    /// Its API, for a hub that serves one.
    pub(super) api: Option<SocketAddr>,
}

/// What a hub instance's config is made of, apart from its slot.
pub(super) struct HubSetup<'a> {
    pub(super) bank_url: &'a str,
    pub(super) cards: &'a str,
    pub(super) extra: &'a str,
    pub(super) store_url: Option<&'a str>,
}

/// Running instances, in the order of their slots.
pub(super) struct Instances {
    children: Vec<Child>,
    switches: Vec<SocketAddr>,
    apis: Vec<SocketAddr>,
}

/// `count` slots of `kind` in `dir`, on free loopback ports (an API port
/// each `with_api`); their folders are created.
pub(super) fn slots(
    dir: &std::path::Path,
    kind: &str,
    count: usize,
    with_api: bool,
) -> Result<Vec<Slot>> {
    (0..count)
        .map(|number| {
            let [switch, api] = free_addresses::<2>()?;
            let (name, folder) = match count {
                1 => (kind.to_string(), dir.to_path_buf()),
                _ => {
                    let name = format!("{kind}-{number}");
                    (name.clone(), dir.join(name))
                }
            };
            std::fs::create_dir_all(&folder)?;
            Ok(Slot {
                number,
                name,
                folder,
                switch,
                api: with_api.then_some(api),
            })
        })
        .collect()
}

impl Instances {
    /// Starts a child per slot with the arguments `args` gives it and
    /// waits until each listens (switch, then API).
    pub(super) async fn start(
        slots: &[Slot],
        args: impl Fn(&Slot) -> Vec<String>,
    ) -> Result<Instances> {
        let mut children = Vec::with_capacity(slots.len());
        for slot in slots {
            let args = args(slot);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            children.push(Child::spawn(&slot.folder, &slot.name, &args)?);
        }
        for (child, slot) in children.iter_mut().zip(slots) {
            let listens: Vec<SocketAddr> = [Some(slot.switch), slot.api]
                .into_iter()
                .flatten()
                .collect();
            child.wait_listening(&listens).await?;
        }
        Ok(Instances {
            children,
            switches: slots.iter().map(|s| s.switch).collect(),
            apis: slots.iter().filter_map(|s| s.api).collect(),
        })
    }

    pub(super) fn children(&self) -> &[Child] {
        &self.children
    }

    pub(super) fn switches(&self) -> &[SocketAddr] {
        &self.switches
    }

    /// The instances' APIs (none for the link-only floor).
    pub(super) fn apis(&self) -> &[SocketAddr] {
        &self.apis
    }

    /// Kills them all (their state is thrown away).
    pub(super) async fn stop(self) {
        for child in self.children {
            child.stop().await;
        }
    }
}

/// Writes each slot's hub config (its ports, `[fleet] instance`, the
/// shared store) with the card file and adapter beside it; the configs.
pub(super) fn hub_configs(slots: &[Slot], setup: &HubSetup) -> Result<Vec<Config>> {
    slots
        .iter()
        .map(|slot| {
            let api = slot.api.context("a hub serves an API")?;
            loopback::write_config(
                &slot.folder,
                &Setup {
                    bank_url: setup.bank_url,
                    api: &api.to_string(),
                    switch: &slot.switch.to_string(),
                    cards: setup.cards,
                    store_url: setup.store_url,
                    extra: &format!(
                        "{}
[fleet]
instance = {}
",
                        setup.extra, slot.number
                    ),
                },
            )
        })
        .collect()
}

/// `cardhub serve` on the config [`hub_configs`] wrote for `slot`.
pub(super) fn serve_args(slot: &Slot) -> Vec<String> {
    let config = slot.folder.join("cardhub.toml");
    vec![
        "serve".into(),
        "--config".into(),
        config.to_string_lossy().into_owned(),
    ]
}
