//! API tests of the auth service: the real router on a free port, a fresh
//! database per test, the machine's real PostgreSQL and NATS.

mod bans;
mod errors;
mod front_door;
mod health;
mod helpers;
mod sessions;
mod signin;
mod signout;
mod signup;
