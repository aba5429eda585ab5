//! The service's SQL, one module per table: the orders replica, payments,
//! their refunds, and the Stripe webhook events already handled. Statuses
//! and reasons are bound as typed values ([`PaymentStatus`],
//! [`RefundReason`], `OrderStatus`), never spelled in the SQL text.
//!
//! [`PaymentStatus`]: crate::domain::PaymentStatus
//! [`RefundReason`]: crate::domain::RefundReason

pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod refunds;
pub(crate) mod webhook_events;

pub(crate) use payments::{NewPaymentRow, Payment};
