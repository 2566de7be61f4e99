//! The pipeline's stand-in step: cardhub's own decision from the shadow
//! balance when the account system cannot be asked or does not answer,
//! the shadow-balance effects of online decisions, and delivering (or
//! queueing) what the account system must be told.

use std::sync::Arc;

use jiff::Timestamp;

use super::map::account_request;
use super::{CardKey, Hub};
use crate::account::{AccountRequest, AdviceDecision, Decider, Operation};
use crate::account::{Balances, Kind};
use crate::cards::card::Card;
use crate::hub::call::{auth_id, call_until};
use crate::hub::limits::{LimitBreach, LimitChannel};
use crate::hub::model::CanonicalRequest;
use crate::iso8583::codes;
use crate::iso8583::fields::ResponseCode;
use crate::journal::decision::{DecidedBy, Decision};
use crate::journal::txn_id::TxnId;
use crate::standin::saf::{self, NewItem};
use crate::standin::shadow::{Base, Movement, MovementKind, MovementState, Refused};
use crate::standin::state::Institution;
use crate::standin::{Effects, Recheck, policy};

const HOUR_US: i64 = 3_600_000_000;

/// Who approved a movement.
const ACCOUNT_SYSTEM: &str = DecidedBy::AccountSystem.as_str();
const STAND_IN: &str = DecidedBy::StandIn.as_str();
pub(super) const SWITCH: &str = "switch";

/// A stand-in decision.
fn decided(code: ResponseCode, reason: String, balances: Option<Balances>) -> Decision {
    Decision {
        auth_id: code.is_approval().then(auth_id),
        balances,
        decided_by: DecidedBy::StandIn,
        ..Decision::rule(code, reason)
    }
}

/// The DE 39 and words for a limit a request would break.
pub(super) fn breach(
    breach: LimitBreach,
    channel: LimitChannel,
    whose: &str,
) -> (ResponseCode, String) {
    let (code, what) = match breach {
        LimitBreach::PerTransaction => (codes::EXCEEDS_AMOUNT_LIMIT, "per-transaction limit"),
        LimitBreach::DailyAmount => (codes::EXCEEDS_AMOUNT_LIMIT, "daily amount limit"),
        LimitBreach::DailyCount => (codes::EXCEEDS_COUNT_LIMIT, "daily count limit"),
    };
    (code, format!("{whose}{} {what} exceeded", channel.as_str()))
}

/// Which stand-in decisions the account system is told about (by SAF advice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tell {
    /// There is no account system.
    Nothing,
    /// It never saw the request: approvals that move money.
    MoneyMoves,
    /// It was asked online and failed or was late: every decision, so a
    /// late answer is reconciled, as an advice with an id of its own that
    /// names the request; held until `not_before_us` while that request may
    /// still reach the account system.
    AfterCall { not_before_us: Option<i64> },
}

impl Hub {
    /// Decides in the account system's place, and queues what `tell` says.
    pub(super) fn stand_in(
        &self,
        c: &CanonicalRequest,
        card: &Arc<Card>,
        txn_id: TxnId,
        institution: &Arc<Institution>,
        tell: Tell,
        why: &str,
    ) -> (Decision, Effects) {
        let now_us = Timestamp::now().as_microsecond();
        let unavailable = institution.stand_in.unavailable();
        let mut effects = Effects::default();
        let decision = match c.kind {
            Kind::BalanceInquiry => {
                match self.book.shadow(&card.institution, &card.account, now_us) {
                    Ok(Some(shadow)) => decided(
                        codes::APPROVED,
                        format!("stand-in ({why}): shadow balance"),
                        Some(Balances {
                            available: shadow.available,
                            ledger: shadow.available,
                        }),
                    ),
                    Ok(None) => decided(
                        unavailable,
                        format!("stand-in ({why}): no balance known for the account"),
                        None,
                    ),
                    Err(e) => decided(
                        unavailable,
                        format!("stand-in ({why}): balance not readable: {e}"),
                        None,
                    ),
                }
            }
            Kind::Load | Kind::Refund => {
                let movement = self.movement(c, card, txn_id, STAND_IN);
                let _ = self.book.record(movement.clone());
                effects.movement = Some(movement);
                decided(
                    codes::APPROVED,
                    format!("stand-in ({why}): credit counts once the account system confirms it"),
                    None,
                )
            }
            Kind::Purchase | Kind::Cash => {
                self.stand_in_debit(c, card, txn_id, institution, why, now_us, &mut effects)
            }
        };
        if let Some(recheck) = &mut effects.recheck {
            recheck.saf_on_decline = matches!(tell, Tell::AfterCall { .. });
        }
        let moves_money = decision.approved() && c.kind != Kind::BalanceInquiry;
        effects.saf = match tell {
            Tell::Nothing => None,
            Tell::MoneyMoves if !moves_money => None,
            Tell::MoneyMoves => {
                let advice = AdviceDecision {
                    code: decision.code,
                    decided_by: Decider::StandIn,
                    reason: decision.reason.clone(),
                };
                let request = AccountRequest {
                    decision: Some(advice),
                    ..account_request(c, card, txn_id)
                };
                Some(NewItem::new(Operation::Advice, txn_id, &request))
            }
            Tell::AfterCall { not_before_us } => Some(NewItem::after_call(
                Operation::Advice,
                txn_id,
                self.ids.next(),
                card.institution.clone(),
                card.account.clone(),
                not_before_us,
            )),
        };
        (decision, effects)
    }

    /// A stand-in debit: stand-in's own limits, then the policy and the
    /// shadow balance, held in one step in this hub's book; an approval is
    /// checked again, against every instance's movements and daily totals,
    /// in the transaction that journals it (`recheck.rs`).
    #[allow(clippy::too_many_arguments)]
    fn stand_in_debit(
        &self,
        c: &CanonicalRequest,
        card: &Arc<Card>,
        txn_id: TxnId,
        institution: &Institution,
        why: &str,
        now_us: i64,
        effects: &mut Effects,
    ) -> Decision {
        let unavailable = institution.stand_in.unavailable();
        let Some(profile) = self.profiles.get(&card.profile) else {
            return decided(
                codes::SYSTEM_ERROR,
                format!("limits profile {:?} not configured", card.profile),
                None,
            );
        };
        let channel = LimitChannel::of(c.channel);
        let day = self.day.today();
        let key: CardKey = card.pan_hash.0;
        let amount = c.amount.minor;
        let reservation =
            match self
                .offline
                .reserve(&key, channel, day, amount, channel.offline_limits(profile))
            {
                Ok(r) => r,
                Err(b) => {
                    let (code, reason) = breach(b, channel, "stand-in ");
                    return decided(code, format!("stand-in ({why}): {reason}"), None);
                }
            };
        let movement = self.movement(c, card, txn_id, STAND_IN);
        let held = self.book.hold_if(movement.clone(), now_us, |shadow| {
            policy::refusal(&institution.stand_in, amount, shadow, now_us)
        });
        let (code, reason, balances) = match held {
            Ok(Ok(shadow)) => {
                self.offline.keep(reservation);
                effects.movement = Some(movement);
                effects.recheck = Some(Recheck {
                    now_us,
                    unavailable,
                    saf_on_decline: false,
                });
                let after = shadow.available - amount as i64;
                return decided(
                    codes::APPROVED,
                    format!(
                        "stand-in ({why}): within shadow balance {}",
                        shadow.available
                    ),
                    Some(Balances {
                        available: after,
                        ledger: after,
                    }),
                );
            }
            Ok(Err(Refused::NoBalance)) => (
                unavailable,
                "no balance known for the account".to_string(),
                None,
            ),
            Ok(Err(Refused::Policy(reason))) => (unavailable, reason, None),
            Ok(Err(Refused::Short(shadow))) => (
                codes::INSUFFICIENT_FUNDS,
                format!("shadow balance {} is short of {amount}", shadow.available),
                Some(Balances {
                    available: shadow.available,
                    ledger: shadow.available,
                }),
            ),
            Err(e) => (unavailable, format!("balance not readable: {e}"), None),
        };
        self.offline.release(reservation);
        decided(code, format!("stand-in ({why}): {reason}"), balances)
    }

    /// The shadow-balance movement an approval makes.
    pub(super) fn movement(
        &self,
        c: &CanonicalRequest,
        card: &Card,
        txn_id: TxnId,
        approved_by: &'static str,
    ) -> Movement {
        let created_us = txn_id.micros();
        let authorization = c.keys.mti.as_str() == "0100";
        let (kind, state, expires_us) = match c.kind {
            Kind::Load | Kind::Refund if approved_by == ACCOUNT_SYSTEM => {
                (MovementKind::Credit, MovementState::Confirmed, None)
            }
            Kind::Load | Kind::Refund => (MovementKind::Credit, MovementState::Pending, None),
            _ if authorization => {
                let hours = self
                    .holds
                    .hours(c.channel == crate::account::Channel::Atm, c.mcc);
                (
                    MovementKind::Hold,
                    MovementState::Open,
                    Some(created_us + i64::from(hours) * HOUR_US),
                )
            }
            _ => (MovementKind::Debit, MovementState::Open, None),
        };
        Movement {
            txn_id,
            institution: card.institution.clone(),
            account: card.account.clone(),
            kind,
            amount: c.amount.minor as i64,
            remaining: c.amount.minor as i64,
            approved_by,
            created_us,
            expires_us,
            state,
        }
    }

    /// What an online answer changes in the shadow book: the approved
    /// movement, and the balance it returned.
    pub(super) fn online_effects(
        &self,
        c: &CanonicalRequest,
        card: &Card,
        txn_id: TxnId,
        decision: &Decision,
    ) -> Effects {
        let mut effects = Effects::default();
        if decision.approved() && c.kind != Kind::BalanceInquiry {
            let movement = self.movement(c, card, txn_id, ACCOUNT_SYSTEM);
            let _ = self.book.record(movement.clone());
            effects.movement = Some(movement);
        }
        if let Some(b) = decision.balances {
            let base = Base {
                available: b.available,
                as_of_us: Timestamp::now().as_microsecond(),
            };
            let _ = self
                .book
                .online_balance(&card.institution, &card.account, base);
            effects.online_balance = Some((card.institution.clone(), card.account.clone(), base));
        }
        effects
    }

    /// Tells the account system now when it is open and nothing of the
    /// account waits in the SAF queue; otherwise (or when it fails) queues
    /// the request. Returns what happened, in words, and the item to queue.
    pub(super) async fn deliver_or_queue(
        &self,
        operation: Operation,
        card: &Card,
        mut request: AccountRequest,
        txn_id: TxnId,
    ) -> (String, Option<NewItem>) {
        let (Some(system), Some(institution)) = (
            self.system_of(card),
            self.institutions.get(&card.institution),
        ) else {
            return ("no account system to tell".into(), None);
        };
        let state = institution.state();
        let behind =
            saf::has_undelivered(&self.store, &card.institution, &card.account).unwrap_or(true);
        let reason = if !state.is_online() {
            format!("institution {state}; queued for the account system")
        } else if behind {
            "queued behind the account's undelivered items".to_string()
        } else {
            let reserve = std::time::Duration::from_millis(institution.stand_in.reserve_ms);
            request.deadline = request
                .deadline
                .checked_sub(reserve)
                .unwrap_or(request.deadline);
            match call_until(request.deadline, system.call(operation, &request)).await {
                Ok(answer) => {
                    self.institutions.record_success(&institution.id, operation);
                    if saf::Answered::of(operation, answer.code) == saf::Answered::Settled {
                        return ("delivered to the account system".into(), None);
                    }
                    // Replay sends it again: retried, or a dead letter with its code.
                    format!(
                        "the account system answered {} ({}); queued",
                        answer.code, answer.raw_code
                    )
                }
                Err(e) => {
                    if e.is_unavailability() {
                        self.institutions
                            .record_failure(&institution.id, operation, &e.to_string())
                            .await;
                    }
                    format!(
                        "delivery failed ({}); queued for the account system",
                        crate::mask::redact_pans(&e.to_string())
                    )
                }
            }
        };
        (reason, Some(NewItem::new(operation, txn_id, &request)))
    }
}
