//! Page tests of the web service: the real auth, tickets, orders and
//! payments services (fresh databases, a JetStream namespace of their own;
//! payments with its simulated provider, as without a Stripe key) and the
//! web pages, merged on one port as the local suite serves them, driven like
//! a browser that has no JavaScript.

mod assets;
mod auth;
mod cross_origin;
mod helpers;
mod home;
mod mail;
mod market;
mod orders;
mod payment;
mod sessions;
mod tickets;
