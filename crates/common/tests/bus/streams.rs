//! The streams' limits, as JetStream reports them after `ensure_streams`.

use async_nats::jetstream::stream::DiscardPolicy;
use common::bus::Bus;
use common::bus::{
    DEAD_LETTER_MAX_AGE, DUPLICATE_WINDOW, PUBLISH_ACK_TIMEOUT, STREAM_MAX_AGE, STREAM_MAX_BYTES,
};
use common::events::Stream;
use common::outbox::RelayOptions;
use common::testing::{self, NatsServer};

use crate::helpers::Harness;

#[tokio::test]
async fn every_stream_is_declared_with_age_and_size_limits_discarding_the_oldest() {
    // A private server: JetStream reserves the byte limits on the shared one.
    let nats = NatsServer::start();
    let mut settings = testing::nats_settings(&testing::unique_prefix());
    settings.url = nats.url();
    settings.stream_max_bytes = STREAM_MAX_BYTES;
    let bus = Bus::connect(&settings, "stream-tests").await.expect("NATS");

    bus.ensure_streams().await.expect("streams");

    for s in Stream::ALL {
        let mut stream = bus
            .jetstream()
            .get_stream(bus.name(s.name()))
            .await
            .expect("stream exists");
        let config = stream.info().await.expect("stream info").config.clone();
        let age = if s == Stream::DeadLetter {
            DEAD_LETTER_MAX_AGE
        } else {
            STREAM_MAX_AGE
        };
        assert_eq!(config.max_age, age, "{}", s.name());
        assert_eq!(config.max_bytes, STREAM_MAX_BYTES, "{}", s.name());
        assert_eq!(config.discard, DiscardPolicy::Old, "{}", s.name());
        assert_eq!(config.duplicate_window, DUPLICATE_WINDOW, "{}", s.name());
    }
}

#[tokio::test]
async fn an_existing_stream_without_limits_gets_them() {
    let h = Harness::new().await;
    let mut bare = h.bus.stream_config(Stream::Tickets);
    bare.max_age = std::time::Duration::ZERO;
    bare.discard = DiscardPolicy::New;
    h.bus
        .jetstream()
        .create_stream(bare)
        .await
        .expect("a stream without limits");

    h.bus.ensure_streams().await.expect("streams");

    let mut stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.name(Stream::Tickets.name()))
        .await
        .expect("stream");
    let config = stream.info().await.expect("info").config.clone();
    assert_eq!(config.max_age, STREAM_MAX_AGE);
    assert_eq!(config.discard, DiscardPolicy::Old);
}

#[test]
fn the_duplicate_window_outlasts_a_relay_republish() {
    let relay = RelayOptions::default();
    // A row whose acknowledgement was not recorded is sent again after at
    // most one backoff and one acknowledgement wait; allow a replica restart
    // (a minute) on top.
    let republish = relay.max_backoff + PUBLISH_ACK_TIMEOUT + std::time::Duration::from_secs(60);
    assert!(DUPLICATE_WINDOW >= republish);
}
