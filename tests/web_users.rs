//! The users page against a real `cardhub serve` over plain HTTP (no
//! browser): orderers `city` and `town` in the ledger, a bank admin and a
//! bank operator added with `cardhub users add`; an orderer admin added
//! through the page manages its own orderer's users only, every refusal
//! changes nothing, and the audit log has the adds.

mod support;

use std::collections::HashMap;

use cardhub_core::app;
use cardhub_core::prepaid::{Ledger, NewOrderer, ProgrammeKind};
use support::canonical_hub::TOKEN;
use support::prepaid::add_orderer;
use support::served::{Served, serve};
use support::web::SignedIn;
use support::{api_json, cardhub_cli_ok, prepare};

const PASSWORD: &str = "correct horse battery";
const ADA: &str = "ada";
/// A bank operator of bank-a.
const BOB: &str = "bob";
/// The orderer admin of `city` the test adds.
const CARLA: &str = "carla";

struct World {
    served: Served,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
    }
}

async fn world() -> World {
    let extra = format!(
        "\n[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n[[institution]]\n\
         id = \"city\"\nname = \"City prepaid\"\nmode = \"prepaid\"\n"
    );
    let (dir, config) = prepare(&extra).await;
    {
        let hub = app::open(&config, HashMap::new()).unwrap();
        let ledger = Ledger::new(hub.store().clone(), &config.prepaid);
        for (id, programme) in [("city", "city-social"), ("town", "town-social")] {
            let orderer = NewOrderer {
                id: id.into(),
                name: format!("{id} office"),
                funding_account: "NL00BANK0123456789".into(),
            };
            let kind = (programme, ProgrammeKind::SocialClient);
            add_orderer(&ledger, orderer, kind, &[], None).await;
        }
    }
    let d = dir.path();
    for args in [
        ["--name", ADA, "--role", "bank-admin"].as_slice(),
        [
            "--name",
            BOB,
            "--role",
            "bank-operator",
            "--institution",
            "bank-a",
        ]
        .as_slice(),
    ] {
        let mut all = vec!["users", "add", "--password-stdin"];
        all.extend(args);
        cardhub_cli_ok(d, &all, &format!("{PASSWORD}\n"));
    }
    let served = serve(
        &d.join("cardhub.toml"),
        &[],
        &d.join("hub.log"),
        &["base24"],
        true,
    )
    .await;
    World { served, _dir: dir }
}

impl SignedIn {
    /// Adds user `name` of `role` for `orderer`: the answer.
    async fn add(&self, name: &str, role: &str, orderer: &str) -> (u16, String, String) {
        let fields = [
            ("name", name),
            ("role", role),
            ("orderer", orderer),
            ("password", PASSWORD),
            ("repeat", PASSWORD),
        ];
        self.post("/users", &fields).await
    }

    /// The names the users page lists.
    async fn names(&self) -> Vec<String> {
        let (status, page) = self.get("/users").await;
        assert_eq!(status, 200, "{page}");
        let re = regex::Regex::new(r#"<td class="user-name">([^<]+)</td>"#).unwrap();
        re.captures_iter(&page).map(|c| c[1].to_string()).collect()
    }
}

/// The audit log's `user.add` entries' users, oldest first (the JSON API).
async fn added(api: &str) -> Vec<(String, String)> {
    let url = format!("{api}/api/audit?action=user.add");
    let (status, body) = api_json(reqwest::Method::GET, url, TOKEN, None).await;
    assert_eq!(status, 200, "{body}");
    let mut rows: Vec<(String, String)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |f: &str| e[f].as_str().unwrap_or_default().to_string();
            (field("actor"), field("object_id"))
        })
        .collect();
    rows.reverse();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orderer_admin_manages_its_own_orderers_users_only() {
    let world = world().await;
    let ada = SignedIn::log_in(&world.served.api(), ADA, PASSWORD).await;
    let (status, to, page) = ada.add(CARLA, "orderer-admin", "city").await;
    assert_eq!((status, to.as_str()), (303, "/users"), "{page}");
    let (_, page) = ada.get("/users").await;
    assert!(page.contains(r#"<a href="/users" aria-current="page">Users</a>"#));
    assert!(page.contains("orderer city"), "{page}");
    assert_eq!(ada.names().await, [ADA, BOB, CARLA]);

    let carla = SignedIn::log_in(&world.served.api(), CARLA, PASSWORD).await;
    assert_eq!(carla.names().await, [CARLA]);
    let (status, to, page) = carla.add("olive", "orderer-user", "city").await;
    assert_eq!((status, to.as_str()), (303, "/users"), "{page}");
    assert_eq!(carla.names().await, [CARLA, "olive"]);

    // Refused with the service's reason; nothing added or changed.
    let (status, _, page) = carla.add("boss", "bank-admin", "").await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("carla (orderer-admin) may not add such a user"),
        "{page}"
    );
    let (status, _, page) = carla.add("tina", "orderer-user", "town").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("may not add such a user"), "{page}");
    let (status, _, page) = carla.post(&format!("/users/{BOB}/disable"), &[]).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("no user &#34;bob&#34;"), "{page}");
    let (status, _, page) = carla
        .post("/users/olive/role", &[("role", "bank-admin")])
        .await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(ada.names().await, [ADA, BOB, CARLA, "olive"]);
    let (_, page) = ada.get("/users").await;
    assert!(!page.contains("disabled</td>"), "{page}");

    // A bank operator has no users page, and no link to it.
    let bob = SignedIn::log_in(&world.served.api(), BOB, PASSWORD).await;
    let (status, _) = bob.get("/users").await;
    assert_eq!(status, 403);
    let (_, dashboard) = bob.get("/").await;
    assert!(!dashboard.contains(r#"href="/users""#));
    let (status, _, _) = bob.add("eve", "orderer-user", "city").await;
    assert_eq!(status, 403);

    // A forged CSRF token adds nothing.
    let forged = "0".repeat(64);
    let fields = [
        ("name", "mallory"),
        ("role", "bank-admin"),
        ("password", PASSWORD),
        ("repeat", PASSWORD),
    ];
    let (status, _, _) = ada.post_with("/users", &fields, &forged).await;
    assert_eq!(status, 403);
    assert_eq!(ada.names().await, [ADA, BOB, CARLA, "olive"]);

    let api = world.served.api.clone().unwrap();
    let adds = added(&api).await;
    let web_adds = &adds[adds.len() - 2..];
    assert_eq!(
        web_adds,
        [
            (ADA.to_string(), CARLA.to_string()),
            (CARLA.to_string(), "olive".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bank_admin_disables_enables_and_gives_another_role() {
    let world = world().await;
    let ada = SignedIn::log_in(&world.served.api(), ADA, PASSWORD).await;
    let (status, _, page) = ada.add("dan", "orderer-user", "city").await;
    assert_eq!(status, 303, "{page}");
    let (status, _, page) = ada
        .post(
            "/users",
            &[
                ("name", "dora"),
                ("role", "orderer-user"),
                ("orderer", "city"),
                ("password", PASSWORD),
                ("repeat", "correct horse batterY"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("the password and its repetition differ"));

    let (status, to, _) = ada.post("/users/dan/disable", &[]).await;
    assert_eq!((status, to.as_str()), (303, "/users"));
    let (_, page) = ada.get("/users").await;
    assert!(
        page.contains(r#"<td class="user-state">disabled</td>"#),
        "{page}"
    );
    let (status, _, _) = ada.post("/users/dan/enable", &[]).await;
    assert_eq!(status, 303);

    let role = [
        ("role", "bank-operator"),
        ("institutions", "bank-a, bank-b"),
    ];
    let (status, _, page) = ada.post("/users/dan/role", &role).await;
    assert_eq!(status, 303, "{page}");
    let (_, page) = ada.get("/users").await;
    assert!(page.contains("institutions bank-a, bank-b"), "{page}");
    assert!(
        !page.contains(r#"<td class="user-state">disabled</td>"#),
        "{page}"
    );

    let unknown = [("role", "bank-operator"), ("institutions", "bank-z")];
    let (status, _, page) = ada.post("/users/dan/role", &unknown).await;
    assert_eq!(status, 422);
    assert!(page.contains("is not in the config"), "{page}");
}
