//! The health probe: while an institution is `unreachable`, a balance
//! inquiry on its probe account every few seconds; any answer (even
//! "unknown account") proves the account system is back and reopens it.
//! Across a fleet it runs on the one instance that holds the institution's
//! probe lease (`probe/<institution>`); the others see the reopening
//! through the stored state.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::state::{Institution, InstitutionState, Institutions, Source};
use crate::account::{AccountRequest, AccountSystem};
use crate::account::{Channel, Kind};
use crate::fleet::lease::Lease;
use crate::money::{Currency, Money};

/// Probes one institution while `lease` is held, until shutdown.
pub fn spawn(
    institution: Arc<Institution>,
    institutions: Arc<Institutions>,
    system: Arc<dyn AccountSystem>,
    lease: Lease,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        lease
            .run_while_held(&shutdown, |_| {
                probe(&institution, &institutions, &*system, &shutdown)
            })
            .await;
    });
}

/// Probes while the institution is unreachable, until shutdown.
async fn probe(
    institution: &Institution,
    institutions: &Institutions,
    system: &dyn AccountSystem,
    shutdown: &CancellationToken,
) {
    {
        let config = institution.breaker_config.clone();
        let interval = Duration::from_millis(config.probe_interval_ms.max(10));
        let currency = match Currency::parse(&config.probe_currency) {
            Ok(c) => c,
            Err(e) => {
                warn!(institution = %institution.id, error = %e, "probe currency unusable; no probe");
                return;
            }
        };
        let mut state = institution.watch_state();
        let mut sequence = 0u64;
        loop {
            if *state.borrow_and_update() != InstitutionState::Unreachable {
                tokio::select! {
                    _ = state.changed() => continue,
                    () = shutdown.cancelled() => return,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => return,
            }
            sequence += 1;
            let request = AccountRequest {
                transaction_id: format!(
                    "PROBE-{}-{sequence}",
                    jiff::Timestamp::now().as_millisecond()
                ),
                institution: institution.id.clone(),
                account: config.probe_account.clone(),
                card: String::new(),
                kind: Kind::BalanceInquiry,
                financial: false,
                channel: Channel::Other,
                amount: Money::new(0, currency),
                terminal: String::new(),
                merchant: None,
                merchant_name: None,
                transmission_time: String::new(),
                rrn: String::new(),
                original_transaction_id: None,
                decision: None,
                clear_pan: None,
                listen_until: None,
                decision_row: None,
                deadline: Instant::now() + interval,
            };
            let answer = tokio::time::timeout(interval, system.balance_inquiry(&request)).await;
            match answer {
                Ok(Ok(_)) => {
                    if let Err(e) = institutions
                        .set_state(
                            &institution.id,
                            InstitutionState::Open,
                            Source::Probe,
                            "probe answered",
                        )
                        .await
                    {
                        warn!(institution = %institution.id, error = %e, "probe answered but the state was not recorded");
                    }
                }
                Ok(Err(e)) => debug!(institution = %institution.id, error = %e, "probe failed"),
                Err(_) => debug!(institution = %institution.id, "probe timed out"),
            }
        }
    }
}
