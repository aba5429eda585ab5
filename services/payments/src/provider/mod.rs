//! Who moves the money: Stripe, or without a Stripe key a simulated provider
//! that honours Stripe's test tokens, so the suite runs end to end on a
//! laptop. Both answer the same two questions, charge and refund, and both
//! honour idempotency keys: the same key gives the same answer, never a
//! second charge or refund.

mod simulated;
mod stripe;

use uuid::Uuid;

use common::config::ExposeSecret as _;

use crate::config::StripeSettings;

pub use simulated::SimulatedProvider;
pub use stripe::StripeProvider;

/// One charge of an order's price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Our payment's id; travels in the PaymentIntent's metadata.
    pub payment_id: Uuid,
    /// Travels in the PaymentIntent's metadata, so that a webhook can find
    /// the order even if the payment row were lost.
    pub order_id: Uuid,
    /// Cents (the smallest unit of `currency`).
    pub amount: i64,
    /// Lower-case ISO code, e.g. `usd`.
    pub currency: String,
}

/// What became of a charge. Transport failures and unexpected answers are
/// errors instead: then nobody knows whether the card was charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is ours.
    Succeeded { intent_id: String },
    /// Accepted but not final; the `payment_intent.succeeded` (or
    /// `payment_failed`) webhook says how it ends.
    Processing { intent_id: String },
    /// The card was declined; `message` is the provider's, for the buyer.
    Declined {
        message: String,
        intent_id: Option<String>,
    },
    /// The request was refused before any charge (e.g. an unknown token).
    Rejected { message: String },
}

/// A refund the provider made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The provider's id, `re_…`.
    pub id: String,
}

/// The payment provider of this process. Cheap to clone.
#[derive(Clone)]
pub enum PaymentProvider {
    Stripe(StripeProvider),
    Simulated(SimulatedProvider),
}

impl PaymentProvider {
    /// Stripe when a secret key is configured, the simulation otherwise.
    pub fn from_settings(settings: &StripeSettings) -> anyhow::Result<Self> {
        Ok(match &settings.secret_key {
            Some(key) => Self::Stripe(StripeProvider::new(
                key.expose_secret(),
                &settings.api_base,
            )?),
            None => Self::Simulated(SimulatedProvider::new()),
        })
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, Self::Simulated(_))
    }

    /// Charges `charge.amount` to the card behind `token`. A repeated call
    /// with the same `idempotency_key` returns the first call's outcome.
    pub async fn charge(
        &self,
        charge: &Charge,
        token: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<ChargeOutcome> {
        match self {
            Self::Stripe(p) => p.charge(charge, token, idempotency_key).await,
            Self::Simulated(p) => Ok(p.charge(charge, token, idempotency_key)),
        }
    }

    /// Refunds the whole of the PaymentIntent `stripe_id`. A repeated call
    /// with the same `idempotency_key` returns the first refund.
    pub async fn refund(&self, stripe_id: &str, idempotency_key: &str) -> anyhow::Result<Refund> {
        match self {
            Self::Stripe(p) => p.refund(stripe_id, idempotency_key).await,
            Self::Simulated(p) => Ok(p.refund(stripe_id, idempotency_key)),
        }
    }
}
