//! The demo's prepaid chapters (issue 16): cardhub as the account system
//! of prepaid cards of the institution `city` (mode `prepaid`). Through the
//! JSON API: an orderer, its programme and card range, an order of two
//! personal cards, the production file written into the outbox, the order
//! delivered. Through the switch: a purchase before the first load (62),
//! the first load that activates the card, a purchase and its completion,
//! a load over the programme's maximum (61). Back through the API: a
//! balance move, a lost card replaced (then 41 on the old card, 00 on the
//! new one), the day's accounting export and the ledger's audit.
//!
//! The switch needs the cards' full numbers: the chapter reads them from
//! the production file, as the card producer would, and prints them
//! masked only.

use std::path::Path;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Story, request};
use crate::loopback;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::store::write_private;

/// The prepaid institution and the outbox of producer files, appended to
/// the demo's config.
pub(super) const CONFIG: &str = r#"
[[institution]]
id = "city"
name = "City prepaid cards (cardhub's own ledger)"
mode = "prepaid"
[prepaid]
outbox = "outbox"
"#;

const ORDERER: &str = "city-social";
const PROGRAMME: &str = "city-social-eur";
/// The card range's prefix: the demo's test range, apart from the card file's.
const PREFIX: &str = "47617395";
const ORDER: &str = "DEMO-ORDER-1";
/// The programme's maximum balance: 150.00 EUR.
const MAX_BALANCE: u64 = 15_000;
/// The programme's currency, alphabetic (API) and numeric (DE 49).
const EUR: (&str, &str) = ("EUR", "978");

/// A card of the order: its masked number and card account from the API,
/// its full number from the production file.
struct Card {
    pan: Pan,
    account: String,
    expiry: String,
}

/// What the prepaid chapters need besides the story's switch and API.
pub(super) struct Setting<'a> {
    /// `[prepaid] outbox`, where the API writes the production file.
    pub outbox: &'a Path,
    /// The demo's folder: the export is written there.
    pub dir: &'a Path,
}

impl Story {
    /// Chapters 8 to 10.
    pub(super) async fn tell_prepaid(&self, setting: &Setting<'_>) -> Result<()> {
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        println!("\n8. Prepaid cards of city: ordered and produced through the API");
        let (order, [first, second]) = self.order_cards(setting.outbox).await?;

        println!("\n9. Prepaid through the switch: cardhub's own ledger decides");
        self.spend(order, &first).await?;

        println!("\n10. Prepaid back office: a balance move, a lost card, the export, the audit");
        let moved = self
            .json(
                Method::POST,
                "/api/prepaid/moves",
                Some(json!({"reference": "DEMO-MOVE-1", "amount_minor": 2_000,
                    "currency": EUR.0, "from": first.account, "to": second.account})),
            )
            .await?;
        note(
            "move 20.00 EUR from card 1 to card 2 (API)",
            &format!(
                "available {} and {}",
                money(&moved["from"]["available"]),
                money(&moved["to"]["available"])
            ),
        );
        let new = self.replace(&first).await?;
        self.expect(
            "POS purchase 10.00 EUR on the lost card",
            &request("0100", "000000", first.pan.expose(), 1_000, 208, EUR.1),
            "41",
        )
        .await?;
        self.expect(
            "POS purchase 25.00 EUR on its replacement (50.00)",
            &request("0100", "000000", new.expose(), 2_500, 209, EUR.1),
            "00",
        )
        .await?;
        self.export(setting.dir, today).await?;
        let audit = self.json(Method::GET, "/api/prepaid/audit", None).await?;
        let breaches = audit["breaches"].as_array().context("audit: no breaches")?;
        if !breaches.is_empty() {
            bail!("demo: the ledger audit found {breaches:?}");
        }
        println!("  ledger audit (GET /api/prepaid/audit): sound, no breach");
        Ok(())
    }

    /// Orderer, programme, card range, an order of two personal cards, its
    /// production file and delivery; the cards with their full numbers
    /// read from the production file.
    async fn order_cards(&self, outbox: &Path) -> Result<(i64, [Card; 2])> {
        self.json(
            Method::POST,
            "/api/prepaid/orderers",
            Some(json!({"id": ORDERER, "name": "City Social Office",
                "funding_account": "DE-CITY-SOCIAL-0001"})),
        )
        .await?;
        self.json(
            Method::POST,
            "/api/prepaid/programmes",
            Some(
                json!({"id": PROGRAMME, "orderer": ORDERER, "kind": "social-client",
                "currency": EUR.0, "max_balance": MAX_BALANCE}),
            ),
        )
        .await?;
        self.json(
            Method::PUT,
            &format!("/api/prepaid/programmes/{PROGRAMME}/card-range"),
            Some(
                json!({"prefix": PREFIX, "pan_length": 16, "validity_months": 36,
                "institution": "city", "profile": "prepaid"}),
            ),
        )
        .await?;
        println!(
            "  orderer {ORDERER}; programme {PROGRAMME}: social-client, EUR, maximum {}",
            money(&json!(MAX_BALANCE))
        );
        println!("  card range {PREFIX}…, 16 digits, 36 months, institution city");
        let ordered = self
            .json(
                Method::POST,
                "/api/prepaid/orders",
                Some(
                    json!({"orderer": ORDERER, "programme": PROGRAMME, "count": 2,
                    "holders": ["Jürgen Müller", "Ana Souza"], "reference": ORDER}),
                ),
            )
            .await?;
        let id = ordered["id"].as_i64().context("order: no id")?;
        let order = self.order(id).await?;
        println!(
            "  order {id} ({ORDER}): 2 personal cards, {}",
            state(&order)
        );
        for card in cards(&order)? {
            println!(
                "    card {} {} account {} holder {}, {}",
                card["sequence"],
                text(&card["pan_masked"]),
                text(&card["account"]),
                text(&card["holder"]),
                text(&card["status"])
            );
        }
        let written = self
            .json(
                Method::POST,
                &format!("/api/prepaid/orders/{id}/production-file"),
                None,
            )
            .await?;
        let file = text(&written["file"]);
        println!(
            "  production file written into the outbox: {file}, {} card record(s), {} bytes",
            written["records"], written["bytes"]
        );
        let pans = production_pans(&outbox.join(&file))?;
        let delivered = self
            .json(
                Method::POST,
                &format!("/api/prepaid/orders/{id}/delivered"),
                None,
            )
            .await?;
        println!("  order {id}: {}", state(&delivered));
        let mut out = Vec::new();
        for (card, pan) in cards(&order)?.iter().zip(pans) {
            if pan.masked() != text(&card["pan_masked"]) {
                bail!(
                    "demo: the production file's card {} is not the order's",
                    pan.masked()
                );
            }
            out.push(Card {
                pan,
                account: text(&card["account"]),
                expiry: text(&card["expiry"]),
            });
        }
        let cards = out
            .try_into()
            .map_err(|_| anyhow::anyhow!("demo: the order has not 2 cards"))?;
        Ok((id, cards))
    }

    /// Chapter 9 on `card` of `order`: refused while inactive, the first
    /// load activates it, a purchase and its completion, a load over the
    /// maximum.
    async fn spend(&self, order: i64, card: &Card) -> Result<()> {
        let pan = card.pan.expose();
        self.expect(
            &format!("POS purchase 10.00 EUR, {} (not loaded yet)", card.pan),
            &request("0100", "000000", pan, 1_000, 201, EUR.1),
            "62",
        )
        .await?;
        self.expect(
            "first load 100.00 EUR at a load terminal (DE 3 21)",
            &request("0200", "210000", pan, 10_000, 202, EUR.1),
            "00",
        )
        .await?;
        let order = self.order(order).await?;
        let status = cards(&order)?
            .iter()
            .find(|c| text(&c["account"]) == card.account)
            .map(|c| text(&c["status"]))
            .unwrap_or_default();
        if status != "active" {
            bail!("demo: the first load left the card {status}, not active");
        }
        note(
            "the card in the registry (API)",
            &format!("{status}; the order {}", state(&order)),
        );
        self.expect(
            "POS purchase 30.00 EUR (100.00 on it)",
            &request("0100", "000000", pan, 3_000, 203, EUR.1),
            "00",
        )
        .await?;
        let mut completion = request("0220", "000000", pan, 3_000, 204, EUR.1);
        completion.set(39, "00");
        completion.set(90, original("0100", 203));
        self.expect(
            "its completion (0220): the purchase is booked",
            &completion,
            "00",
        )
        .await?;
        self.expect(
            "load 90.00 EUR (70.00 on it, maximum 150.00)",
            &request("0200", "210000", pan, 9_000, 205, EUR.1),
            "61",
        )
        .await
    }

    /// Replaces the lost `card` by a new card of the range: its number
    /// past the range's orders, with a Luhn digit.
    async fn replace(&self, card: &Card) -> Result<Pan> {
        let new = loopback::luhn_pan(&format!("{PREFIX}0009001"))?;
        let replaced = self
            .json(
                Method::POST,
                "/api/prepaid/replacements",
                Some(
                    json!({"reference": "DEMO-REPLACE-1", "lost_pan": card.pan.expose(),
                    "new_pan": new.expose(), "new_expiry": card.expiry,
                    "new_account": format!("{}-R", card.account)}),
                ),
            )
            .await?;
        note(
            "card 1 lost: replaced by a new card (API)",
            &format!(
                "{}, account {}, available {}",
                text(&replaced["card"]),
                text(&replaced["account"]),
                money(&replaced["balances"]["available"])
            ),
        );
        Ok(new)
    }

    async fn order(&self, id: i64) -> Result<Value> {
        self.json(Method::GET, &format!("/api/prepaid/orders/{id}"), None)
            .await
    }

    /// The orderer's accounting export of `day` from the API, written into
    /// `dir`; its first lines printed.
    async fn export(&self, dir: &Path, day: jiff::civil::Date) -> Result<()> {
        let path = format!("/api/prepaid/orderers/{ORDERER}/export?day={day}&format=csv");
        let url = format!("{}{path}", self.api);
        let csv = loopback::send(&self.http, Method::GET, &url, None).await?;
        let file = format!("export-{ORDERER}-{day}.csv");
        let written = dir.join(&file);
        write_private(&written, csv.as_bytes())
            .with_context(|| format!("writing {}", written.display()))?;
        let lines: Vec<&str> = csv.lines().collect();
        println!(
            "  accounting export of {day} (GET …/export, CSV): {file}, {} posting(s)",
            lines.len().saturating_sub(1)
        );
        for line in lines.iter().take(8) {
            println!("    {line}");
        }
        Ok(())
    }

    /// A JSON request to the API; the answer's JSON.
    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let body = body.map(|b| ("application/json", b.to_string()));
        let text = loopback::send(&self.http, method, &format!("{}{path}", self.api), body).await?;
        serde_json::from_str(&text).with_context(|| format!("{path}: not JSON: {text}"))
    }
}

/// The full card numbers of a production file's detail records, in
/// sequence order (offset 17, 19 characters, padded with spaces).
fn production_pans(path: &Path) -> Result<Vec<Pan>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes).context("the production file is not ASCII")?;
    text.lines()
        .filter(|l| l.starts_with('D'))
        .enumerate()
        .map(|(i, l)| {
            let field = l.get(17..36).map(str::trim_end).unwrap_or_default();
            Pan::new(field)
                .map_err(|e| anyhow::anyhow!("production file, detail record {}: {e}", i + 1))
        })
        .collect()
}

/// DE 90 naming the original `mti` with `stan` (the demo requests' other
/// original data elements: DE 7 and DE 32).
fn original(mti: &str, stan: u32) -> String {
    format!("{mti}{stan:06}11220302010000476173900000000000")
}

/// An API step and its outcome, aligned with the switch's requests.
fn note(what: &str, outcome: &str) {
    println!("  {what:<58} → {outcome}");
}

fn cards(order: &Value) -> Result<&Vec<Value>> {
    order["cards"].as_array().context("an order without cards")
}

fn state(order: &Value) -> String {
    text(&order["state"])
}

/// A JSON string's text (other values as JSON).
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Minor units of EUR as `12.34 EUR`.
fn money(v: &Value) -> String {
    let minor = v.as_i64().unwrap_or_default();
    format!("{}.{:02} EUR", minor / 100, minor % 100)
}
