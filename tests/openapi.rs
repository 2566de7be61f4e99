//! `/openapi.json` against the server that serves it, over real HTTP: every
//! documented operation is served (and no other method on its path), the
//! bearer scheme is exactly where the token is checked, every status the
//! probes get is documented and every JSON answer has the documented shape
//! (value lists, patterns and bounds included); the constraints the types
//! enforce are stated in the document; and no route is added in
//! `crates/core/src/api/` outside the documented list.

mod support;

use std::path::Path;

use cardhub_core::api;
use cardhub_core::backoffice::search::{DEFAULT_LIMIT, MAX_LIMIT};
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::journal::Entry;
use cardhub_core::journal::decision::DecidedBy;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::standin::saf::{ItemState, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT};
use cardhub_core::standin::state::InstitutionState;
use serde_json::{Map, Value};
use support::{ACTIVE_USD, client, code_of, purchase};

const TOKEN: &str = "openapi-test-token-0123";
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The operations clients know (the hand-written document listed these):
/// the generated one must keep every one of them.
const KNOWN: [(&str, &str); 14] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/api/institutions"),
    ("post", "/api/institutions/{id}/state"),
    ("post", "/api/institutions/{id}/saf/pause"),
    ("post", "/api/institutions/{id}/saf/resume"),
    ("post", "/api/institutions/{id}/balances"),
    ("get", "/api/saf"),
    ("post", "/api/saf/{seq}/requeue"),
    ("post", "/api/transactions/search"),
    ("get", "/api/transactions/{id}"),
    ("post", "/soap/hub"),
];

/// A hub that decided one purchase, with its API served.
struct Served {
    url: String,
    /// The purchase's transaction id.
    txn_id: String,
    hub: support::TestHub,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.hub.link.shutdown_token().cancel();
    }
}

async fn start() -> Served {
    let hub = support::start(&format!(
        "[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .await;
    let running = api::server::start(
        hub.config.api.as_ref().unwrap(),
        hub.hub.clone(),
        hub.config.institutions.clone().into(),
        &hub.config.prepaid,
        hub.link.stats_source(),
        hub.link.shutdown_token(),
    )
    .await
    .unwrap();
    let c = client(&hub.addr).await;
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
    let txn_id = hub
        .hub
        .store()
        .read(|c| c.query_row("SELECT txn_id FROM journal", [], |r| r.get::<i64>(0)))
        .map(|id| TxnId(id).to_string())
        .unwrap();
    Served {
        url: format!("http://{}", running.addr),
        txn_id,
        hub,
    }
}

/// One answer to a probe.
struct Answer {
    status: u16,
    json: Option<Value>,
}

/// Sends `method` to `path` (path parameters filled in: the purchase for a
/// transaction, bank-a for an institution), with an empty JSON object as
/// the body, with or without the token.
async fn probe(served: &Served, method: &str, path: &str, token: bool) -> Answer {
    let id = if path.starts_with("/api/transactions/") {
        served.txn_id.as_str()
    } else {
        "bank-a"
    };
    let path = path.replace("{id}", id).replace("{seq}", "999999");
    let url = format!("{}{path}", served.url);
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = support::http()
        .request(method, url)
        .header("content-type", "application/json")
        .body("{}");
    if token {
        request = request.bearer_auth(TOKEN);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let body = response.text().await.unwrap();
    let json = is_json.then(|| serde_json::from_str(&body).unwrap());
    Answer { status, json }
}

/// The document's operations: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    out
}

/// `schema` with a `$ref` followed (`#/components/schemas/...` or
/// `#/components/responses/...`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap();
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{r} missing"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Why `value` does not have the shape `schema` documents, if it does not:
/// no undocumented key, every required key, each value's JSON type, and
/// each value's `enum`, `pattern`, `minimum` and `maximum`.
fn misfit(doc: &Value, value: &Value, schema: &Value, at: &str) -> Option<String> {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let misfits: Vec<String> = alternatives
            .iter()
            .filter_map(|s| misfit(doc, value, s, at))
            .collect();
        return (misfits.len() == alternatives.len()).then(|| misfits.join(" / "));
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        let mut required = Vec::new();
        for part in parts {
            let part = resolve(doc, part);
            merged.extend(part["properties"].as_object().cloned().unwrap_or_default());
            required.extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        let merged =
            serde_json::json!({"type": "object", "properties": merged, "required": required});
        return misfit(doc, value, &merged, at);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !fits {
        return Some(format!("{at}: a {kind}, documented {types:?}"));
    }
    if let Some(misfit) = out_of_bounds(value, schema) {
        return Some(format!("{at}: {misfit}"));
    }
    match value {
        // Strict where properties are listed: none undocumented.
        Value::Object(fields) if schema["properties"].is_object() => {
            let properties = &schema["properties"];
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                if !fields.contains_key(name) {
                    return Some(format!("{at}: required {name} missing"));
                }
            }
            fields
                .iter()
                .find_map(|(name, v)| match properties.get(name) {
                    None => Some(format!("{at}: {name} is not documented")),
                    Some(s) => misfit(doc, v, s, &format!("{at}.{name}")),
                })
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| misfit(doc, v, &schema["items"], &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// Why `value` is outside what `schema` allows of its type, if it is: not
/// one of the `enum` values, a string not matching `pattern`, a number
/// below `minimum` or above `maximum`.
fn out_of_bounds(value: &Value, schema: &Value) -> Option<String> {
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Some(format!("{value} is not one of {values:?}"));
    }
    if let (Some(pattern), Value::String(text)) = (schema["pattern"].as_str(), value) {
        let regex = regex::Regex::new(pattern)
            .unwrap_or_else(|e| panic!("pattern {pattern:?} is not a regex: {e}"));
        if !regex.is_match(text) {
            return Some(format!("{text:?} does not match {pattern:?}"));
        }
    }
    let number = value.as_f64()?;
    if let Some(minimum) = schema["minimum"].as_f64()
        && number < minimum
    {
        return Some(format!("{value} is below the minimum {minimum}"));
    }
    if let Some(maximum) = schema["maximum"].as_f64()
        && number > maximum
    {
        return Some(format!("{value} is above the maximum {maximum}"));
    }
    None
}

/// The schema of a value that `schema` allows (`$ref`s followed, the
/// non-null alternative of an optional one), as a constraint is read from it.
fn constraint<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(doc, schema);
    match schema["oneOf"].as_array() {
        Some(alternatives) => {
            let mut present = alternatives
                .iter()
                .filter(|s| s["type"] != "null")
                .map(|s| constraint(doc, s));
            let only = present.next().expect("a non-null alternative");
            assert!(
                present.next().is_none(),
                "one non-null alternative: {schema}"
            );
            only
        }
        None => schema,
    }
}

/// The constraint schema of a component's property.
fn property<'a>(doc: &'a Value, component: &str, name: &str) -> &'a Value {
    let properties = &doc["components"]["schemas"][component]["properties"];
    assert!(
        properties[name].is_object(),
        "{component}.{name} is not documented"
    );
    constraint(doc, &properties[name])
}

/// The constraint schema of an operation's parameter.
fn parameter<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    let parameters = doc["paths"][path][method]["parameters"].as_array().unwrap();
    let parameter = parameters
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"));
    constraint(doc, &parameter["schema"])
}

/// The `enum` values of a schema, as strings.
fn values(schema: &Value) -> Vec<&str> {
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// Every variant's name in the API; the matches fail to compile when a
/// variant is added, so the lists below cannot fall behind the types.
fn decided_by() -> Vec<&'static str> {
    let all = [
        DecidedBy::AccountSystem,
        DecidedBy::StandIn,
        DecidedBy::HubRule,
    ];
    all.iter().for_each(|d| match d {
        DecidedBy::AccountSystem | DecidedBy::StandIn | DecidedBy::HubRule => {}
    });
    all.map(DecidedBy::as_str).to_vec()
}

fn entries() -> Vec<&'static str> {
    let all = [
        Entry::Request,
        Entry::Retransmission,
        Entry::LateResult,
        Entry::OrphanReversal,
        Entry::RepeatedRequest,
    ];
    all.iter().for_each(|e| match e {
        Entry::Request
        | Entry::Retransmission
        | Entry::LateResult
        | Entry::OrphanReversal
        | Entry::RepeatedRequest => {}
    });
    all.map(Entry::as_str).to_vec()
}

fn item_states() -> Vec<&'static str> {
    let all = [ItemState::Pending, ItemState::Delivered, ItemState::Dead];
    all.iter().for_each(|s| match s {
        ItemState::Pending | ItemState::Delivered | ItemState::Dead => {}
    });
    all.map(ItemState::as_str).to_vec()
}

#[tokio::test]
async fn the_document_states_the_constraints_of_the_types() {
    let served = start().await;
    let doc = probe(&served, "get", "/openapi.json", false).await;
    let doc = doc.json.expect("the document is JSON");

    let states: Vec<&str> = InstitutionState::ALL.map(InstitutionState::as_str).to_vec();
    assert_eq!(values(property(&doc, "Institution", "state")), states);
    assert_eq!(values(property(&doc, "StateChange", "state")), states);
    assert_eq!(
        values(property(&doc, "QueuedItem", "operation")),
        ["advice", "reverse"]
    );
    assert_eq!(values(property(&doc, "QueuedItem", "state")), item_states());
    assert_eq!(
        values(parameter(&doc, "get", "/api/saf", "state")),
        item_states()
    );
    assert_eq!(values(property(&doc, "SafRow", "state")), item_states());
    assert_eq!(values(property(&doc, "Transaction", "entry")), entries());
    assert_eq!(
        values(property(&doc, "Transaction", "decided_by")),
        decided_by()
    );
    assert_eq!(
        values(property(&doc, "SearchCriteria", "decided_by")),
        decided_by()
    );

    // Transaction ids: the pattern takes what TxnId prints and nothing else.
    let txn_ids = [
        property(&doc, "Transaction", "txn_id"),
        property(&doc, "Transaction", "original_txn_id"),
        property(&doc, "QueuedItem", "txn_id"),
        property(&doc, "QueuedItem", "request_id"),
        property(&doc, "SearchCriteria", "before"),
        property(&doc, "SearchPage", "next_before"),
        parameter(&doc, "get", "/api/transactions/{id}", "id"),
    ];
    for schema in txn_ids {
        for id in [0, 1, i64::MAX, -1, TxnId::at(jiff::Timestamp::now()).0] {
            let id = Value::from(TxnId(id).to_string());
            assert_eq!(out_of_bounds(&id, schema), None, "{schema}");
        }
        for not_an_id in [
            "0000000000000000A",
            "00000000000000a1",
            "",
            "G000000000000000",
        ] {
            assert!(
                out_of_bounds(&Value::from(not_an_id), schema).is_some(),
                "{not_an_id:?} {schema}"
            );
        }
    }
    // Response codes: the pattern takes exactly what ResponseCode accepts.
    for schema in [
        property(&doc, "Transaction", "response_code"),
        property(&doc, "SearchCriteria", "response_code"),
    ] {
        for code in ["00", "51", "N7", "zz", "5", "051", "5-", " 5", "é5"] {
            assert_eq!(
                out_of_bounds(&Value::from(code), schema).is_none(),
                ResponseCode::new(code).is_ok(),
                "{code:?} {schema}"
            );
        }
    }

    let limit = property(&doc, "SearchCriteria", "limit");
    assert_eq!(limit["minimum"], 1, "{limit}");
    assert_eq!(limit["maximum"], MAX_LIMIT, "{limit}");
    assert_eq!(limit["default"], DEFAULT_LIMIT, "{limit}");
    let limit = parameter(&doc, "get", "/api/saf", "limit");
    assert_eq!(limit["maximum"], LIST_MAX_LIMIT, "{limit}");
    assert_eq!(limit["default"], LIST_DEFAULT_LIMIT, "{limit}");

    for (component, name) in [
        ("Transaction", "received_at"),
        ("Institution", "balances_as_of"),
        ("Applied", "as_of"),
    ] {
        assert_eq!(
            property(&doc, component, name)["format"],
            "date-time",
            "{component}.{name}"
        );
    }
    for (component, name) in [
        ("Transaction", "amount_minor"),
        ("Institution", "saf_pending"),
        ("Institution", "saf_dead"),
        ("Institution", "balances_rows"),
    ] {
        assert_eq!(
            property(&doc, component, name)["minimum"],
            0,
            "{component}.{name}"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    let served = start().await;
    let doc = probe(&served, "get", "/openapi.json", false).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json.expect("the document is JSON");
    let operations = operations(&doc);
    for (method, path) in KNOWN {
        assert!(
            operations.iter().any(|(p, m, _)| p == path && m == method),
            "{method} {path} is gone from the document"
        );
    }

    for (path, method, operation) in &operations {
        let what = format!("{method} {path}");
        let answer = probe(&served, method, path, true).await;
        assert!(
            answer.status != 405 && !(answer.status == 404 && answer.json.is_none()),
            "{what}: documented but not served ({})",
            answer.status
        );
        let documented = &operation["responses"][answer.status.to_string()];
        assert!(
            !documented.is_null(),
            "{what}: status {} is not documented",
            answer.status
        );
        let documented = resolve(&doc, documented);
        let schema = &documented["content"]["application/json"]["schema"];
        if let (Some(body), false) = (&answer.json, schema.is_null())
            && let Some(misfit) = misfit(&doc, body, schema, "body")
        {
            panic!("{what} {}: {misfit}\n{body:#}", answer.status);
        }

        // The bearer scheme is documented exactly where the token is checked.
        let protected = operation["security"] == serde_json::json!([{"bearer": []}]);
        let anonymous = probe(&served, method, path, false).await;
        if protected {
            assert_eq!(anonymous.status, 401, "{what} without the token");
            let error = anonymous.json.expect("a JSON error");
            let unauthorized = resolve(&doc, &operation["responses"]["401"]);
            let schema = &unauthorized["content"]["application/json"]["schema"];
            assert_eq!(misfit(&doc, &error, schema, "401 body"), None);
        } else {
            assert_ne!(anonymous.status, 401, "{what} needs a token: document it");
        }
    }

    // No method but the documented ones is served on a documented path.
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in METHODS {
            if doc["paths"][path][method].is_null() {
                let answer = probe(&served, method, path, true).await;
                assert_eq!(
                    answer.status, 405,
                    "{method} {path} is served, not documented"
                );
            }
        }
    }
}

/// Routes reach the router only through `OpenApiRouter::routes(routes!(…))`,
/// which takes each handler's path and method from its `#[utoipa::path]`:
/// any other way of adding one to a router in `crates/core/src/api/` is a route the
/// document would not know.
#[test]
fn no_route_is_added_outside_the_documented_list() {
    let ways = [
        ".route(",
        ".route_service(",
        ".nest(",
        ".nest_service(",
        ".fallback(",
        ".fallback_service(",
        "routing::get",
        "routing::post",
        "routing::any",
    ];
    let mut sources = Vec::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src/api"),
        &mut sources,
    );
    assert!(sources.len() > 5, "{sources:?}");
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        for way in ways {
            assert!(
                !text.contains(way),
                "{}: `{way}` adds a route without documenting it; use routes!() with #[utoipa::path]",
                file.display()
            );
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
