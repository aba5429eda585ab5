//! Stripe through async-stripe: a PaymentIntent created and confirmed in
//! one call, and refunds, each with our idempotency key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use stripe::{
    ApiErrors, ApiErrorsType, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError,
};
use stripe_client_core::{RequestBuilder, StripeMethod, StripeRequest as _};
use stripe_core::refund::CreateRefund;
use stripe_core::{PaymentIntent, PaymentIntentStatus};

use super::{Charge, ChargeOutcome, Refund};

/// How long one HTTP attempt to Stripe may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts per request when the connection fails. A retry carries the same
/// idempotency key, so Stripe applies the request at most once.
const TRANSPORT_ATTEMPTS: u32 = 3;

/// Talks to Stripe's API (or to a stub of it, in tests). Cheap to clone.
#[derive(Clone)]
pub struct StripeProvider {
    client: Arc<stripe::Client>,
}

/// `POST /v1/payment_intents`, created and confirmed at once. Written out
/// rather than built with async-stripe's `CreatePaymentIntent`, whose
/// `payment_method_data` has no `card` field: a card *token* (what Stripe.js
/// and the test tokens give) is sent as `payment_method_data[card][token]`.
#[derive(Serialize)]
struct ConfirmedIntent<'a> {
    amount: i64,
    currency: &'a str,
    confirm: bool,
    payment_method_data: CardPaymentMethod<'a>,
    /// Cards only, and no redirects: the buyer is not on a page Stripe could
    /// send back to, so no `return_url` is needed.
    automatic_payment_methods: AutomaticPaymentMethods,
    /// A card that needs 3-D Secure fails at once (as a decline the buyer
    /// can read) instead of waiting for an authentication nobody performs.
    error_on_requires_action: bool,
    metadata: HashMap<&'static str, String>,
    description: String,
}

#[derive(Serialize)]
struct CardPaymentMethod<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    card: CardToken<'a>,
}

#[derive(Serialize)]
struct CardToken<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct AutomaticPaymentMethods {
    enabled: bool,
    allow_redirects: &'static str,
}

impl StripeProvider {
    /// A client for `api_base` (Stripe's, or a stub's) with `secret_key`.
    pub fn new(secret_key: &str, api_base: &str) -> anyhow::Result<Self> {
        let client = ClientBuilder::new(secret_key)
            .url(api_base)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("configuring the Stripe client")?;
        Ok(Self {
            client: Arc::new(client),
        })
    }

    pub(super) async fn charge(
        &self,
        charge: &Charge,
        token: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<ChargeOutcome> {
        let form = ConfirmedIntent {
            amount: charge.amount,
            currency: &charge.currency,
            confirm: true,
            payment_method_data: CardPaymentMethod {
                kind: "card",
                card: CardToken { token },
            },
            automatic_payment_methods: AutomaticPaymentMethods {
                enabled: true,
                allow_redirects: "never",
            },
            error_on_requires_action: true,
            metadata: HashMap::from([
                ("orderId", charge.order_id.to_string()),
                ("paymentId", charge.payment_id.to_string()),
            ]),
            description: format!("buytickets order {}", charge.order_id),
        };
        let strategy = strategy(idempotency_key)?;
        let mut attempt = 1;
        let answer = loop {
            let sent = RequestBuilder::new(StripeMethod::Post, "/payment_intents")
                .form(&form)
                .customize::<PaymentIntent>()
                .request_strategy(strategy.clone())
                .send(self.client.as_ref())
                .await;
            match sent {
                Err(e) if is_transport(&e) && attempt < TRANSPORT_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "Stripe unreachable; retrying the charge with its idempotency key");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        match answer {
            Ok(intent) => Ok(outcome_of(intent)),
            Err(StripeError::Stripe(error, status)) => refusal(*error, status),
            Err(e) => Err(anyhow::Error::new(e).context("creating a PaymentIntent")),
        }
    }

    pub(super) async fn refund(
        &self,
        stripe_id: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<Refund> {
        let strategy = strategy(idempotency_key)?;
        let mut attempt = 1;
        loop {
            let sent = CreateRefund::new()
                .payment_intent(stripe_id)
                .customize()
                .request_strategy(strategy.clone())
                .send(self.client.as_ref())
                .await;
            match sent {
                Ok(refund) => {
                    return Ok(Refund {
                        id: refund.id.to_string(),
                    });
                }
                Err(e) if is_transport(&e) && attempt < TRANSPORT_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "Stripe unreachable; retrying the refund with its idempotency key");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(describe(&e)))
                        .with_context(|| format!("refunding {stripe_id}"));
                }
            }
        }
    }
}

fn strategy(idempotency_key: &str) -> anyhow::Result<RequestStrategy> {
    let key = IdempotencyKey::new(idempotency_key)
        .map_err(|e| anyhow::anyhow!("idempotency key {idempotency_key:?}: {e}"))?;
    Ok(RequestStrategy::Idempotent(key))
}

/// A failure before Stripe answered: the request may be sent again.
fn is_transport(error: &StripeError) -> bool {
    matches!(error, StripeError::ClientError(_) | StripeError::Timeout)
}

fn describe(error: &StripeError) -> String {
    match error {
        StripeError::Stripe(e, status) => format!(
            "Stripe answered {status} ({}): {}",
            e.type_.as_str(),
            e.message.as_deref().unwrap_or("no message")
        ),
        other => other.to_string(),
    }
}

/// A confirmed PaymentIntent's status as our outcome.
fn outcome_of(intent: PaymentIntent) -> ChargeOutcome {
    let intent_id = intent.id.to_string();
    match intent.status {
        PaymentIntentStatus::Succeeded => ChargeOutcome::Succeeded { intent_id },
        PaymentIntentStatus::Processing => ChargeOutcome::Processing { intent_id },
        status => {
            // With error_on_requires_action a confirmed card intent ends in
            // one of the two above or in an error; anything else cannot be
            // completed by this flow, so it is not a payment.
            tracing::warn!(%intent_id, status = status.as_str(), "PaymentIntent not completed");
            let message = intent
                .last_payment_error
                .and_then(|e| e.message)
                .unwrap_or_else(|| "Your card could not be charged.".to_string());
            ChargeOutcome::Declined {
                message,
                intent_id: Some(intent_id),
            }
        }
    }
}

/// Stripe's error answer as an outcome: a card error is a decline the buyer
/// may fix with another card; an invalid request (e.g. an unknown token) is
/// refused; anything else is ours to log.
fn refusal(error: ApiErrors, status: u16) -> anyhow::Result<ChargeOutcome> {
    let message = error.message.clone();
    match (&error.type_, status) {
        (ApiErrorsType::CardError, _) => Ok(ChargeOutcome::Declined {
            message: message.unwrap_or_else(|| "Your card was declined.".into()),
            intent_id: error.payment_intent.map(|pi| pi.id.to_string()),
        }),
        (ApiErrorsType::InvalidRequestError, 400 | 404) => Ok(ChargeOutcome::Rejected {
            message: message.unwrap_or_else(|| "The card could not be used.".into()),
        }),
        (kind, status) => Err(anyhow::anyhow!(
            "Stripe answered {status} ({}): {}",
            kind.as_str(),
            message.as_deref().unwrap_or("no message")
        )),
    }
}
