//! The notifications service's tests, in one binary: the real service
//! against its own database and JetStream namespace, sending to a real SMTP
//! server running inside the test.

mod helpers;
mod mails;
mod replicas;
mod smtp;
mod smtp_failures;
