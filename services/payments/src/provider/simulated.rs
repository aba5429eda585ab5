//! The simulated provider: Stripe's documented test tokens behave as they
//! do against Stripe's test mode, and nothing leaves the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

use super::{Charge, ChargeOutcome, Refund};

/// Test tokens that succeed, as in Stripe's test mode.
const SUCCEEDING: [&str; 6] = [
    "tok_visa",
    "tok_visa_debit",
    "tok_mastercard",
    "tok_mastercard_debit",
    "tok_amex",
    "tok_discover",
];

/// Test tokens that are declined, with Stripe's message for each.
const DECLINED: [(&str, &str); 4] = [
    ("tok_chargeDeclined", "Your card was declined."),
    (
        "tok_chargeDeclinedInsufficientFunds",
        "Your card has insufficient funds.",
    ),
    ("tok_chargeDeclinedExpiredCard", "Your card has expired."),
    (
        "tok_chargeDeclinedIncorrectCvc",
        "Your card's security code is incorrect.",
    ),
];

/// Charges and refunds in memory. Answers are remembered by idempotency
/// key, so a replayed request gets the first answer, as with Stripe.
#[derive(Clone, Default)]
pub struct SimulatedProvider {
    charges: Arc<Mutex<HashMap<String, ChargeOutcome>>>,
    refunds: Arc<Mutex<HashMap<String, Refund>>>,
}

impl SimulatedProvider {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn charge(
        &self,
        _charge: &Charge,
        token: &str,
        idempotency_key: &str,
    ) -> ChargeOutcome {
        let mut charges = self.charges.lock().unwrap_or_else(PoisonError::into_inner);
        charges
            .entry(idempotency_key.to_string())
            .or_insert_with(|| outcome_for(token))
            .clone()
    }

    pub(super) fn refund(&self, _stripe_id: &str, idempotency_key: &str) -> Refund {
        let mut refunds = self.refunds.lock().unwrap_or_else(PoisonError::into_inner);
        refunds
            .entry(idempotency_key.to_string())
            .or_insert_with(|| Refund {
                id: format!("re_sim_{}", Uuid::new_v4().simple()),
            })
            .clone()
    }
}

fn intent_id() -> String {
    format!("pi_sim_{}", Uuid::new_v4().simple())
}

fn outcome_for(token: &str) -> ChargeOutcome {
    if SUCCEEDING.contains(&token) {
        return ChargeOutcome::Succeeded {
            intent_id: intent_id(),
        };
    }
    match DECLINED.iter().find(|(t, _)| *t == token) {
        Some((_, message)) => ChargeOutcome::Declined {
            message: (*message).to_string(),
            intent_id: Some(intent_id()),
        },
        None => ChargeOutcome::Rejected {
            message: format!(
                "Invalid card token {token:?}: use a Stripe test token such as tok_visa"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge() -> Charge {
        Charge {
            payment_id: Uuid::now_v7(),
            order_id: Uuid::now_v7(),
            amount: 2000,
            currency: "usd".into(),
        }
    }

    #[test]
    fn visa_and_mastercard_tokens_succeed_with_a_simulated_intent() {
        let provider = SimulatedProvider::new();
        for (n, token) in ["tok_visa", "tok_mastercard"].into_iter().enumerate() {
            match provider.charge(&charge(), token, &format!("k{n}")) {
                ChargeOutcome::Succeeded { intent_id } => {
                    assert!(intent_id.starts_with("pi_sim_"), "{intent_id}")
                }
                other => panic!("{token}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_declined_token_is_declined_with_stripes_message() {
        let outcome = SimulatedProvider::new().charge(&charge(), "tok_chargeDeclined", "k");
        assert!(
            matches!(
                outcome,
                ChargeOutcome::Declined { ref message, .. } if message == "Your card was declined."
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn an_unknown_token_is_rejected() {
        let outcome = SimulatedProvider::new().charge(&charge(), "tok_nonsense", "k");
        assert!(
            matches!(outcome, ChargeOutcome::Rejected { .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn the_same_idempotency_key_gives_the_same_answer() {
        let provider = SimulatedProvider::new();
        let first = provider.charge(&charge(), "tok_visa", "order-1");
        let replay = provider.charge(&charge(), "tok_visa", "order-1");
        let other = provider.charge(&charge(), "tok_visa", "order-2");
        assert_eq!(first, replay);
        assert_ne!(first, other);
        assert_eq!(
            provider.refund("pi_1", "refund-1"),
            provider.refund("pi_1", "refund-1")
        );
    }
}
