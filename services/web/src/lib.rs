//! The web service: the browser client of buytickets, rendered on the
//! server. Every page is plain HTML built from the APIs' answers; the
//! browser's session cookie is forwarded to the APIs on each call, and the
//! cookies the auth API sets are passed back, so the first response a
//! browser gets already knows who is signed in. Every form posts, then
//! redirects (303) to a page, so nothing needs JavaScript except paying
//! through Stripe Elements. A page asked for with an expired access token
//! first renews the session (see `renew`).

pub mod config;
pub mod docs;
pub mod startup;

mod api;
mod error;
mod extract;
mod renew;
mod routes;
mod view;

/// The service's name.
pub const SERVICE: &str = "web";
